package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton"
)

var kinds = []string{KindZip, KindTarGz}

func TestExtractGood(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			data := makeArchive(t, kind,
				dir("app/"),
				exe("app/run.sh", "#!/bin/sh\necho hi\n"),
				file("app/static/css/site.css", "body{}"),
				dir("app/empty/"),
				symlink("app/current", "static"),
				symlink("app/static/up", "../run.sh"),
				file("./top.txt", "top"),
				file("app/static/css/site.css", "body{color:red}"), // a later duplicate wins
			)
			r, err := extractBytes(t, t.Context(), kind, data, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			checkNothingEscaped(t, r, true)
			wantFile(t, r.dest, "app/run.sh", "#!/bin/sh\necho hi\n", 0o755)
			wantFile(t, r.dest, "app/static/css/site.css", "body{color:red}", 0o644)
			wantFile(t, r.dest, "top.txt", "top", 0o644)
			wantFile(t, r.dest, "app/current/css/site.css", "body{color:red}", 0o644)
			wantLink(t, r.dest, "app/current", "static")
			wantLink(t, r.dest, "app/static/up", "../run.sh")
			if fi, err := os.Stat(filepath.Join(r.dest, "app/empty")); err != nil || !fi.IsDir() {
				t.Errorf("app/empty: %v, want a folder", err)
			}
		})
	}
}

func TestExtractTarHardLink(t *testing.T) {
	data := makeTarGz(t, exe("bin/tool", "x"), hardlink("bin/alias", "bin/tool"), hardlink("bin/tool", "bin/tool"))
	r, err := extractBytes(t, t.Context(), KindTarGz, data, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, r.dest, "bin/alias", "x", 0o755)
	wantFile(t, r.dest, "bin/tool", "x", 0o755)
}

func TestExtractBackslashSeparators(t *testing.T) {
	data := makeZip(t, file(`web\index.html`, "hi"))
	r, err := extractBytes(t, t.Context(), KindZip, data, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, r.dest, "web/index.html", "hi", 0o644)
}

func TestExtractHostile(t *testing.T) {
	big := strings.Repeat("\x00", 2<<20)
	tests := []struct {
		name    string
		kinds   []string
		entries []entry
		lim     Limits
		want    string // part of the message
	}{
		{"absolute path", kinds, []entry{file("/tmp/evil", "x")}, Limits{}, `"/tmp/evil" escapes`},
		{"dot dot", kinds, []entry{file("../../x", "x")}, Limits{}, `"../../x" escapes`},
		{"dot dot inside", kinds, []entry{file("a/../../x", "x")}, Limits{}, "escapes"},
		{"backslash dot dot", kinds, []entry{file(`..\x`, "x")}, Limits{}, "escapes"},
		{"backslash absolute", kinds, []entry{file(`\x`, "x")}, Limits{}, "escapes"},
		{"empty name", kinds, []entry{file("", "x")}, Limits{}, "empty name"},
		{"only dots", kinds, []entry{file("./.", "x")}, Limits{}, "no file name"},
		{"NUL in name", []string{KindZip}, []entry{file("a\x00b", "x")}, Limits{}, "NUL"}, // tar cannot encode it
		{"absolute symlink", kinds, []entry{symlink("l", "/etc")}, Limits{}, "absolute path"},
		{"symlink up", kinds, []entry{symlink("l", "..")}, Limits{}, "outside the revision folder"},
		{"nested symlink up", kinds, []entry{symlink("a/b/l", "../../../x")}, Limits{}, "outside the revision folder"},
		{"symlink chain", kinds, []entry{dir("d/"), symlink("x", "d/l/.."), symlink("d/l", "..")}, Limits{}, "through other links"},
		{"write through chain", kinds, []entry{dir("d/"), symlink("d/l", ".."), symlink("x", "d/l/.."), file("x/evil", "x")}, Limits{}, `"x/evil" cannot be unpacked`},
		{"symlink loop", kinds, []entry{symlink("a", "b"), symlink("b", "a")}, Limits{}, "loop"},
		{"symlink backslash", kinds, []entry{symlink("l", `..\..\x`)}, Limits{}, "unusable target"},
		{"hard link outside", []string{KindTarGz}, []entry{hardlink("h", "../x")}, Limits{}, "outside the revision folder"},
		{"hard link absolute", []string{KindTarGz}, []entry{hardlink("h", "/etc/passwd")}, Limits{}, "outside the revision folder"},
		{"hard link missing", []string{KindTarGz}, []entry{hardlink("h", "nope")}, Limits{}, "not a file earlier"},
		{"hard link to symlink", []string{KindTarGz}, []entry{dir("a/b/"), symlink("a/b/l", "../.."), hardlink("top", "a/b/l")}, Limits{}, "not a file earlier"},
		{"char device", []string{KindTarGz}, []entry{{name: "null", tarType: tar.TypeChar}}, Limits{}, "device"},
		{"block device", []string{KindTarGz}, []entry{{name: "sda", tarType: tar.TypeBlock}}, Limits{}, "device"},
		{"fifo", []string{KindTarGz}, []entry{{name: "p", tarType: tar.TypeFifo}}, Limits{}, "named pipe"},
		{"unknown tar type", []string{KindTarGz}, []entry{{name: "v", tarType: 'V'}}, Limits{}, "tar type"},
		{"zip pipe", []string{KindZip}, []entry{{name: "p", mode: fs.ModeNamedPipe | 0o644}}, Limits{}, "pipe"},
		{"zip device", []string{KindZip}, []entry{{name: "d", mode: fs.ModeDevice | fs.ModeCharDevice | 0o644}}, Limits{}, "device"},
		{"file replaces folder", kinds, []entry{dir("a/"), file("a/keep", "x"), file("a", "x")}, Limits{}, "replace the folder"},
		{"symlink replaces folder", kinds, []entry{dir("a/"), symlink("a", "b")}, Limits{}, "replace the folder"},
		{"folder replaces file", kinds, []entry{file("a", "x"), dir("a/")}, Limits{}, "earlier entry made it a file"},
		{"file under file", kinds, []entry{file("a", "x"), file("a/b", "x")}, Limits{}, `"a/b" cannot be unpacked`},
		{"bomb", kinds, []entry{file("zeros", big)}, Limits{MaxBytes: 1 << 20}, "unpacks to more than 1.0 MiB (limit)"},
		{"bomb over many files", kinds, []entry{file("a", big[:600<<10]), file("b", big[:600<<10])}, Limits{MaxBytes: 1 << 20}, "more than 1.0 MiB"},
		{"too many entries", kinds, []entry{file("a", ""), file("b", ""), file("c", ""), file("d", "")}, Limits{MaxFiles: 3}, "more than 3 entries"},
	}
	for _, tt := range tests {
		for _, kind := range tt.kinds {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				data := makeArchive(t, kind, tt.entries...)
				r, err := extractBytes(t, t.Context(), kind, data, tt.lim)
				wantCode(t, err, baton.EUNPROCESSABLE)
				if msg := baton.ErrorMessage(err); !strings.Contains(msg, tt.want) {
					t.Errorf("message %q does not contain %q", msg, tt.want)
				}
				checkNothingEscaped(t, r, false)
			})
		}
	}
}

func TestExtractZipSizeLies(t *testing.T) {
	// A header that claims a tiny size must not let more bytes through.
	data := makeZip(t, file("zeros", strings.Repeat("\x00", 2<<20)))
	i := bytes.Index(data, []byte("PK\x01\x02")) // central directory
	binaryPut32(data[i+24:], 10)                 // uncompressed size
	r, err := extractBytes(t, t.Context(), KindZip, data, Limits{MaxBytes: 1 << 20})
	wantCode(t, err, baton.EUNPROCESSABLE)
	checkNothingEscaped(t, r, false)
}

func binaryPut32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func TestExtractCorrupt(t *testing.T) {
	good := makeTarGz(t, file("a", strings.Repeat("hello ", 1000)))
	goodZip := makeZip(t, file("a", strings.Repeat("hello ", 1000)))
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	tests := []struct {
		name string
		kind string
		data []byte
	}{
		{"gzip magic then garbage", KindTarGz, []byte{0x1f, 0x8b, 1, 2, 3, 4, 5}},
		{"truncated tar.gz", KindTarGz, good[:len(good)/2]},
		{"flipped byte in tar.gz", KindTarGz, flipped},
		{"gzip of something not tar", KindTarGz, gzipBytes(t, bytes.Repeat([]byte("not a tar "), 100))},
		{"truncated zip", KindZip, goodZip[:len(goodZip)/2]},
		{"zip magic only", KindZip, []byte("PK\x03\x04")},
		{"empty file as zip", KindZip, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := extractBytes(t, t.Context(), tt.kind, tt.data, DefaultLimits())
			wantCode(t, err, baton.EUNPROCESSABLE)
			if msg := baton.ErrorMessage(err); !strings.HasPrefix(msg, "artifact is corrupt: ") {
				t.Errorf("message = %q, want it to start with %q", msg, "artifact is corrupt: ")
			}
			checkNothingEscaped(t, r, false)
		})
	}
}

func gzipBytes(tb testing.TB, data []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	if _, err := gz.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractDestExists(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "a.zip")
	if err := os.WriteFile(archive, makeZip(t, file("a", "x")), 0o600); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	keep := filepath.Join(dest, "keep")
	if err := os.WriteFile(keep, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Extract(t.Context(), archive, KindZip, dest, DefaultLimits()); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Extract into an existing folder: %v, want fs.ErrExist", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("existing folder was touched: %v", err)
	}
}

func TestExtractUnknownKind(t *testing.T) {
	r, err := extractBytes(t, t.Context(), "rar", nil, DefaultLimits())
	wantCode(t, err, baton.EINVALID)
	checkNothingEscaped(t, r, false)
}

// countdownCtx reports cancellation after its Err has been asked n times.
type countdownCtx struct {
	context.Context
	n atomic.Int64
}

func (c *countdownCtx) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestExtractCancel(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind+"/before", func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(t.Context())
			cause := errors.New("deployment cancelled by alice")
			cancel(cause)
			r, err := extractBytes(t, ctx, kind, makeArchive(t, kind, file("a", "x")), DefaultLimits())
			if !errors.Is(err, cause) {
				t.Fatalf("Extract = %v, want the cancel cause", err)
			}
			checkNothingEscaped(t, r, false)
		})
		t.Run(kind+"/inside a large entry", func(t *testing.T) {
			// One entry of 8 MiB takes 256 reads; cancelling after a
			// handful of checks proves the copy loop checks too.
			ctx := &countdownCtx{Context: t.Context()}
			ctx.n.Store(8)
			data := makeArchive(t, kind, file("big", strings.Repeat("x", 8<<20)))
			r, err := extractBytes(t, ctx, kind, data, DefaultLimits())
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Extract = %v, want context.Canceled", err)
			}
			checkNothingEscaped(t, r, false)
		})
	}
}

func wantFile(tb testing.TB, root, name, body string, perm fs.FileMode) {
	tb.Helper()
	p := filepath.Join(root, name)
	got, err := os.ReadFile(p)
	if err != nil {
		tb.Errorf("read %s: %v", name, err)
		return
	}
	if string(got) != body {
		tb.Errorf("%s = %q, want %q", name, got, body)
	}
	fi, err := os.Stat(p)
	if err != nil {
		tb.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		tb.Errorf("%s mode = %v, want %v", name, fi.Mode().Perm(), perm)
	}
}

func wantLink(tb testing.TB, root, name, target string) {
	tb.Helper()
	got, err := os.Readlink(filepath.Join(root, name))
	if err != nil {
		tb.Errorf("readlink %s: %v", name, err)
		return
	}
	if got != target {
		tb.Errorf("%s -> %q, want %q", name, got, target)
	}
}
