package ociimage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/atomicfile"
)

// Store holds images in a directory; see the package doc for its layout.
// Its methods are safe for concurrent use. One Store, in one process, owns
// a directory: Open removes what others may be writing.
type Store struct {
	dir string
	lim Limits

	mu sync.Mutex
	// claimed counts, per blob digest, the intakes in progress that need
	// the blob; Remove and failed intakes leave such blobs alone.
	claimed map[string]int
	// locks serialise Rootfs and Remove per image digest.
	locks map[string]chan struct{}
	// uploads are the registry's blob uploads in progress.
	uploads map[string]*upload
	// unpacks counts rootfs unpacks started, for tests.
	unpacks atomic.Int64
}

// record is an image's file in images/: the Image and the blobs it needs.
type record struct {
	Image
	MediaType string `json:"media_type"`
	// Index is the digest of the index the image was pushed as, if any.
	Index  string     `json:"index,omitempty"`
	Layers []blobDesc `json:"layers"`
}

type blobDesc struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
}

// blobs returns the digests of the manifest, config and layers.
func (r *record) blobs() []string {
	ds := []string{r.Digest, r.ID}
	if r.Index != "" {
		ds = append(ds, r.Index)
	}
	for _, l := range r.Layers {
		ds = append(ds, l.Digest)
	}
	return ds
}

// Open opens the store in dir, creating it if needed, and removes what an
// earlier process left half written.
func Open(dir string, limits Limits) (*Store, error) {
	s := &Store{dir: dir, lim: limits.withDefaults(), claimed: map[string]int{}, locks: map[string]chan struct{}{}, uploads: map[string]*upload{}}
	for _, sub := range []string{"blobs/sha256", "images", "rootfs", "tags", "uploads", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	for _, sub := range []string{"uploads", "tmp"} {
		if err := removeEntries(filepath.Join(dir, sub), func(string) bool { return true }); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	dot := func(name string) bool { return strings.HasPrefix(name, ".") }
	for _, sub := range []string{"blobs/sha256", "images", "rootfs"} {
		if err := removeEntries(filepath.Join(dir, sub), dot); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	repos, err := os.ReadDir(filepath.Join(dir, "tags"))
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	for _, r := range repos {
		if err := removeEntries(filepath.Join(dir, "tags", r.Name()), dot); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	return s, nil
}

// removeEntries removes the entries of dir whose names match.
func removeEntries(dir string, match func(string) bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if match(e.Name()) {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

func (s *Store) blobPath(hex string) string   { return filepath.Join(s.dir, "blobs", "sha256", hex) }
func (s *Store) recordPath(hex string) string { return filepath.Join(s.dir, "images", hex+".json") }
func (s *Store) rootfsPath(hex string) string { return filepath.Join(s.dir, "rootfs", hex) }

// tempName returns a fresh name for something half written in dir.
func tempName(dir, what string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return filepath.Join(dir, "."+what+"-"+hex.EncodeToString(b[:]))
}

// Image returns the image held under the manifest digest, ENOTFOUND if none.
func (s *Store) Image(digest string) (Image, error) {
	r, err := s.record(digest)
	if err != nil {
		return Image{}, err
	}
	return r.Image, nil
}

// StoredAt is when the store took an image in (or last took it in
// again): collection leaves an image that new alone, as a deploy may be
// about to name it.
func (s *Store) StoredAt(digest string) (time.Time, error) {
	hex, err := parseDigest(digest)
	if err != nil {
		return time.Time{}, err
	}
	fi, err := os.Stat(s.recordPath(hex))
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, baton.Errorf(baton.ENOTFOUND, "image %s is not held here", short(digest))
	}
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

func (s *Store) record(digest string) (*record, error) {
	hex, err := parseDigest(digest)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.recordPath(hex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, baton.Errorf(baton.ENOTFOUND, "image %s is not held here; pull, load or push it first", short(digest))
	}
	if err != nil {
		return nil, fmt.Errorf("read image record: %w", err)
	}
	r := &record{}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("read image record %s: %w", hex, err)
	}
	return r, nil
}

// Digests returns the manifest digests of the images held.
func (s *Store) Digests() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "images"))
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var ds []string
	for _, e := range entries {
		if hex, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(hex, ".") {
			ds = append(ds, "sha256:"+hex)
		}
	}
	return ds, nil
}

// Usage returns the bytes the store's files take.
func (s *Store) Usage() (int64, error) {
	var n int64
	err := filepath.WalkDir(s.dir, func(_ string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("image store usage: %w", err)
	}
	return n, nil
}

// BlobDigests returns the digests of an image's manifest, config and layers.
func (s *Store) BlobDigests(digest string) ([]string, error) {
	r, err := s.record(digest)
	if err != nil {
		return nil, err
	}
	return r.blobs(), nil
}

// OpenBlob opens a blob held under digest d, ENOTFOUND if none.
func (s *Store) OpenBlob(d string) (io.ReadCloser, error) {
	hex, err := parseDigest(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(hex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, baton.Errorf(baton.ENOTFOUND, "blob %s is not held here", short(d))
	}
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return f, nil
}

// hasBlob reports whether blob hex is on disk.
func (s *Store) hasBlob(hex string) bool {
	_, err := os.Stat(s.blobPath(hex))
	return err == nil
}

// PutBlob stores r under digest d if it hashes to d (EUNPROCESSABLE if
// not), up to MaxLayerBytes (ETOOLARGE). A blob already held is kept and r
// is not read.
func (s *Store) PutBlob(d string, r io.Reader) error {
	_, err := s.putBlob(context.Background(), d, r, s.lim.MaxLayerBytes)
	return err
}

// putBlob writes r to a temporary file, checks its size and digest and
// renames it into blobs/; it reports whether it added the blob.
func (s *Store) putBlob(ctx context.Context, d string, r io.Reader, limit int64) (added bool, err error) {
	hex, err := parseDigest(d)
	if err != nil {
		return false, err
	}
	if s.hasBlob(hex) {
		return false, nil
	}
	f, err := os.CreateTemp(filepath.Dir(s.blobPath(hex)), "."+hex+"-*")
	if err != nil {
		return false, fmt.Errorf("store blob: %w", err)
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(ctxReader{ctx, r}, limit+1))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	switch {
	case err != nil:
		return false, fmt.Errorf("store blob %s: %w", short(d), err)
	case n > limit:
		return false, baton.Errorf(baton.ETOOLARGE, "blob %s is larger than %s (limit); make the image's layers smaller or raise the server's layer limit", short(d), baton.FormatSize(limit))
	case "sha256:"+fmt.Sprintf("%x", h.Sum(nil)) != d:
		return false, baton.Errorf(baton.EUNPROCESSABLE, "blob %s does not match its digest (its content hashes to sha256:%x); the image is damaged or was changed in transit, so build or push it again", short(d), h.Sum(nil)[:6])
	}
	if err := os.Rename(f.Name(), s.blobPath(hex)); err != nil {
		return false, fmt.Errorf("store blob: %w", err)
	}
	return true, nil
}

// ctxReader stops reading once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

// claim marks blobs as needed by an intake in progress; the returned func
// releases them.
func (s *Store) claim(ds ...string) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		s.claimed[d]++
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, d := range ds {
			if s.claimed[d]--; s.claimed[d] <= 0 {
				delete(s.claimed, d)
			}
		}
	}
}

// dropUnused removes the blobs among ds that no held image and no other
// intake needs. The caller holds s.mu.
func (s *Store) dropUnused(ds []string, claimedByCaller bool) error {
	used := map[string]bool{}
	digests, err := s.Digests()
	if err != nil {
		return err
	}
	for _, d := range digests {
		r, err := s.record(d)
		if err != nil {
			return err
		}
		for _, b := range r.blobs() {
			used[b] = true
		}
	}
	var errs []error
	for _, d := range ds {
		n := s.claimed[d]
		if claimedByCaller {
			n--
		}
		if used[d] || n > 0 {
			continue
		}
		hex, err := parseDigest(d)
		if err != nil {
			continue
		}
		if err := os.Remove(s.blobPath(hex)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeRecord makes an image held. The caller holds s.mu.
func (s *Store) writeRecord(r *record) error {
	hex, err := parseDigest(r.Digest)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.recordPath(hex), data, 0o644); err != nil {
		return fmt.Errorf("write image record: %w", err)
	}
	return nil
}

// lock takes the per-image lock for digest, or returns ctx's cause.
func (s *Store) lock(ctx context.Context, digest string) (unlock func(), err error) {
	s.mu.Lock()
	l, ok := s.locks[digest]
	if !ok {
		l = make(chan struct{}, 1)
		s.locks[digest] = l
	}
	s.mu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Remove drops the image held under digest: its record, its rootfs, its
// tags and the blobs no other held image uses. ENOTFOUND if not held.
func (s *Store) Remove(digest string) error {
	r, err := s.record(digest)
	if err != nil {
		return err
	}
	hex, _ := parseDigest(digest)
	unlock, err := s.lock(context.Background(), digest)
	if err != nil {
		return err
	}
	defer unlock()
	// Renamed first, so a rootfs is never seen half removed.
	trash := tempName(filepath.Join(s.dir, "rootfs"), "removing-"+hex)
	if err := os.Rename(s.rootfsPath(hex), trash); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove image rootfs: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove image rootfs: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.recordPath(hex)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove image record: %w", err)
	}
	if err := s.untag(r.Digest, r.Index); err != nil {
		return err
	}
	return s.dropUnused(r.blobs(), false)
}

// PruneBlobs removes the blobs no held image uses that are older than
// minAge: blobs of pushes that never finished, and an index's children for
// other platforms. minAge spares pushes in progress (an hour is ample).
// It returns how many it removed.
func (s *Store) PruneBlobs(minAge time.Duration) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := filepath.Join(s.dir, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("prune blobs: %w", err)
	}
	var old []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > minAge {
			old = append(old, "sha256:"+e.Name())
		}
	}
	before := len(entries)
	if err := s.dropUnused(old, false); err != nil {
		return 0, fmt.Errorf("prune blobs: %w", err)
	}
	after, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("prune blobs: %w", err)
	}
	return before - len(after), nil
}
