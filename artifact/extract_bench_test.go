package artifact

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchArtifacts stores two zip artifacts of one app that differ only in
// a small file, as two deploys of one build: a Go binary (this test's
// own, a few MiB, deflated) beside a version file.
func benchArtifacts(b *testing.B, s *Store) (string, string) {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		b.Fatal(err)
	}
	var digests []string
	for _, v := range []string{"v1", "v2"} {
		z := makeZip(b, file("baton.toml", "[run]\ncommand = \"./app\"\n"), file("version.txt", v), exe("app", string(bin)))
		d, _, err := s.Put(bytes.NewReader(z), 0)
		if err != nil {
			b.Fatal(err)
		}
		digests = append(digests, d)
	}
	return digests[0], digests[1]
}

// BenchmarkExtractZip unpacks a deploy's artifact into a new revision
// folder: "plain" by Extract (no entry cache), "fresh" by Store.Extract
// with nothing unpacked before (it fills the cache), "next" by
// Store.Extract when the previous deploy's artifact had the same large
// entry, "next-unknown" the same in a store that did not see the upload
// (baton restarted since): it hashes the entry to find it in the cache
// instead of using the key Put computed.
func BenchmarkExtractZip(b *testing.B) {
	ctx := context.Background()
	for _, name := range []string{"plain", "fresh", "next", "next-unknown"} {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			s, err := NewStore(dir)
			if err != nil {
				b.Fatal(err)
			}
			v1, v2 := benchArtifacts(b, s)
			if name == "next-unknown" {
				if s, err = NewStore(dir); err != nil {
					b.Fatal(err)
				}
			}
			dirs := b.TempDir()
			i := 0
			extract := func(digest string) {
				i++
				if name == "plain" {
					if err := Extract(ctx, s.Path(digest), KindZip, filepath.Join(dirs, fmt.Sprint(i)), Limits{}); err != nil {
						b.Fatal(err)
					}
					return
				}
				if err := s.Extract(ctx, ExtractRequest{Digest: digest, Kind: KindZip, Dest: filepath.Join(dirs, fmt.Sprint(i)), Scope: "app"}); err != nil {
					b.Fatal(err)
				}
			}
			if name == "next" || name == "next-unknown" {
				extract(v1)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				digest := v2
				if name == "fresh" {
					// A store without the entry: a new one each time.
					b.StopTimer()
					s.dropEntries()
					b.StartTimer()
				}
				extract(digest)
			}
		})
	}
}
