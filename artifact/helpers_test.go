package artifact

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

// entry describes one archive entry for the builders below.
type entry struct {
	name string
	body string
	// mode is the file mode; 0 means a plain 0644 file. fs.ModeDir and
	// fs.ModeSymlink make folders and links (link is the target).
	mode fs.FileMode
	link string
	// tarType overrides the tar type flag (hard links, devices).
	tarType byte
}

func dir(name string) entry          { return entry{name: name, mode: fs.ModeDir | 0o755} }
func file(name, body string) entry   { return entry{name: name, body: body, mode: 0o644} }
func exe(name, body string) entry    { return entry{name: name, body: body, mode: 0o755} }
func symlink(name, to string) entry  { return entry{name: name, link: to, mode: fs.ModeSymlink | 0o777} }
func hardlink(name, to string) entry { return entry{name: name, link: to, tarType: tar.TypeLink} }

func makeZip(tb testing.TB, entries ...entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			tb.Fatalf("zip entry %q: %v", e.name, err)
		}
		body := e.body
		if mode&fs.ModeSymlink != 0 {
			body = e.link
		}
		if _, err := w.Write([]byte(body)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func makeTarGz(tb testing.TB, entries ...entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: int64(e.mode.Perm()), Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.tarType != 0:
			h.Typeflag, h.Linkname, h.Size = e.tarType, e.link, 0
		case e.mode&fs.ModeDir != 0:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatalf("tar entry %q: %v", e.name, err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func makeArchive(tb testing.TB, kind string, entries ...entry) []byte {
	tb.Helper()
	if kind == KindZip {
		return makeZip(tb, entries...)
	}
	return makeTarGz(tb, entries...)
}

// unpackResult is where extractBytes put things.
type unpackResult struct {
	dest    string // the revision folder
	parent  string // dest's parent, which holds only dest and outside
	outside string // a sibling folder that must stay empty
}

// extractBytes writes data to a file and extracts it into a fresh folder
// next to an empty sentinel folder.
func extractBytes(tb testing.TB, ctx context.Context, kind string, data []byte, lim Limits) (unpackResult, error) {
	tb.Helper()
	archive := filepath.Join(tb.TempDir(), "artifact")
	if err := os.WriteFile(archive, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	parent := tb.TempDir()
	r := unpackResult{dest: filepath.Join(parent, "dest"), parent: parent, outside: filepath.Join(parent, "outside")}
	if err := os.Mkdir(r.outside, 0o755); err != nil {
		tb.Fatal(err)
	}
	return r, Extract(ctx, archive, kind, r.dest, lim)
}

// checkNothingEscaped fails unless parent holds only outside (empty) and,
// if destWanted, dest.
func checkNothingEscaped(tb testing.TB, r unpackResult, destWanted bool) {
	tb.Helper()
	names := readDirNames(tb, r.parent)
	want := []string{"outside"}
	if destWanted {
		want = []string{"dest", "outside"}
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		tb.Errorf("parent folder holds %v, want %v", names, want)
	}
	if got := readDirNames(tb, r.outside); len(got) != 0 {
		tb.Errorf("sentinel folder holds %v, want nothing", got)
	}
}

func readDirNames(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// wantCode fails unless err is a *baton.Error with the given code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	var be *baton.Error
	if !errors.As(err, &be) {
		tb.Fatalf("error = %v (%T), want a *baton.Error with code %s", err, err, code)
	}
	if be.Code != code {
		tb.Fatalf("error code = %s (%v), want %s", be.Code, err, code)
	}
}
