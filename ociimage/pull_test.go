package ociimage

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestPullAndRun(t *testing.T) {
	s := newStore(t, Limits{})
	img := serverImage(t)
	ref, _ := pushed(t, img, "hello:v1")
	got, err := s.Pull(context.Background(), ref, PullOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	wantDigest, _ := img.Digest()
	wantID, _ := img.ConfigName()
	if got.Digest != wantDigest.String() || got.ID != wantID.String() || got.Ref != ref {
		t.Errorf("Pull = %+v, want digest %s, id %s, ref %s", got, wantDigest, wantID, ref)
	}
	if got.Config.WorkingDir != "/app" || !slices.Equal(got.Config.Entrypoint, []string{"/app/server"}) ||
		!slices.Contains(got.Config.Env, "GREETING=baton") || got.Config.Labels["org.opencontainers.image.title"] != "hello" {
		t.Errorf("Config = %+v", got.Config)
	}
	if held, err := s.Image(got.Digest); err != nil || held.Digest != got.Digest {
		t.Errorf("Image = %+v, %v", held, err)
	}
	if ds, err := s.Digests(); err != nil || !slices.Equal(ds, []string{got.Digest}) {
		t.Errorf("Digests = %v, %v", ds, err)
	}

	toml, err := s.ReadFile(context.Background(), got.Digest, "/app/baton.toml")
	if err != nil || !strings.Contains(string(toml), "port = 8080") {
		t.Fatalf("ReadFile baton.toml = %q, %v", toml, err)
	}
	// An absolute symlink resolves inside the image, not on the host.
	release, err := s.ReadFile(context.Background(), got.Digest, "app/release")
	if err != nil || string(release) != "ID=baton-test\n" {
		t.Errorf("ReadFile through /etc symlink = %q, %v", release, err)
	}
	_, err = s.ReadFile(context.Background(), got.Digest, "/app/nope.toml")
	wantCode(t, err, baton.ENOTFOUND, "nope.toml")

	// The unpacked server runs.
	dir, err := s.Rootfs(context.Background(), got.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if m := modeOf(t, filepath.Join(dir, "tmp")); m&os.ModeSticky == 0 || m.Perm() != 0o777 {
		t.Errorf("tmp mode = %v, want sticky 0777", m)
	}
	runServer(t, filepath.Join(dir, "app", "server"))
}

// runServer starts the test server binary and checks that it answers.
func runServer(t *testing.T, bin string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := execCommand(ctx, bin)
	cmd.Env = []string{"ADDR=" + addr, "GREETING=rootfs"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	body := pollGet(t, "http://"+addr+"/")
	if body != "hello from rootfs\n" {
		t.Errorf("server said %q", body)
	}
}

func TestPullAuth(t *testing.T) {
	img := imageOf(t, &v1.Config{Cmd: []string{"/bin/true"}}, layerOf(t, tarBytes(t, fileE("bin/true", "x"))))
	reg := ggcrregistry.New(ggcrregistry.Logger(discardLogger()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"who are you"}]}`, http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	// Pushed straight to the inner registry, to need no credentials.
	inner := httptest.NewServer(reg)
	t.Cleanup(inner.Close)
	push(t, img, strings.TrimPrefix(inner.URL, "http://")+"/app:v1")

	s := newStore(t, Limits{})
	ctx := context.Background()
	_, err := s.Pull(ctx, host+"/app:v1", PullOptions{Insecure: true, Username: "alice", Password: "wrong"})
	wantCode(t, err, baton.EUNAUTHORIZED, host, "credentials")
	_, err = s.Pull(ctx, host+"/app:v1", PullOptions{Insecure: true, AuthFile: writeAuthFile(t, "other.example", "alice", "s3cret")})
	wantCode(t, err, baton.EUNAUTHORIZED)
	if _, err := s.Pull(ctx, host+"/app:v1", PullOptions{Insecure: true, Username: "alice", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx, host+"/app:v1", PullOptions{Insecure: true, AuthFile: writeAuthFile(t, host, "alice", "s3cret")}); err != nil {
		t.Fatal(err)
	}
}

func writeAuthFile(t *testing.T, host, user, pass string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth.json")
	auth := base64Std(user + ":" + pass)
	if err := os.WriteFile(p, []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPullErrors(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, Limits{})
	ref, _ := pushed(t, imageOf(t, &v1.Config{Cmd: []string{"/x"}}, layerOf(t, tarBytes(t, fileE("x", "x")))), "app:v1")
	host, _, _ := strings.Cut(ref, "/")

	_, err := s.Pull(ctx, host+"/app:nope", PullOptions{Insecure: true})
	wantCode(t, err, baton.ENOTFOUND, "app:nope")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	_, err = s.Pull(ctx, dead+"/app:v1", PullOptions{Insecure: true})
	wantCode(t, err, baton.EUNAVAILABLE, dead, "cannot be reached")

	_, err = s.Pull(ctx, "UPPER CASE!!", PullOptions{})
	wantCode(t, err, baton.EINVALID)
	if blobs := blobNames(t, s); len(blobs) != 0 {
		t.Errorf("failed pulls left blobs %v", blobs)
	}
}

func TestPullRefusesImages(t *testing.T) {
	layer := layerOf(t, tarBytes(t, fileE("x", "x")))
	noCmd := imageOf(t, &v1.Config{Env: []string{"A=b"}}, layer)
	arm := imageOf(t, &v1.Config{Cmd: []string{"/x"}}, layer)
	cf, _ := arm.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture = "arm64"
	arm, _ = mutate.ConfigFile(arm, cf)
	amd := imageOf(t, &v1.Config{Cmd: []string{"/x"}}, layer)

	for _, tc := range []struct {
		name  string
		img   any
		lim   Limits
		code  string
		parts []string
	}{
		{"no entrypoint", noCmd, Limits{}, baton.EUNPROCESSABLE, []string{"no entrypoint", "ENTRYPOINT or CMD"}},
		{"wrong arch", arm, Limits{}, baton.EUNPROCESSABLE, []string{"linux/arm64", "--platform linux/amd64"}},
		{"index without amd64", index(t, arm, "linux", "arm64", noCmd, "windows", "amd64"), Limits{}, baton.EUNPROCESSABLE, []string{"no linux/amd64", "linux/arm64, windows/amd64"}},
		{"layer too big", amd, Limits{MaxLayerBytes: 10}, baton.ETOOLARGE, []string{"layer 1", "limit for one layer"}},
		{"image too big", imageOf(t, &v1.Config{Cmd: []string{"/x"}}, layer, layerOf(t, tarBytes(t, fileE("y", "y")))), Limits{MaxLayerBytes: 1 << 20, MaxImageBytes: 150}, baton.ETOOLARGE, []string{"limit for an image"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, tc.lim)
			ref := pushAny(t, tc.img)
			_, err := s.Pull(context.Background(), ref, PullOptions{Insecure: true})
			wantCode(t, err, tc.code, tc.parts...)
			if blobs := blobNames(t, s); len(blobs) != 0 {
				t.Errorf("refused image left blobs %v", blobs)
			}
		})
	}

	t.Run("index with amd64", func(t *testing.T) {
		s := newStore(t, Limits{})
		got, err := s.Pull(context.Background(), pushAny(t, index(t, arm, "linux", "arm64", amd, "linux", "amd64")), PullOptions{Insecure: true})
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := amd.Digest(); got.Digest != d.String() {
			t.Errorf("Pull picked %s, want the amd64 child %s", got.Digest, d)
		}
	})
}

// index returns an index of images, each followed by its os and arch.
func index(t *testing.T, args ...any) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for i := 0; i < len(args); i += 3 {
		adds = append(adds, mutate.IndexAddendum{Add: args[i].(v1.Image), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: args[i+1].(string), Architecture: args[i+2].(string)}}})
	}
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
}

// pushAny pushes an image or index to a fresh in-memory registry.
func pushAny(t *testing.T, x any) string {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(discardLogger())))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/app:v1"
	writeAny(t, x, ref)
	return ref
}
