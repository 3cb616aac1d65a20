package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// hold puts img into s as Pull would.
func hold(t *testing.T, s *Store, img v1.Image) Image {
	t.Helper()
	got, err := s.add(context.Background(), img, "test", "", sourceErr)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func runImage(t *testing.T, layers ...[]entry) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, es := range layers {
		ls = append(ls, layerOf(t, tarBytes(t, es...)))
	}
	return imageOf(t, &v1.Config{Cmd: []string{"/run"}}, ls...)
}

func TestRootfsUnpacksOnce(t *testing.T) {
	s := newStore(t, Limits{})
	img := hold(t, s, runImage(t, []entry{dirE("app/", 0o755), fileE("app/a", "a")}, []entry{fileE("app/b", "b")}))
	const n = 16
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dirs[i], errs[i] = s.Rootfs(context.Background(), img.Digest) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("Rootfs #%d = %q, %v; #0 = %q", i, dirs[i], errs[i], dirs[0])
		}
	}
	if got := s.unpacks.Load(); got != 1 {
		t.Errorf("unpacked %d times, want once", got)
	}
	for _, f := range []string{"app/a", "app/b"} {
		if _, err := os.Stat(filepath.Join(dirs[0], f)); err != nil {
			t.Error(err)
		}
	}
}

func TestRootfsDigestMismatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"same size", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }},
		{"longer", func(b []byte) []byte { return append(b, 0) }},
		{"shorter", func(b []byte) []byte { return b[:len(b)-1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Limits{})
			img := hold(t, s, runImage(t, []entry{fileE("run", strings.Repeat("baton ", 1000))}))
			r, err := s.record(img.Digest)
			if err != nil {
				t.Fatal(err)
			}
			hex, _ := parseDigest(r.Layers[0].Digest)
			p := s.blobPath(hex)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, tc.damage(data), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = s.Rootfs(context.Background(), img.Digest)
			wantCode(t, err, baton.EUNPROCESSABLE, "does not match its digest", short(r.Layers[0].Digest))
			if _, err := os.Stat(s.rootfsPath(strings.TrimPrefix(img.Digest, "sha256:"))); !os.IsNotExist(err) {
				t.Errorf("a rootfs exists after the refusal: %v", err)
			}
		})
	}
}

func TestRootfsHostileLayers(t *testing.T) {
	outside := t.TempDir()
	for _, tc := range []struct {
		name    string
		layers  [][]entry // lowest first
		wantErr string    // "" for success
		check   func(t *testing.T, root string)
	}{
		{name: "dot dot", layers: [][]entry{{fileE("../evil", "x")}}, wantErr: "unsafe tar path"},
		{name: "dot dot inside", layers: [][]entry{{fileE("a/../../evil", "x")}}, wantErr: "unsafe tar path"},
		{name: "absolute path", layers: [][]entry{{fileE("/evil", "x")}}, wantErr: "escapes"},
		{name: "absolute hard link", layers: [][]entry{{hardlinkE("h", "/etc/passwd")}}, wantErr: "hard link"},
		{name: "hard link to nothing", layers: [][]entry{{hardlinkE("h", "nope")}}, wantErr: "not a file in the image"},
		{name: "character device", layers: [][]entry{{specialE("dev/null", tar.TypeChar)}}, wantErr: "device or named pipe"},
		{name: "block device", layers: [][]entry{{specialE("dev/sda", tar.TypeBlock)}}, wantErr: "device or named pipe"},
		{name: "fifo", layers: [][]entry{{specialE("run/fifo", tar.TypeFifo)}}, wantErr: "device or named pipe"},
		{
			name:   "write through absolute symlink in the same layer",
			layers: [][]entry{{symlinkE("l", outside), fileE("l/evil", "x")}},
			check: func(t *testing.T, root string) {
				// mutate.Extract drops entries under a path the layer made a link.
				if to, err := os.Readlink(filepath.Join(root, "l")); err != nil || to != outside {
					t.Errorf("l -> %q, %v", to, err)
				}
			},
		},
		{
			name:    "write through absolute symlink from a lower layer",
			layers:  [][]entry{{symlinkE("l", outside)}, {fileE("l/evil", "x")}},
			wantErr: "replace the folder",
		},
		{
			name:    "write through a symlink below an upper folder",
			layers:  [][]entry{{dirE("d/", 0o755), symlinkE("d/l", outside), fileE("d/l/evil", "x")}, {fileE("d/x", "x")}},
			wantErr: "",
			check: func(t *testing.T, root string) {
				if _, err := os.Lstat(filepath.Join(root, "d", "x")); err != nil {
					t.Error(err)
				}
			},
		},
		{
			name:   "relative symlink climbing out",
			layers: [][]entry{{symlinkE("l", "../../../../../.."+outside), fileE("m/x", "x")}},
			check: func(t *testing.T, root string) {
				// mutate.Extract drops relative links that leave the root.
				if _, err := os.Lstat(filepath.Join(root, "l")); !os.IsNotExist(err) {
					t.Errorf("l exists: %v", err)
				}
			},
		},
		{
			name:   "relative hard link climbing out",
			layers: [][]entry{{fileE("a", "x"), hardlinkE("h", "../../etc/passwd")}},
			check: func(t *testing.T, root string) {
				if _, err := os.Lstat(filepath.Join(root, "h")); !os.IsNotExist(err) {
					t.Errorf("h exists: %v", err)
				}
			},
		},
		{
			name:   "setuid and setgid dropped, modes kept",
			layers: [][]entry{{dirE("bin/", 0o755), modeE("bin/su", 0o4755), modeE("bin/sg", 0o2711), modeE("secret", 0o600), dirE("locked/", 0o500), fileE("locked/f", "x"), dirE("tmp/", 0o1777)}},
			check: func(t *testing.T, root string) {
				for name, want := range map[string]fs.FileMode{"bin/su": 0o755, "bin/sg": 0o711, "secret": 0o600, "locked": fs.ModeDir | 0o500, "tmp": fs.ModeDir | fs.ModeSticky | 0o777} {
					if got := modeOf(t, filepath.Join(root, name)); got != want {
						t.Errorf("%s mode = %v, want %v", name, got, want)
					}
				}
				var st syscall.Stat_t
				if err := syscall.Stat(filepath.Join(root, "bin/su"), &st); err != nil || st.Uid != uint32(os.Getuid()) {
					t.Errorf("bin/su owner = %d, %v; want %d", st.Uid, err, os.Getuid())
				}
			},
		},
		{
			name:   "whiteouts",
			layers: [][]entry{{fileE("a", "a"), fileE("keep", "k"), dirE("d/", 0o755), fileE("d/x", "x")}, {fileE(".wh.a", ""), fileE("d/.wh..wh..opq", ""), fileE("d/y", "y")}},
			check: func(t *testing.T, root string) {
				for name, want := range map[string]bool{"a": false, "keep": true, "d/x": false, "d/y": true, ".wh.a": false, "d/.wh..wh..opq": false} {
					if _, err := os.Lstat(filepath.Join(root, name)); (err == nil) != want {
						t.Errorf("%s exists = %v, want %v", name, err == nil, want)
					}
				}
			},
		},
		{
			name:   "hard link to a lower layer's file",
			layers: [][]entry{{fileE("lib/a", "A")}, {hardlinkE("lib/b", "lib/a")}},
			check: func(t *testing.T, root string) {
				a, _ := os.Stat(filepath.Join(root, "lib/a"))
				b, err := os.Stat(filepath.Join(root, "lib/b"))
				if err != nil || !os.SameFile(a, b) {
					t.Errorf("lib/b is not lib/a: %v", err)
				}
			},
		},
		{
			name:   "absolute symlink kept",
			layers: [][]entry{{symlinkE("etc/localtime", "/usr/share/zoneinfo/UTC")}},
			check: func(t *testing.T, root string) {
				if to, err := os.Readlink(filepath.Join(root, "etc/localtime")); err != nil || to != "/usr/share/zoneinfo/UTC" {
					t.Errorf("etc/localtime -> %q, %v", to, err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Limits{})
			img := hold(t, s, runImage(t, tc.layers...))
			dir, err := s.Rootfs(context.Background(), img.Digest)
			if tc.wantErr != "" {
				wantCode(t, err, baton.EUNPROCESSABLE, tc.wantErr, short(img.Digest))
			} else if err != nil {
				t.Fatal(err)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Fatalf("wrote outside the rootfs: %v", entries)
			}
			if tc.check != nil && err == nil {
				tc.check(t, dir)
			}
			if err != nil {
				if _, serr := os.Stat(s.rootfsPath(strings.TrimPrefix(img.Digest, "sha256:"))); !os.IsNotExist(serr) {
					t.Errorf("a rootfs exists after the refusal")
				}
			}
		})
	}
}

// TestRootfsBadGzipLayer: ggcr leaves a layer whose gzip header is bad
// open; the unpack must still end, and say which layer.
func TestRootfsBadGzipLayer(t *testing.T) {
	s := newStore(t, Limits{})
	junk := append([]byte{0x1f, 0x8b, 0xff}, []byte(strings.Repeat("junk", 100))...)
	manifest, layer := putManualImage(t, s, junk, int64(len(junk)))
	img, err := s.Adopt(manifest, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Rootfs(context.Background(), img.Digest)
	wantCode(t, err, baton.EUNPROCESSABLE, "layer "+short(layer), "not a usable tar archive")
}

// TestAdoptLayerSizeLies: a manifest that understates a layer's size (to
// pass the limits) is refused.
func TestAdoptLayerSizeLies(t *testing.T) {
	s := newStore(t, Limits{})
	data := tarBytes(t, fileE("run", strings.Repeat("x", 5000)))
	manifest, _ := putManualImage(t, s, data, 100)
	_, err := s.Adopt(manifest, "")
	wantCode(t, err, baton.EUNPROCESSABLE, "not the 100 bytes its manifest says")
	for _, b := range blobNames(t, s) {
		os.Remove(s.blobPath(b))
	}
}

// putManualImage puts a one-layer image's blobs, the manifest giving the
// layer size size, and returns the manifest and layer digests.
func putManualImage(t *testing.T, s *Store, layer []byte, size int64) (manifest, layerDigest string) {
	t.Helper()
	config := []byte(`{"os":"linux","architecture":"amd64","config":{"Cmd":["/run"]},"rootfs":{"type":"layers","diff_ids":["sha256:` + strings.Repeat("0", 64) + `"]}}`)
	put := func(data []byte) string {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
		if err := s.PutBlob(d, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	layerDigest, cfg := put(layer), put(config)
	manifest = put([]byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`, cfg, len(config), layerDigest, size)))
	return manifest, layerDigest
}

func TestRootfsExtractLimits(t *testing.T) {
	s := newStore(t, Limits{Extract: artifact.Limits{MaxFiles: 3, MaxBytes: 1 << 20}})
	img := hold(t, s, runImage(t, []entry{fileE("a", "a"), fileE("b", "b"), fileE("c", "c"), fileE("d", "d")}))
	_, err := s.Rootfs(context.Background(), img.Digest)
	wantCode(t, err, baton.EUNPROCESSABLE, "more than 3 entries")

	s = newStore(t, Limits{Extract: artifact.Limits{MaxFiles: 100, MaxBytes: 1000}})
	img = hold(t, s, runImage(t, []entry{fileE("big", strings.Repeat("x", 2000))}))
	_, err = s.Rootfs(context.Background(), img.Digest)
	wantCode(t, err, baton.EUNPROCESSABLE, "more than")
}

func TestRootfsCancelled(t *testing.T) {
	s := newStore(t, Limits{})
	img := hold(t, s, runImage(t, []entry{fileE("a", "a")}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Rootfs(ctx, img.Digest); err == nil {
		t.Fatal("Rootfs with a cancelled context succeeded")
	}
	if _, err := s.Rootfs(context.Background(), img.Digest); err != nil {
		t.Fatalf("Rootfs after a cancelled one: %v", err)
	}
}
