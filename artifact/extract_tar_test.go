package artifact

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/batonhq/baton"
)

// plainTar writes headers (with bodies for regular files) as a tar.
func plainTar(tb testing.TB, hdrs ...*tar.Header) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		body := []byte("x")
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(body)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func reg(name string, mode int64) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}
}
func dirH(name string, mode int64) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode}
}
func linkH(name, to string, typ byte) *tar.Header {
	return &tar.Header{Name: name, Linkname: to, Typeflag: typ, Mode: 0o777}
}

// extractTarBytes runs ExtractTar into a fresh dest beside an empty
// folder, which must stay empty.
func extractTarBytes(t *testing.T, r io.Reader, opt TarOptions) (string, error) {
	t.Helper()
	parent := t.TempDir()
	outside := filepath.Join(parent, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(parent, "dest")
	err := ExtractTar(context.Background(), r, dest, Limits{}, opt)
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("wrote outside dest: %v", entries)
	}
	if _, serr := os.Lstat(dest); (serr == nil) != (err == nil) {
		t.Fatalf("ExtractTar = %v, but dest exists = %v", err, serr == nil)
	}
	return dest, err
}

func TestExtractTarDefaultsAreExtracts(t *testing.T) {
	dest, err := extractTarBytes(t, bytes.NewReader(plainTar(t, reg("run", 0o4755), reg("data", 0o600))), TarOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"run": 0o755, "data": 0o644} {
		if fi, err := os.Lstat(filepath.Join(dest, name)); err != nil || fi.Mode() != want {
			t.Errorf("%s: %v, %v; want %v", name, fi.Mode(), err, want)
		}
	}
	_, err = extractTarBytes(t, bytes.NewReader(plainTar(t, linkH("l", "/etc", tar.TypeSymlink))), TarOptions{})
	wantCode(t, err, baton.EUNPROCESSABLE)
}

func TestExtractTarKeepModes(t *testing.T) {
	data := plainTar(t, reg("su", 0o4755), reg("sg", 0o2750), reg("secret", 0o600), dirH("tmp/", 0o1777), dirH("ro/", 0o500), reg("ro/f", 0o644))
	dest, err := extractTarBytes(t, bytes.NewReader(data), TarOptions{KeepModes: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"su": 0o755, "sg": 0o750, "secret": 0o600, "tmp": fs.ModeDir | fs.ModeSticky | 0o777, "ro": fs.ModeDir | 0o500} {
		if fi, err := os.Lstat(filepath.Join(dest, name)); err != nil || fi.Mode() != want {
			t.Errorf("%s: %v, %v; want %v", name, fi.Mode(), err, want)
		}
	}
}

func TestExtractTarContainerLinks(t *testing.T) {
	data := plainTar(t,
		linkH("localtime", "/usr/share/zoneinfo/UTC", tar.TypeSymlink),
		linkH("up", "../../..", tar.TypeSymlink),
		linkH("later", "lib/a", tar.TypeLink), // a flattened image lists upper layers first
		reg("lib/a", 0o644),
	)
	dest, err := extractTarBytes(t, bytes.NewReader(data), TarOptions{ContainerLinks: true})
	if err != nil {
		t.Fatal(err)
	}
	if to, err := os.Readlink(filepath.Join(dest, "localtime")); err != nil || to != "/usr/share/zoneinfo/UTC" {
		t.Errorf("localtime -> %q, %v", to, err)
	}
	a, _ := os.Stat(filepath.Join(dest, "lib/a"))
	if l, err := os.Stat(filepath.Join(dest, "later")); err != nil || !os.SameFile(a, l) {
		t.Errorf("later is not a hard link to lib/a: %v", err)
	}

	// Links may point anywhere, but nothing is written through one out.
	outsideLink := plainTar(t, linkH("l", "/", tar.TypeSymlink), reg("l/tmp/evil", 0o644))
	_, err = extractTarBytes(t, bytes.NewReader(outsideLink), TarOptions{ContainerLinks: true})
	wantCode(t, err, baton.EUNPROCESSABLE)
	if !containsMsg(err, "l/tmp/evil") {
		t.Errorf("error %v does not name the entry", err)
	}
	_, err = extractTarBytes(t, bytes.NewReader(plainTar(t, linkH("h", "nope", tar.TypeLink))), TarOptions{ContainerLinks: true})
	wantCode(t, err, baton.EUNPROCESSABLE)
	if !containsMsg(err, "not a file in the image") {
		t.Errorf("error %v does not say the target is missing", err)
	}
}

// TestExtractTarSeesLateErrors: a writer that fails after the trailer
// (mutate.Extract closes its tar writer, then reports the error) fails
// the unpack.
func TestExtractTarSeesLateErrors(t *testing.T) {
	late := errors.New("layer failed after the trailer")
	r := io.MultiReader(bytes.NewReader(plainTar(t, reg("a", 0o644))), errReader{late})
	_, err := extractTarBytes(t, r, TarOptions{})
	if !errors.Is(err, late) && !containsMsg(err, late.Error()) {
		t.Errorf("ExtractTar = %v, want the late error", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func containsMsg(err error, s string) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte(s))
}
