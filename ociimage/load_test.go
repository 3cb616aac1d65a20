package ociimage

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// dockerArchive writes img as docker save would.
func dockerArchive(t *testing.T, img v1.Image) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "docker.tar")
	tag, err := name.NewTag("hello:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	return p
}

// ociArchive writes img (an image or an index) as an OCI layout in a tar.
func ociArchive(t *testing.T, x any) string {
	t.Helper()
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	switch x := x.(type) {
	case v1.Image:
		err = lp.AppendImage(x)
	case v1.ImageIndex:
		err = lp.AppendIndex(x)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tarDir(t, dir)
}

// tarDir writes the files under dir to a tar.
func tarDir(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "archive.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestArchiveKind(t *testing.T) {
	img := runImage(t, []entry{fileE("run", "x")})
	dir := t.TempDir()
	write := func(name string, fill func(io.Writer)) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		fill(f)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	zipPath := write("app.zip", func(w io.Writer) {
		zw := zip.NewWriter(w)
		fw, _ := zw.Create("manifest.json")
		io.WriteString(fw, "{}")
		zw.Close()
	})
	tgzPath := write("app.tar.gz", func(w io.Writer) {
		gz := gzip.NewWriter(w)
		gz.Write(tarBytes(t, fileE("manifest.json", "[]"), fileE("index.json", "{}"), fileE("oci-layout", "{}")))
		gz.Close()
	})
	plainTar := write("app.tar", func(w io.Writer) { w.Write(tarBytes(t, fileE("server.js", "x"), fileE("package.json", "{}"))) })
	for _, tc := range []struct {
		name, path, kind string
		ok               bool
	}{
		{"oci-archive", ociArchive(t, img), KindOCIArchive, true},
		{"docker-archive", dockerArchive(t, img), KindDockerArchive, true},
		{"zip", zipPath, "", false},
		{"tar.gz", tgzPath, "", false},
		{"plain tar", plainTar, "", false},
		{"missing", filepath.Join(dir, "nope"), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if kind, ok := ArchiveKind(tc.path); kind != tc.kind || ok != tc.ok {
				t.Errorf("ArchiveKind = %q, %v; want %q, %v", kind, ok, tc.kind, tc.ok)
			}
		})
	}
	s := newStore(t, Limits{})
	_, err := s.Load(context.Background(), zipPath)
	wantCode(t, err, baton.EUNPROCESSABLE, "not an image archive")
}

func TestLoad(t *testing.T) {
	img := serverImage(t)
	wantID, _ := img.ConfigName()
	arm := imageOf(t, &v1.Config{Cmd: []string{"/x"}}, layerOf(t, tarBytes(t, fileE("x", "x"))))
	cf, _ := arm.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture = "arm64"
	arm = mustConfig(t, arm, cf)
	for _, tc := range []struct {
		name string
		path string
	}{
		{"docker-archive", dockerArchive(t, img)},
		{"oci-archive", ociArchive(t, img)},
		{"oci-archive with index", ociArchive(t, index(t, arm, "linux", "arm64", img, "linux", "amd64"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Limits{})
			got, err := s.Load(context.Background(), tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != wantID.String() || got.Ref != "archive" || got.Config.WorkingDir != "/app" {
				t.Errorf("Load = %+v, want ID %s", got, wantID)
			}
			toml, err := s.ReadFile(context.Background(), got.Digest, "/app/baton.toml")
			if err != nil || !strings.Contains(string(toml), "port") {
				t.Errorf("ReadFile = %q, %v", toml, err)
			}
		})
	}
	t.Run("oci-archive without amd64", func(t *testing.T) {
		s := newStore(t, Limits{})
		_, err := s.Load(context.Background(), ociArchive(t, index(t, arm, "linux", "arm64")))
		wantCode(t, err, baton.EUNPROCESSABLE, "linux/arm64")
	})
}

func mustConfig(t *testing.T, img v1.Image, cf *v1.ConfigFile) v1.Image {
	t.Helper()
	img, err := mutateConfig(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// podman runs podman with its own storage under dir.
func podman(t *testing.T, dir string, args ...string) string {
	t.Helper()
	conf := filepath.Join(dir, "containers.conf")
	if _, err := os.Stat(conf); err != nil {
		err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("podman", append([]string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs"}, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestLoadPodmanSave(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("podman is not installed: apt-get install -y podman (./test.sh installs it)")
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "app", "server"), serverBinary(t), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "app", "baton.toml"), []byte("[app]\nport = 8080\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rootTar := tarDir(t, rootfs)
	podman(t, dir, "import", "--change", `ENTRYPOINT ["/app/server"]`, "--change", "WORKDIR /app", "--change", "ENV GREETING=podman", rootTar, "localhost/hello:v1")
	ociPath := filepath.Join(dir, "oci.tar")
	dockerPath := filepath.Join(dir, "docker.tar")
	podman(t, dir, "save", "--format", "oci-archive", "-o", ociPath, "localhost/hello:v1")
	podman(t, dir, "save", "--format", "docker-archive", "-o", dockerPath, "localhost/hello:v1")

	s := newStore(t, Limits{})
	var ids []string
	for _, p := range []string{ociPath, dockerPath} {
		img, err := s.Load(context.Background(), p)
		if err != nil {
			t.Fatalf("Load %s: %v", filepath.Base(p), err)
		}
		ids = append(ids, img.ID)
		root, err := s.Rootfs(context.Background(), img.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if m := modeOf(t, filepath.Join(root, "app", "server")); m.Perm() != 0o755 || !m.IsRegular() {
			t.Errorf("app/server mode = %v", m)
		}
		if img.Config.WorkingDir != "/app" || len(img.Config.Entrypoint) != 1 {
			t.Errorf("config = %+v", img.Config)
		}
	}
	if ids[0] != ids[1] {
		t.Errorf("image ID differs by format: %v", ids)
	}
}
