package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// tempPrefix names uploads in progress; NewStore removes them.
const tempPrefix = ".upload-"

// Store keeps artifacts by content under DIR/sha256/<hex digest>. Files
// are written once and never change, so readers need no locks.
type Store struct {
	dir  string
	keys entryKeys
}

// NewStore returns a store in dir, creating the folder if needed and
// removing uploads that a crashed process left half-written. The caller
// must own dir (baton serve locks its data directory): an upload another
// process is still writing would be removed too.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o700); err != nil {
		return nil, fmt.Errorf("create artifact store: %w", err)
	}
	s := &Store{dir: dir}
	if err := s.removeTemps(); err != nil {
		return nil, err
	}
	return s, nil
}

// removeTemps removes half-written uploads, and half-written copies in the
// entry cache (see Extract).
func (s *Store) removeTemps() error {
	var errs []error
	for _, dir := range []string{s.dir, s.entriesDir(), s.scopesDir()} {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) && dir != s.dir {
			continue
		}
		if err != nil {
			return fmt.Errorf("read artifact store: %w", err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), tempPrefix) || !e.Type().IsRegular() {
				continue
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Put stores everything r yields and returns its sha256 hex digest and
// size. Content over maxBytes is refused with ETOOLARGE; zero or less means
// no limit. Nothing is left behind on error, and storing content that is
// already present keeps the existing file.
func (s *Store) Put(r io.Reader, maxBytes int64) (digest string, size int64, err error) {
	u, err := s.Receive(r, maxBytes)
	if err != nil {
		return "", 0, err
	}
	if err := u.Commit(); err != nil {
		return "", 0, err
	}
	return u.Digest, u.Size, nil
}

// Upload is content Receive took in: readable at Path, and stored, durably,
// once Commit returns. Its owner must call Commit or Abort.
type Upload struct {
	Digest string
	Size   int64

	s    *Store
	tmp  *os.File // nil when the content was already stored
	path string
	// synced is closed when the fsync begun by Receive has returned
	// syncErr, and the keys of the zip's large entries are in keys.
	synced  chan struct{}
	syncErr error
	keys    map[int64]string
	done    bool
}

// Receive takes in everything r yields, as Put does, and starts making it
// durable, but returns without waiting for the disk: until Commit, the
// caller can read the content at Path and do other work (look at what the
// upload is, read the store) while the fsync runs. Content over maxBytes
// is refused with ETOOLARGE, and nothing is left behind on error.
func (s *Store) Receive(r io.Reader, maxBytes int64) (u *Upload, err error) {
	tmp, err := os.CreateTemp(s.dir, tempPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("create upload file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	src := r
	if maxBytes > 0 {
		// One byte over the limit is enough to know it is over.
		src = io.LimitReader(r, maxBytes+1)
	}
	sum, size, err := receive(tmp, src)
	if err != nil {
		return nil, fmt.Errorf("receive artifact: %w", err)
	}
	if maxBytes > 0 && size > maxBytes {
		return nil, baton.Errorf(baton.ETOOLARGE,
			"artifact is larger than the %s upload limit; leave out what the app does not need at run time (dependencies it can build, caches, test data) or raise the server's upload limit",
			baton.FormatSize(maxBytes))
	}
	digest := hex.EncodeToString(sum)
	u = &Upload{Digest: digest, Size: size, s: s, synced: make(chan struct{})}
	final := s.Path(digest)
	if _, statErr := os.Lstat(final); statErr == nil {
		// Already stored (and synced): a repeated upload costs no fsync.
		// Its time is renewed: collection keeps an artifact that no
		// revision names yet for a while after it was stored (List).
		tmp.Close()
		os.Remove(tmp.Name())
		now := time.Now()
		_ = os.Chtimes(final, now, now)
		u.path = final
		close(u.synced)
		return u, nil
	}
	u.tmp, u.path = tmp, tmp.Name()
	go func() {
		defer close(u.synced)
		// While the disk makes the upload durable, the CPU is free to read
		// it back from the page cache for the keys of a zip's large
		// entries, which its extraction would otherwise compute (see
		// entryKeys).
		keys := make(chan map[int64]string, 1)
		go func() { keys <- largeEntryKeys(tmp, size) }()
		u.syncErr = tmp.Sync()
		u.keys = <-keys
	}()
	return u, nil
}

// Path is where the upload's content can be read until Commit or Abort
// (and after Commit, since it is then Store.Path(Digest)).
func (u *Upload) Path() string { return u.path }

// Commit waits until the upload is on the disk, then puts it in place
// under its digest: once it returns nil, the artifact survives a power
// cut. On error nothing is left behind.
func (u *Upload) Commit() (err error) {
	if u.done {
		return nil
	}
	u.done = true
	<-u.synced
	if u.tmp == nil {
		return nil
	}
	tmp := u.tmp
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if u.syncErr != nil {
		return fmt.Errorf("sync upload file: %w", u.syncErr)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close upload file: %w", err)
	}
	final := u.s.Path(u.Digest)
	if err = os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("store artifact: %w", err)
	}
	u.path = final
	if err = syncDir(filepath.Dir(final)); err != nil {
		return err
	}
	u.s.keys.add(u.Digest, u.keys)
	return nil
}

// Abort drops an upload that was not committed, leaving nothing behind.
// After Commit it does nothing.
func (u *Upload) Abort() {
	if u.done {
		return
	}
	u.done = true
	<-u.synced
	if u.tmp != nil {
		u.tmp.Close()
		os.Remove(u.tmp.Name())
	}
}

// syncDir makes a rename in dir survive a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync artifact store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync artifact store: %w", err)
	}
	return nil
}

// Path returns where the artifact with digest is (or would be) stored, or
// "" if digest is not 64 lowercase hex digits.
func (s *Store) Path(digest string) string {
	if !ValidDigest(digest) {
		return ""
	}
	return filepath.Join(s.dir, "sha256", digest)
}

// Open opens the artifact with digest for reading. It returns EINVALID for
// a malformed digest and ENOTFOUND if no such artifact is stored.
func (s *Store) Open(digest string) (*os.File, error) {
	if err := checkDigest(digest); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, baton.Errorf(baton.ENOTFOUND, "artifact %s is not stored on this server; upload it again", digest)
	}
	if err != nil {
		return nil, fmt.Errorf("open artifact: %w", err)
	}
	return f, nil
}

// Remove deletes the artifact with digest. Removing one that is not stored
// is not an error.
func (s *Store) Remove(digest string) error {
	if err := checkDigest(digest); err != nil {
		return err
	}
	if err := os.Remove(s.Path(digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove artifact: %w", err)
	}
	return nil
}

// Info is a stored artifact as List reports it.
type Info struct {
	Digest string
	Size   int64
	// Stored is when it was last stored (an upload of content already
	// present renews it).
	Stored time.Time
}

// List returns every stored artifact, in no particular order.
func (s *Store) List() ([]Info, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "sha256"))
	if err != nil {
		return nil, fmt.Errorf("list artifacts: %w", err)
	}
	var out []Info
	for _, e := range entries {
		if !ValidDigest(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, Info{Digest: e.Name(), Size: fi.Size(), Stored: fi.ModTime()})
	}
	return out, nil
}

// ValidDigest reports whether digest is a sha256 hex digest as Put returns
// it: exactly 64 lowercase hex digits.
func ValidDigest(digest string) bool {
	if len(digest) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(digest); i++ {
		c := digest[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkDigest(digest string) error {
	if !ValidDigest(digest) {
		return baton.Errorf(baton.EINVALID, "artifact digest %q is not 64 lowercase hex digits (a sha256)", digest)
	}
	return nil
}
