package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/testimage"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// buildDir holds what the helpers build once for all tests; made when
// first needed, removed by TestMain.
var buildDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

const serverSource = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", os.Getenv("GREETING"))
	})
	if err := http.ListenAndServe(os.Getenv("ADDR"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

var (
	serverOnce sync.Once
	serverBin  []byte
	serverErr  error
)

// serverBinary returns a static Go HTTP server that answers "hello from
// $GREETING" on $ADDR, built once.
func serverBinary(tb testing.TB) []byte {
	tb.Helper()
	serverOnce.Do(func() {
		if buildDir, serverErr = os.MkdirTemp("", "ociimage-test-"); serverErr != nil {
			return
		}
		src := filepath.Join(buildDir, "server")
		if serverErr = os.MkdirAll(src, 0o755); serverErr != nil {
			return
		}
		if serverErr = os.WriteFile(filepath.Join(src, "main.go"), []byte(serverSource), 0o644); serverErr != nil {
			return
		}
		if serverErr = os.WriteFile(filepath.Join(src, "go.mod"), []byte("module server\n\ngo 1.22\n"), 0o644); serverErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", "server", ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-mod=mod", "GOWORK=off")
		var out []byte
		if out, serverErr = cmd.CombinedOutput(); serverErr != nil {
			serverErr = errors.Join(serverErr, errors.New(string(out)))
			return
		}
		serverBin, serverErr = os.ReadFile(filepath.Join(src, "server"))
	})
	if serverErr != nil {
		tb.Fatalf("build test server: %v", serverErr)
	}
	return serverBin
}

// entry is one tar entry of a test layer.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func dirE(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }
func fileE(name, body string) entry {
	return entry{name: name, body: body, typ: tar.TypeReg, mode: 0o644}
}
func modeE(name string, mode int64) entry {
	return entry{name: name, body: "x", typ: tar.TypeReg, mode: mode}
}
func symlinkE(name, to string) entry {
	return entry{name: name, link: to, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlinkE(name, to string) entry {
	return entry{name: name, link: to, typ: tar.TypeLink, mode: 0o644}
}
func specialE(name string, typ byte) entry { return entry{name: name, typ: typ, mode: 0o644} }

// tarBytes writes entries as an uncompressed tar.
func tarBytes(tb testing.TB, entries ...entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// layerOf returns a gzip layer of the tar data, compressed once.
func layerOf(tb testing.TB, data []byte) v1.Layer {
	tb.Helper()
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz.Bytes())), nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// imageOf returns a linux/amd64 image of the layers with cfg (defaults
// for a nil cfg: the test server's).
func imageOf(tb testing.TB, cfg *v1.Config, layers ...v1.Layer) v1.Image {
	tb.Helper()
	if cfg == nil {
		cfg = &v1.Config{
			Entrypoint: []string{"/app/server"},
			Env:        []string{"PATH=/usr/bin:/bin", "GREETING=baton"},
			WorkingDir: "/app",
			Labels:     map[string]string{"org.opencontainers.image.title": "hello"},
		}
	}
	img, err := testimage.Image(*cfg, layers...)
	if err != nil {
		tb.Fatal(err)
	}
	return img
}

// serverImage is the test server in /app with a baton.toml beside it,
// and an absolute symlink to try ReadFile on.
func serverImage(tb testing.TB) v1.Image {
	tb.Helper()
	serverImageOnce.Do(func() { serverImg = buildServerImage(tb) })
	if serverImg == nil {
		tb.Fatal("building the server image failed")
	}
	return serverImg
}

var (
	serverImageOnce sync.Once
	serverImg       v1.Image
)

func buildServerImage(tb testing.TB) v1.Image {
	bin := serverBinary(tb)
	base := layerOf(tb, tarBytes(tb, dirE("etc/", 0o755), fileE("etc/os-release", "ID=baton-test\n"), dirE("tmp/", 0o1777)))
	app := layerOf(tb, tarBytes(tb,
		dirE("app/", 0o755),
		entry{name: "app/server", body: string(bin), typ: tar.TypeReg, mode: 0o755},
		fileE("app/baton.toml", "[app]\nport = 8080\n"),
		symlinkE("app/release", "/etc/os-release"),
	))
	return imageOf(tb, nil, base, app)
}

// newStore opens a store in a temp dir, checking at cleanup that nothing
// half written was left.
func newStore(tb testing.TB, lim Limits) *Store {
	tb.Helper()
	s, err := Open(tb.TempDir(), lim)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { checkNoLeftovers(tb, s) })
	return s
}

// checkNoLeftovers fails if the store holds temporary files, uploads or
// blobs no image uses.
func checkNoLeftovers(tb testing.TB, s *Store) {
	tb.Helper()
	for _, sub := range []string{"blobs/sha256", "images", "rootfs", "uploads", "tmp"} {
		entries, err := os.ReadDir(filepath.Join(s.dir, sub))
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || sub == "uploads" || sub == "tmp" {
				tb.Errorf("left over: %s/%s", sub, e.Name())
			}
		}
	}
}

// blobNames lists blobs/sha256.
func blobNames(tb testing.TB, s *Store) []string {
	tb.Helper()
	entries, err := os.ReadDir(filepath.Join(s.dir, "blobs", "sha256"))
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// pushed serves ggcr's in-memory registry, wrapped by wrap if not nil,
// pushes img as repo:tag and returns the reference to pull.
func pushed(tb testing.TB, img v1.Image, repoTag string) (ref string, srv *httptest.Server) {
	tb.Helper()
	srv = httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(discardLogger())))
	tb.Cleanup(srv.Close)
	ref = strings.TrimPrefix(srv.URL, "http://") + "/" + repoTag
	push(tb, img, ref)
	return ref, srv
}

func push(tb testing.TB, img v1.Image, ref string) {
	tb.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		tb.Fatal(err)
	}
}

// wantCode fails unless err is a baton error with code whose message
// contains each of parts.
func wantCode(tb testing.TB, err error, code string, parts ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("err = nil, want %s", code)
	}
	if got := baton.ErrorCode(err); got != code {
		tb.Fatalf("err = %v (code %s), want code %s", err, got, code)
	}
	tb.Logf("%s: %s", code, baton.ErrorMessage(err))
	for _, p := range parts {
		if !strings.Contains(baton.ErrorMessage(err), p) {
			tb.Errorf("message %q lacks %q", baton.ErrorMessage(err), p)
		}
	}
}

// modeOf returns the mode of p, not following links.
func modeOf(tb testing.TB, p string) fs.FileMode {
	tb.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Mode()
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func execCommand(ctx context.Context, bin string) *exec.Cmd { return exec.CommandContext(ctx, bin) }

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// pollGet GETs url until it answers 200, for up to 10 s.
func pollGet(tb testing.TB, url string) string {
	tb.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body)
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("GET %s: %v", url, err)
		}
		<-tick.C
	}
}

// writeAny pushes an image or an index to ref.
func writeAny(tb testing.TB, x any, ref string) {
	tb.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	switch x := x.(type) {
	case v1.Image:
		err = remote.Write(r, x)
	case v1.ImageIndex:
		err = remote.WriteIndex(r, x)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

func mutateConfig(img v1.Image, cf *v1.ConfigFile) (v1.Image, error) {
	return mutate.ConfigFile(img, cf)
}
