package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

func newStore(tb testing.TB) (*Store, string) {
	tb.Helper()
	dir := tb.TempDir()
	s, err := NewStore(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return s, dir
}

// storeFiles lists every file in the store folder, temp files included.
func storeFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

func TestStorePutOpen(t *testing.T) {
	s, dir := newStore(t)
	content := "hello artifact"
	sum := sha256.Sum256([]byte(content))
	want := hex.EncodeToString(sum[:])

	for range 2 {
		digest, size, err := s.Put(strings.NewReader(content), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if digest != want || size != int64(len(content)) {
			t.Fatalf("Put = %s, %d; want %s, %d", digest, size, want, len(content))
		}
	}
	if got := storeFiles(t, dir); len(got) != 1 || got[0] != filepath.Join("sha256", want) {
		t.Fatalf("store holds %v, want only sha256/%s", got, want)
	}
	if s.Path(want) != filepath.Join(dir, "sha256", want) {
		t.Errorf("Path = %s", s.Path(want))
	}
	f, err := s.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil || string(got) != content {
		t.Fatalf("Open content = %q, %v", got, err)
	}
}

func TestStorePutLimit(t *testing.T) {
	s, dir := newStore(t)
	if _, _, err := s.Put(strings.NewReader(strings.Repeat("x", 1025)), 1024); baton.ErrorCode(err) != baton.ETOOLARGE {
		t.Fatalf("Put over the limit: %v, want %s", err, baton.ETOOLARGE)
	} else if !strings.Contains(baton.ErrorMessage(err), "larger than the 1.0 KiB upload limit") {
		t.Errorf("message = %q", baton.ErrorMessage(err))
	}
	if got := storeFiles(t, dir); len(got) != 0 {
		t.Fatalf("store holds %v after a refused upload, want nothing", got)
	}
	if _, size, err := s.Put(strings.NewReader(strings.Repeat("x", 1024)), 1024); err != nil || size != 1024 {
		t.Fatalf("Put at the limit = %d, %v", size, err)
	}
	if _, size, err := s.Put(strings.NewReader(strings.Repeat("y", 5000)), 0); err != nil || size != 5000 {
		t.Fatalf("Put without a limit = %d, %v", size, err)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("client went away")
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestStorePutReadError(t *testing.T) {
	s, dir := newStore(t)
	if _, _, err := s.Put(&failingReader{n: 100 << 10}, 1<<20); err == nil {
		t.Fatal("Put succeeded although the reader failed")
	}
	if got := storeFiles(t, dir); len(got) != 0 {
		t.Fatalf("store holds %v after a failed upload, want nothing", got)
	}
}

func TestStoreBadDigests(t *testing.T) {
	s, _ := newStore(t)
	for _, d := range []string{
		"",
		"../../etc/passwd",
		strings.Repeat("A", 64),
		strings.Repeat("a", 63),
		strings.Repeat("a", 65),
		strings.Repeat("a", 62) + "/x",
	} {
		if p := s.Path(d); p != "" {
			t.Errorf("Path(%q) = %q, want \"\"", d, p)
		}
		if _, err := s.Open(d); baton.ErrorCode(err) != baton.EINVALID {
			t.Errorf("Open(%q) = %v, want %s", d, err, baton.EINVALID)
		}
		if err := s.Remove(d); baton.ErrorCode(err) != baton.EINVALID {
			t.Errorf("Remove(%q) = %v, want %s", d, err, baton.EINVALID)
		}
	}
}

func TestStoreRemove(t *testing.T) {
	s, _ := newStore(t)
	digest, _, err := s.Put(strings.NewReader("x"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Remove(digest); err != nil {
			t.Fatalf("Remove: %v", err)
		}
	}
	if _, err := s.Open(digest); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("Open after Remove = %v, want %s", err, baton.ENOTFOUND)
	}
}

func TestNewStoreRemovesLeftUploads(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, tempPrefix+"stale")
	fresh := filepath.Join(dir, tempPrefix+"fresh")
	other := filepath.Join(dir, "notes.txt")
	for _, p := range []string{stale, fresh, other} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewStore(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stale, fresh} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("upload left by an earlier process still there: %s: %v", filepath.Base(p), err)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("%s was removed: %v", filepath.Base(other), err)
	}
}

// TestStoreListRenewsStored: List reports size and time stored; storing
// the same content again renews the time, so collection's grace for an
// artifact no revision names yet starts again with each upload.
func TestStoreListRenewsStored(t *testing.T) {
	s, _ := newStore(t)
	digest, _, err := s.Put(strings.NewReader("content"), 0)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(s.Path(digest), past, past); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].Digest != digest || list[0].Size != 7 || !list[0].Stored.Equal(past) {
		t.Fatalf("List = %+v, %v; want %s of 7 bytes stored %s", list, err, digest, past)
	}
	if _, _, err := s.Put(strings.NewReader("content"), 0); err != nil {
		t.Fatal(err)
	}
	if list, _ = s.List(); time.Since(list[0].Stored) > time.Minute {
		t.Fatalf("stored again: List says stored %s, want now", list[0].Stored)
	}
}

// TestStoreReceiveCommit: a received upload is readable at Path before
// Commit but not stored under its digest; Commit stores it there.
func TestStoreReceiveCommit(t *testing.T) {
	s, dir := newStore(t)
	u, err := s.Receive(strings.NewReader("received"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(u.Path()); err != nil || string(got) != "received" {
		t.Fatalf("before Commit, Path holds %q, %v", got, err)
	}
	if _, err := s.Open(u.Digest); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("before Commit, Open = %v, want %s", err, baton.ENOTFOUND)
	}
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	u.Abort() // after Commit: nothing
	if got := storeFiles(t, dir); len(got) != 1 || got[0] != filepath.Join("sha256", u.Digest) {
		t.Fatalf("after Commit the store holds %v, want only sha256/%s", got, u.Digest)
	}
	if u.Path() != s.Path(u.Digest) {
		t.Fatalf("after Commit Path = %s, want %s", u.Path(), s.Path(u.Digest))
	}
}

// TestStoreReceiveAbort: an aborted upload leaves nothing behind, and
// aborting one of content already stored keeps the stored artifact.
func TestStoreReceiveAbort(t *testing.T) {
	s, dir := newStore(t)
	u, err := s.Receive(strings.NewReader("dropped"), 0)
	if err != nil {
		t.Fatal(err)
	}
	u.Abort()
	if got := storeFiles(t, dir); len(got) != 0 {
		t.Fatalf("after Abort the store holds %v, want nothing", got)
	}
	digest, _, err := s.Put(strings.NewReader("kept"), 0)
	if err != nil {
		t.Fatal(err)
	}
	u, err = s.Receive(strings.NewReader("kept"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path() != s.Path(digest) {
		t.Fatalf("content already stored: Path = %s, want %s", u.Path(), s.Path(digest))
	}
	u.Abort()
	if f, err := s.Open(digest); err != nil {
		t.Fatalf("the stored artifact is gone after an aborted upload of the same content: %v", err)
	} else {
		f.Close()
	}
}
