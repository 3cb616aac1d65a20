package artifact

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// Put remembers the keys of a zip's large entries, the same keys
// extraction computes from the stored file, and nothing for other
// archives.
func TestPutRemembersLargeEntryKeys(t *testing.T) {
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := putZip(t, s, file("version.txt", "v1"), exe("app", bigBody("a")), file("big.txt", bigBody("b")), file("small", "s"))
	known := s.keys.get(d)
	f, err := os.Open(s.Path(d))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]string{}
	for _, zf := range zr.File {
		if !cacheable(zf) {
			continue
		}
		off, err := zf.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		if want[off], err = entryKey(zf, make([]byte, 512)); err != nil {
			t.Fatal(err)
		}
	}
	if len(want) != 2 || len(known) != len(want) {
		t.Fatalf("Put remembered %d keys, extraction would compute %d; want 2 (the two large files)", len(known), len(want))
	}
	for off, k := range want {
		if known[off] != k {
			t.Errorf("key of the entry at %d: remembered %q, computed %q", off, known[off], k)
		}
	}

	tgz, _, err := s.Put(bytes.NewReader(makeTarGz(t, exe("app", bigBody("a")))), 0)
	if err != nil {
		t.Fatal(err)
	}
	if k := s.keys.get(tgz); k != nil {
		t.Errorf("Put remembered keys %v for a tar.gz", k)
	}
	if k := largeEntryKeys(bytes.NewReader([]byte("not a zip at all")), 16); k != nil {
		t.Errorf("largeEntryKeys of garbage = %v, want nil", k)
	}
}

// The next artifact's large entry comes from the cache whether its keys
// were remembered by Put or, in a store that did not see the upload
// (baton restarted since), computed during extraction. To tell a copy
// from the cache apart from an inflated entry, the test marks the cached
// content (same size, other bytes).
func TestStoreExtractReusesEntriesWithOrWithoutKnownKeys(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(map[bool]string{false: "keys from Put", true: "after a restart"}[restart], func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			s, err := NewStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			big := bigBody("a")
			v1 := putZip(t, s, file("version.txt", "v1"), exe("app", big))
			v2 := putZip(t, s, file("version.txt", "v2"), exe("app", big))
			dirs := t.TempDir()
			if err := s.Extract(ctx, ExtractRequest{Digest: v1, Kind: KindZip, Dest: filepath.Join(dirs, "r1"), Scope: "app"}); err != nil {
				t.Fatal(err)
			}
			es, err := os.ReadDir(s.entriesDir())
			if err != nil {
				t.Fatal(err)
			}
			marked := bytes.Repeat([]byte("m"), len(big))
			for _, e := range es {
				if e.Type().IsRegular() {
					if err := os.WriteFile(filepath.Join(s.entriesDir(), e.Name()), marked, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			if restart {
				if s, err = NewStore(dir); err != nil {
					t.Fatal(err)
				}
				if k := s.keys.get(v2); k != nil {
					t.Fatalf("a new store knows keys %v it never computed", k)
				}
			} else if s.keys.get(v2) == nil {
				t.Fatal("Put remembered no keys for v2")
			}
			r2 := filepath.Join(dirs, "r2")
			if err := s.Extract(ctx, ExtractRequest{Digest: v2, Kind: KindZip, Dest: r2, Scope: "app"}); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(r2, "app")); got != string(marked) {
				t.Fatalf("app was inflated again (%.20q…), not copied from the cache", got)
			}
		})
	}
}
