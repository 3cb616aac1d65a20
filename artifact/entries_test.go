package artifact

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// bigBody is a file body over minCachedEntry.
func bigBody(seed string) string { return strings.Repeat(seed+" big entry\n", minCachedEntry/8) }

func putZip(t *testing.T, s *Store, entries ...entry) string {
	t.Helper()
	d, _, err := s.Put(bytes.NewReader(makeZip(t, entries...)), 0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func cachedEntries(t *testing.T, s *Store) int {
	t.Helper()
	es, err := os.ReadDir(s.entriesDir())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if e.Type().IsRegular() {
			n++
		}
	}
	return n
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStoreExtractReusesLargeEntries: a large entry the previous artifact
// had is copied from the cache, with its content and mode; each revision
// folder stays its own (a build writing into one changes neither the
// cache nor the next folder).
func TestStoreExtractReusesLargeEntries(t *testing.T) {
	ctx := context.Background()
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	big := bigBody("a")
	v1 := putZip(t, s, file("version.txt", "v1"), exe("app", big), file("small", "s"))
	v2 := putZip(t, s, file("version.txt", "v2"), exe("app", big), file("small", "s"))
	dirs := t.TempDir()
	r1, r2, r3 := filepath.Join(dirs, "r1"), filepath.Join(dirs, "r2"), filepath.Join(dirs, "r3")
	if err := s.Extract(ctx, ExtractRequest{Digest: v1, Kind: KindZip, Dest: r1, Scope: "app"}); err != nil {
		t.Fatal(err)
	}
	if n := cachedEntries(t, s); n != 1 {
		t.Fatalf("%d entries cached, want 1 (only the large one)", n)
	}
	// A build of r1 writes into its file in place.
	if err := os.WriteFile(filepath.Join(r1, "app"), []byte("built over"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{r2, r3} {
		if err := s.Extract(ctx, ExtractRequest{Digest: v2, Kind: KindZip, Dest: dir, Scope: "app"}); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(dir, "app")); got != big {
			t.Fatalf("%s/app has %d bytes, not the entry's %d", dir, len(got), len(big))
		}
		if got := readFile(t, filepath.Join(dir, "version.txt")); got != "v2" {
			t.Fatalf("%s/version.txt = %q", dir, got)
		}
		fi, err := os.Stat(filepath.Join(dir, "app"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Fatalf("%s/app has mode %v, want 0755", dir, fi.Mode())
		}
	}
	if err := os.WriteFile(filepath.Join(r2, "app"), []byte("built over"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(r3, "app")); got != big {
		t.Fatal("a write into one revision's file reached another's")
	}
	if n := cachedEntries(t, s); n != 1 {
		t.Fatalf("%d entries cached after reuse, want 1", n)
	}
	if n := s.EntryBytes("app"); n != int64(len(big))+64 {
		t.Fatalf("EntryBytes = %d, want the large entry's %d and its key's 64", n, len(big))
	}
}

// TestStoreExtractCachedEntryLimits: an entry copied from the cache
// counts against the unpack limit as an inflated one does.
func TestStoreExtractCachedEntryLimits(t *testing.T) {
	ctx := context.Background()
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	big := bigBody("b")
	d := putZip(t, s, exe("app", big))
	dirs := t.TempDir()
	if err := s.Extract(ctx, ExtractRequest{Digest: d, Kind: KindZip, Dest: filepath.Join(dirs, "r1"), Scope: "app"}); err != nil {
		t.Fatal(err)
	}
	err = s.Extract(ctx, ExtractRequest{Digest: d, Kind: KindZip, Dest: filepath.Join(dirs, "r2"), Limits: Limits{MaxBytes: int64(len(big)) - 1}, Scope: "app"})
	if baton.ErrorCode(err) != baton.EUNPROCESSABLE {
		t.Fatalf("over the limit from the cache: %v, want %s", err, baton.EUNPROCESSABLE)
	}
	if _, err := os.Stat(filepath.Join(dirs, "r2")); !os.IsNotExist(err) {
		t.Fatalf("the refused revision folder is left: %v", err)
	}
}

// TestTrimEntries keeps the entries of each scope's last extraction, and
// drops those of older ones and of scopes not extracted into for long.
func TestTrimEntries(t *testing.T) {
	ctx := context.Background()
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.TrimEntries(time.Hour); err != nil {
		t.Fatalf("trim with no cache yet: %v", err)
	}
	dirs := t.TempDir()
	n := 0
	extract := func(scope string, entries ...entry) {
		t.Helper()
		n++
		d := putZip(t, s, entries...)
		if err := s.Extract(ctx, ExtractRequest{Digest: d, Kind: KindZip, Dest: filepath.Join(dirs, fmt.Sprint(n)), Scope: scope}); err != nil {
			t.Fatal(err)
		}
	}
	trim := func(maxAge time.Duration, want int) {
		t.Helper()
		if err := s.TrimEntries(maxAge); err != nil {
			t.Fatal(err)
		}
		if got := cachedEntries(t, s); got != want {
			t.Fatalf("%d entries cached after trim, want %d", got, want)
		}
	}
	extract("a", exe("app", bigBody("1")))
	extract("b", exe("app", bigBody("2")))
	trim(time.Hour, 2)
	extract("a", exe("app", bigBody("3"))) // a's first entry is no longer its
	trim(time.Hour, 2)
	extract("a", file("small", "s")) // nor any large one
	trim(time.Hour, 1)
	trim(-time.Second, 0) // every scope past its age
}
