package artifact

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// minCachedEntry is the size from which a zip entry's unpacked content is
// kept in the entry cache: below it, inflating costs less than hashing
// and copying.
const minCachedEntry = 256 << 10

// entryCache keeps the unpacked content of large zip entries, each in a
// file named by the sha256 of the entry's stored (compressed) bytes, its
// method, size and CRC. A later artifact that carries the same entry (the
// same binary or bundle beside a changed file, a redeploy, a settings
// change) gets a copy of it (copy_file_range: no inflating, no trip
// through user space) instead of inflating it again. The copy keeps each
// revision's folder its own: a build may write into its files.
//
// What is kept is bounded by scope (an app): each extraction records the
// entries it used as its scope's, replacing what the scope had, and
// TrimEntries removes every entry no scope names. So the cache holds the
// large entries of each app's last deploy, what its next deploy reuses.
type entryCache struct {
	dir string
	// used are the keys of the entries this extraction wrote or copied.
	used []string
	// known are keys computed when the artifact was stored (entryKeys),
	// by the offset of each entry's data; nil when there are none.
	known map[int64]string
}

// ExtractRequest is what Store.Extract unpacks, where, and for whom.
type ExtractRequest struct {
	// Digest and Kind name the stored artifact and its kind (KindZip or
	// KindTarGz).
	Digest, Kind string
	// Dest is the folder to create; see Extract.
	Dest   string
	Limits Limits
	// Scope (an app's name) owns the cached entries this extraction
	// leaves: the scope's next extraction reuses them.
	Scope string
}

// Extract is the package's Extract for a stored artifact, with large zip
// entries copied from the store's entry cache when the scope's previous
// extraction had them, and kept there for its next one otherwise.
func (s *Store) Extract(ctx context.Context, req ExtractRequest) error {
	if err := checkDigest(req.Digest); err != nil {
		return err
	}
	c := &entryCache{dir: s.entriesDir(), known: s.keys.get(req.Digest)}
	if err := extract(ctx, s.Path(req.Digest), req.Kind, req.Dest, req.Limits, c); err != nil {
		return err
	}
	if req.Kind != KindZip {
		return nil
	}
	// Best-effort, like the entries: without it the next deploy inflates.
	_ = c.record(req.Scope)
	return nil
}

func (s *Store) entriesDir() string { return filepath.Join(s.dir, "entries") }

// scopesDir holds one file per scope listing the keys it uses.
func (s *Store) scopesDir() string { return filepath.Join(s.entriesDir(), "scopes") }

// scopeFile names scope's list; hashed, so any scope name is a file name.
func scopeFile(dir, scope string) string {
	h := sha256.Sum256([]byte(scope))
	return filepath.Join(dir, "scopes", hex.EncodeToString(h[:16]))
}

// record makes the entries this extraction used scope's, in place of
// those it had.
func (c *entryCache) record(scope string) error {
	dir := filepath.Join(c.dir, "scopes")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	_, err = io.WriteString(tmp, strings.Join(c.used, "\n"))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), scopeFile(c.dir, scope))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// TrimEntries removes the scopes not extracted into for maxAge (apps not
// deployed for that long, deleted ones), then every cached zip entry that
// no scope names. The artifacts themselves are collected apart (List,
// Remove).
func (s *Store) TrimEntries(maxAge time.Duration) error {
	scopes, err := os.ReadDir(s.scopesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list entry scopes: %w", err)
	}
	cutoff := time.Now().Add(-maxAge)
	named := map[string]bool{}
	var errs []error
	for _, e := range scopes {
		path := filepath.Join(s.scopesDir(), e.Name())
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) && !strings.HasPrefix(e.Name(), tempPrefix) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			continue // replaced meanwhile
		}
		for _, k := range strings.Split(string(b), "\n") {
			named[k] = true
		}
	}
	entries, err := os.ReadDir(s.entriesDir())
	if err != nil {
		return fmt.Errorf("list cached entries: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || named[e.Name()] || strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		if err := os.Remove(filepath.Join(s.entriesDir(), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// EntryBytes is the size of the cached entries scope's last extraction
// left (entries scopes share count for each), with the scope's own list.
func (s *Store) EntryBytes(scope string) int64 {
	b, err := os.ReadFile(scopeFile(s.entriesDir(), scope))
	if err != nil {
		return 0
	}
	n := int64(len(b))
	for _, k := range strings.Split(string(b), "\n") {
		if fi, err := os.Stat(filepath.Join(s.entriesDir(), k)); k != "" && err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

// dropEntries empties the entry cache (for tests and benchmarks).
func (s *Store) dropEntries() { _ = os.RemoveAll(s.entriesDir()) }

// key names zf's content (entryKey), as computed when the artifact was
// stored if it was.
func (c *entryCache) key(x *extractor, zf *zip.File) (string, error) {
	if c.known != nil {
		if off, err := zf.DataOffset(); err == nil {
			if k, ok := c.known[off]; ok {
				return k, nil
			}
		}
	}
	k, err := entryKey(zf, x.buf)
	var oe openRawError
	switch {
	case errors.As(err, &oe):
		return "", corrupt(fmt.Errorf("entry %s: %w", quote(zf.Name), oe.err))
	case err != nil:
		return "", x.readErr(zf.Name, err)
	}
	return k, nil
}

// openRawError is entryKey's failure to find an entry's bytes.
type openRawError struct{ err error }

func (e openRawError) Error() string { return e.err.Error() }

// entryKey names zf's content: the sha256 of its stored bytes and header
// fields, read raw (not inflated) with buf.
func entryKey(zf *zip.File, buf []byte) (string, error) {
	raw, err := zf.OpenRaw()
	if err != nil {
		return "", openRawError{err}
	}
	h := sha256.New()
	var hdr [22]byte
	binary.LittleEndian.PutUint16(hdr[0:], zf.Method)
	binary.LittleEndian.PutUint32(hdr[2:], zf.CRC32)
	binary.LittleEndian.PutUint64(hdr[6:], zf.CompressedSize64)
	binary.LittleEndian.PutUint64(hdr[14:], zf.UncompressedSize64)
	h.Write(hdr[:])
	if _, err := io.CopyBuffer(h, raw, buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// zipCachedFile writes the regular file zf: a copy of the cached content
// when there is one, else inflated as usual and then kept in the cache.
func (x *extractor) zipCachedFile(zf *zip.File, mode fs.FileMode) error {
	c := x.entries
	key, err := c.key(x, zf)
	if err != nil {
		return err
	}
	path := filepath.Join(c.dir, key)
	if cf, err := os.Open(path); err == nil {
		defer cf.Close()
		if fi, err := cf.Stat(); err == nil && fi.Mode().IsRegular() && uint64(fi.Size()) == zf.UncompressedSize64 {
			c.used = append(c.used, key)
			return x.fileFrom(zf.Name, mode, func(f *os.File) error {
				x.bytes += fi.Size()
				if x.bytes > x.lim.MaxBytes {
					return x.tooBig()
				}
				if _, err := f.ReadFrom(io.LimitReader(cf, fi.Size())); err != nil {
					return x.fsErr(zf.Name, err)
				}
				return nil
			})
		}
	}
	rc, err := x.zipOpen(zf)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := x.file(zf.Name, mode, rc); err != nil {
		return err
	}
	// Kept best-effort: a full disk or a race with another extraction
	// costs the next deploy an inflate, nothing else.
	if c.keep(x, zf.Name, path) == nil {
		c.used = append(c.used, key)
	}
	return nil
}

// keep copies the revision's file for the entry raw into the cache at
// path, through a temporary file renamed into place.
func (c *entryCache) keep(x *extractor, raw, path string) error {
	name, err := cleanName(raw)
	if err != nil {
		return err
	}
	src, err := x.root.Open(name)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	_, err = tmp.ReadFrom(src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
