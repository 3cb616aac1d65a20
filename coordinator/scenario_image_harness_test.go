package coordinator_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/internal/testimage"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image scenarios deploy container images of the example app (run
// under runc): pulled from a registry the test runs, pushed into baton's
// own registry, across a restart and a settings change, and refused when
// they cannot be had or run.

var (
	exampleBinOnce sync.Once
	// exampleBinLayer is a layer holding a static build of the example
	// app at /app/hello: built and gzipped once, the bottom layer of every
	// image of these tests (gzip under the race detector costs seconds).
	exampleBinLayer v1.Layer
	exampleBinErr   error
	// exampleImages holds the images the tests made (cachedTestImage).
	exampleImages sync.Map
)

// exampleImage is an image of the example app at version v, run from /app
// and checked at /healthz with one instance (image labels); its
// environment holds GREETING=from-the-image. files adds files under /app
// (a baton.toml there is the image's own manifest).
func exampleImage(t testing.TB, v string, files map[string]string) v1.Image {
	t.Helper()
	exampleBinOnce.Do(func() {
		var bin []byte
		if bin, exampleBinErr = testimage.StaticBinary("../examples/hello"); exampleBinErr != nil {
			return
		}
		exampleBinLayer, exampleBinErr = testimage.Layer(testimage.File{Name: "app/", Mode: 0o755},
			testimage.File{Name: "app/hello", Mode: 0o755, Body: bin})
	})
	if exampleBinErr != nil {
		t.Fatal(exampleBinErr)
	}
	return cachedTestImage(t, "hello\x00"+v+"\x00"+fmt.Sprint(files), func() (v1.Image, error) {
		top, err := imageFilesLayer(v, files)
		if err != nil {
			return nil, err
		}
		return testimage.Image(v1.Config{
			Entrypoint: []string{"/app/hello"},
			WorkingDir: "/app",
			Env:        []string{"PATH=/app", "GREETING=from-the-image"},
			Labels: map[string]string{
				"dev.baton.health.path":          "/healthz",
				"dev.baton.health.interval":      "50ms",
				"dev.baton.health.start_timeout": "20s",
				"dev.baton.run.instances":        "1",
			},
		}, exampleBinLayer, top)
	})
}

// plainExampleImage is exampleImage with no labels: baton runs it with its
// defaults (one instance, checked at /).
func plainExampleImage(t testing.TB, v string) v1.Image {
	t.Helper()
	labelled := exampleImage(t, v, nil) // builds the binary's layer
	return cachedTestImage(t, "plain\x00"+v, func() (v1.Image, error) {
		layers, err := labelled.Layers()
		if err != nil {
			return nil, err
		}
		return testimage.Image(v1.Config{Entrypoint: []string{"/app/hello"}, WorkingDir: "/app"}, layers...)
	})
}

// shellExampleImage is exampleImage with /bin/sh, a symlink to link, as
// in most images (the example app stands in for a shell: it ignores its
// arguments).
func shellExampleImage(t testing.TB, v, link string) v1.Image {
	t.Helper()
	labelled := exampleImage(t, v, nil)
	return cachedTestImage(t, "shell\x00"+v+"\x00"+link, func() (v1.Image, error) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range []*tar.Header{{Name: "bin/", Mode: 0o755, Typeflag: tar.TypeDir},
			{Name: "bin/sh", Linkname: link, Mode: 0o777, Typeflag: tar.TypeSymlink}} {
			h.ModTime = time.Unix(0, 0)
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
		}
		if err := tw.Close(); err != nil {
			return nil, err
		}
		data := buf.Bytes()
		sh, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			return nil, err
		}
		return mutate.AppendLayers(labelled, sh)
	})
}

// idleImage is an image with a version file and no program: no
// entrypoint, no cmd, no labels.
func idleImage(t testing.TB, v string) v1.Image {
	t.Helper()
	return cachedTestImage(t, "idle\x00"+v, func() (v1.Image, error) {
		top, err := imageFilesLayer(v, nil)
		if err != nil {
			return nil, err
		}
		return testimage.Image(v1.Config{WorkingDir: "/app"}, top)
	})
}

// imageFilesLayer is a layer of /app/version.txt (v) and files under /app.
func imageFilesLayer(v string, files map[string]string) (v1.Layer, error) {
	entries := []testimage.File{{Name: "app/", Mode: 0o755}, {Name: "app/version.txt", Mode: 0o644, Body: []byte(v + "\n")}}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		entries = append(entries, testimage.File{Name: "app/" + n, Mode: 0o644, Body: []byte(files[n])})
	}
	return testimage.Layer(entries...)
}

// cachedTestImage returns the image made under key, making it once: an
// image is an immutable value.
func cachedTestImage(t testing.TB, key string, build func() (v1.Image, error)) v1.Image {
	t.Helper()
	if img, ok := exampleImages.Load(key); ok {
		return img.(v1.Image)
	}
	img, err := build()
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := exampleImages.LoadOrStore(key, img)
	return stored.(v1.Image)
}

func imageDigest(t testing.TB, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// imageRegistry runs an OCI registry for the test on loopback; with
// user and password, it answers only requests that log in with them.
func imageRegistry(t testing.TB, userPass ...string) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if len(userPass) == 2 {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != userPass[0] || p != userPass[1] {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"log in"}]}`, http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushImage writes img to ref on a registry on loopback (plain HTTP).
func pushImage(ref string, img v1.Image, opts ...remote.Option) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(r, img, opts...)
}

func mustPushImage(t testing.TB, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	if err := pushImage(ref, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// closedRegistryAddr is a loopback address nothing listens on.
func closedRegistryAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startImageBaton starts a baton for image scenarios: at the end of the
// test it is closed and must leave no container in its runc state
// directory (the harness's process check does not see containers: their
// HOME is the image's).
func startImageBaton(t *testing.T) *batonEnv {
	t.Helper()
	b := startBaton(t)
	t.Cleanup(func() {
		b.close()
		if left := b.runcContainers(); len(left) > 0 {
			t.Errorf("containers left after baton closed: %v", left)
		}
	})
	return b
}

// runcContainers is the containers in baton's runc state directory, by
// id, with their pid (0 when not running).
func (b *batonEnv) runcContainers() map[string]int {
	b.t.Helper()
	out, err := exec.Command("runc", "--root", filepath.Join(b.data, "runc"), "list", "--format", "json").Output()
	if err != nil {
		b.t.Fatalf("runc list: %v", err)
	}
	var list []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Pid    int    `json:"pid"`
	}
	if s := strings.TrimSpace(string(out)); s != "" && s != "null" {
		if err := json.Unmarshal(out, &list); err != nil {
			b.t.Fatalf("runc list: %v: %s", err, out)
		}
	}
	ids := map[string]int{}
	for _, c := range list {
		if c.Status != "running" {
			c.Pid = 0
		}
		ids[c.ID] = c.Pid
	}
	return ids
}

// deployImage deploys an image pulled from ref (with o.Image's
// credentials, if any) and waits for its success.
func (b *batonEnv) deployImage(app, ref string, o api.DeployOptions) baton.Deployment {
	b.t.Helper()
	pull := baton.ImagePull{Ref: ref, Insecure: true}
	if o.Image != nil {
		pull.Username, pull.Password = o.Image.Username, o.Image.Password
	}
	o.Image = &pull
	res, err := b.c.Deploy(context.Background(), app, nil, o)
	if err != nil {
		b.t.Fatalf("deploy %s: %v", ref, err)
	}
	return b.succeed(res.Deployment.ID)
}

// pushToBaton pushes img into baton's registry at repo:tag (APP or
// APP/SLOT) and returns the deployment the push queued.
func (b *batonEnv) pushToBaton(repo, tag string, img v1.Image) baton.Deployment {
	b.t.Helper()
	app, _, _ := strings.Cut(repo, "/")
	before := len(b.history(app))
	mustPushImage(b.t, b.srv.APIAddr()+"/"+repo+":"+tag, img, remote.WithAuth(&authn.Basic{Username: "baton", Password: b.token}))
	ds := b.history(app)
	if len(ds) != before+1 || ds[0].Message != "image "+repo+":"+tag {
		b.t.Fatalf("after a push to %s:%s the history of %s holds %d deployments (%d before), newest %+v", repo, tag, app, len(ds), before, ds[0])
	}
	return ds[0]
}

// liveImageRevision is the status of the heaviest revision of an app's
// slot.
func (b *batonEnv) liveImageRevision(app, slot string) baton.RevisionStatus {
	b.t.Helper()
	st, err := b.c.Status(context.Background(), app)
	if err != nil {
		b.t.Fatal(err)
	}
	var live baton.RevisionStatus
	for _, s := range st.Slots {
		if s.Name != slot {
			continue
		}
		live.Weight = -1
		for _, r := range s.Revisions {
			if r.Weight > live.Weight {
				live = r
			}
		}
	}
	return live
}

// checkImage fails the test unless the live revision of app's slot is
// rev, running the image digest from ref with n instances.
func (b *batonEnv) checkImage(app, slot, rev, digest, ref string, n int) {
	b.t.Helper()
	r := b.liveImageRevision(app, slot)
	if r.Name != rev || r.Image == nil || r.Image.Digest != digest || r.Image.Ref != ref || len(r.Instances) != n {
		b.t.Fatalf("%s %s runs %+v (image %+v), want %s running %s from %s with %d instances", app, slot, r, r.Image, rev, digest, ref, n)
	}
}

// waitImageServes waits until app's production serves rev again (after
// an open), from n running containers.
func (b *batonEnv) waitImageServes(app, rev string, n int) {
	b.t.Helper()
	eventually(b.t, 30*time.Second, rev+" serves again", func() bool {
		status, body, err := b.p.get(host(app, ""))
		var a answer
		_ = json.Unmarshal([]byte(body), &a)
		return err == nil && status == 200 && a.Revision == rev
	})
	eventually(b.t, 10*time.Second, fmt.Sprintf("%s with %d instances and %d containers", rev, n, n), func() bool {
		r := b.liveImageRevision(app, baton.ProductionSlot)
		return r.Name == rev && r.State == "" && len(r.Instances) == n && len(b.runcContainers()) == n
	})
}

// containerArgs is the command line of the running containers of rev.
func (b *batonEnv) containerArgs(rev string) [][]string {
	b.t.Helper()
	var out [][]string
	for _, pid := range b.runcContainers() {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !strings.Contains("\x00"+string(env), "\x00BATON_REVISION="+rev+"\x00") {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		out = append(out, strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00"))
	}
	return out
}
