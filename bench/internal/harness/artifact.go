package harness

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// zipTime is every entry's modification time (as artifact.Pack does), so
// equal contents give equal digests.
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Example builds artifacts of the example app as `baton deploy
// examples/hello` sends them after `make demo` built the binary into the
// folder: the folder's files, the app binary as ./hello, and a
// version.txt per artifact. The binary is compressed once and copied raw
// into every zip, so a hundred artifacts cost one compression.
type Example struct {
	files map[string][]byte // small files of the folder, by name
	bin   rawEntry
}

// rawEntry is a deflated file ready for zip.Writer.CreateRaw.
type rawEntry struct {
	data       []byte
	crc        uint32
	size       uint64
	compressed uint64
}

// NewExample reads the example folder dir (regular files at its top; a
// stray built "hello" is ignored) and the app binary bin. A non-empty
// manifest replaces the folder's baton.toml.
func NewExample(dir, bin, manifest string) (*Example, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read the example folder: %w (run from the repository root or pass -example)", err)
	}
	e := &Example{files: map[string][]byte{}}
	for _, ent := range entries {
		if !ent.Type().IsRegular() || ent.Name() == "hello" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			return nil, err
		}
		e.files[ent.Name()] = b
	}
	if manifest != "" {
		e.files["baton.toml"] = []byte(manifest)
	}
	if _, ok := e.files["baton.toml"]; !ok {
		return nil, fmt.Errorf("%s has no baton.toml", dir)
	}
	raw, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read the app binary: %w (build it with `go build -o bin/hello ./examples/hello` and pass -hello)", err)
	}
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	fw.Write(raw)
	if err := fw.Close(); err != nil {
		return nil, err
	}
	e.bin = rawEntry{data: buf.Bytes(), crc: crc32.ChecksumIEEE(raw), size: uint64(len(raw)), compressed: uint64(buf.Len())}
	return e, nil
}

// Zip returns a zip artifact of the example app answering with version.
func (e *Example) Zip(version string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files := map[string][]byte{}
	for k, v := range e.files {
		files[k] = v
	}
	files["version.txt"] = []byte(version + "\n")
	if err := writeFiles(zw, files); err != nil {
		return nil, err
	}
	h := &zip.FileHeader{Name: "hello", Method: zip.Deflate, Modified: zipTime,
		CRC32: e.bin.crc, UncompressedSize64: e.bin.size, CompressedSize64: e.bin.compressed}
	h.SetMode(0o755)
	w, err := zw.CreateRaw(h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(e.bin.data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ThinZip returns a tiny zip artifact that runs the app binary bin (an
// path on this machine) instead of carrying it, as the e2e tests
// do: a manifest and a version.txt. bin is made absolute. healthInterval is the manifest's
// [health] interval.
func ThinZip(bin, version, healthInterval string) ([]byte, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	manifest := fmt.Sprintf("[run]\ncommand = %q\n[health]\npath = \"/healthz\"\ninterval = %q\nstart_timeout = \"30s\"\n", bin, healthInterval)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	if err := writeFiles(zw, map[string][]byte{"baton.toml": []byte(manifest), "version.txt": []byte(version + "\n")}); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeFiles(zw *zip.Writer, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := &zip.FileHeader{Name: n, Method: zip.Deflate, Modified: zipTime}
		h.SetMode(fs.FileMode(0o644))
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := w.Write(files[n]); err != nil {
			return err
		}
	}
	return nil
}
