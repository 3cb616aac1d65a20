package coordinator

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFolderBytes: an idle revision folder's size is kept from the last
// measure while the directory is the same one; a folder in use, or one
// written anew, is measured again.
func TestFolderBytes(t *testing.T) {
	c := &Coordinator{}
	dir := filepath.Join(t.TempDir(), "rev")
	write := func(path string, n int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	measure := func(fresh bool) int64 {
		t.Helper()
		seen := map[string]folderSize{}
		n, err := c.folderBytes(dir, fresh, seen)
		if err != nil {
			t.Fatal(err)
		}
		c.folderSizes = seen
		return n
	}
	write(filepath.Join(dir, "sub", "a"), 3)
	if n := measure(false); n != 3 {
		t.Fatalf("first measure: %d bytes, want 3", n)
	}
	// Deep inside, the folder's own modification time stays: an idle
	// folder is not walked again.
	write(filepath.Join(dir, "sub", "b"), 5)
	if n := measure(false); n != 3 {
		t.Fatalf("idle folder: %d bytes, want the 3 measured before (not walked again)", n)
	}
	if n := measure(true); n != 8 {
		t.Fatalf("folder in use: %d bytes, want 8 (measured again)", n)
	}
	// Written anew (a restore): another directory, measured again even
	// if the file system hands out the same inode.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dir, "c"), 1)
	if err := os.Chtimes(dir, time.Time{}, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := measure(false); n != 1 {
		t.Fatalf("folder written anew: %d bytes, want 1", n)
	}
	// A folder gone is an error, and leaves the kept sizes.
	os.RemoveAll(dir)
	if _, err := c.folderBytes(dir, false, map[string]folderSize{}); err == nil {
		t.Fatal("a folder gone: no error")
	}
}

// BenchmarkFolderBytes: what a collection spends on the folders of 20
// kept revisions of 2,000 files each, idle (kept sizes) and walked.
func BenchmarkFolderBytes(b *testing.B) {
	root := b.TempDir()
	var dirs []string
	for i := range 20 {
		dir := filepath.Join(root, "rev", string(rune('a'+i)))
		for j := range 2000 {
			sub := filepath.Join(dir, "node_modules", string(rune('a'+j%20)))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(sub, string(rune('A'+j/20))), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		dirs = append(dirs, dir)
	}
	for _, fresh := range []bool{false, true} {
		name := map[bool]string{false: "idle", true: "walked"}[fresh]
		b.Run(name, func(b *testing.B) {
			c := &Coordinator{}
			for b.Loop() {
				seen := map[string]folderSize{}
				for _, d := range dirs {
					if _, err := c.folderBytes(d, fresh, seen); err != nil {
						b.Fatal(err)
					}
				}
				c.folderSizes = seen
			}
		})
	}
}
