package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/internal/testimage"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// These tests deploy container images of the example app with real
// tools: a registry run by the test (go-containerregistry's), skopeo and
// podman pushing into baton's own registry, podman save archives, and
// runc running the containers.

var (
	staticHelloOnce sync.Once
	staticHello     []byte
	staticHelloErr  error
	// helloImages holds the images helloImage made, by version and files:
	// an image is an immutable value, and making one gzips the binary.
	helloImages sync.Map
)

// helloImage is an image of the example app at version v: a static build
// of it at /app/hello, its version.txt beside it, run from /app, checked
// at /healthz (image labels). files adds more files under /app.
func helloImage(t testing.TB, v string, files map[string]string) v1.Image {
	t.Helper()
	key := v + "\x00" + fmt.Sprint(files) // fmt prints a map's keys sorted
	if img, ok := helloImages.Load(key); ok {
		return img.(v1.Image)
	}
	staticHelloOnce.Do(func() { staticHello, staticHelloErr = testimage.StaticBinary("../examples/hello") })
	if staticHelloErr != nil {
		t.Fatal(staticHelloErr)
	}
	entries := []testimage.File{{Name: "app/", Mode: 0o755}, {Name: "app/hello", Mode: 0o755, Body: staticHello},
		{Name: "app/version.txt", Mode: 0o644, Body: []byte(v + "\n")}}
	for n, body := range files {
		entries = append(entries, testimage.File{Name: "app/" + n, Mode: 0o644, Body: []byte(body)})
	}
	layer, err := testimage.Layer(entries...)
	if err != nil {
		t.Fatal(err)
	}
	img, err := testimage.Image(v1.Config{
		Entrypoint: []string{"/app/hello"},
		WorkingDir: "/app",
		Env:        []string{"PATH=/app", "GREETING=from-the-image"},
		Labels: map[string]string{
			"dev.baton.health.path":          "/healthz",
			"dev.baton.health.interval":      "100ms",
			"dev.baton.health.start_timeout": "20s",
			"dev.baton.run.instances":        "2",
		},
	}, layer)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := helloImages.LoadOrStore(key, img)
	return stored.(v1.Image)
}

// testRegistry runs an OCI registry for the test on loopback.
func testRegistry(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushTo writes img to a registry on loopback (plain HTTP).
func pushTo(t testing.TB, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// podman runs podman with storage of the test's own and runc as its
// runtime (ENVIRONMENT.md's recipe).
type podman struct {
	t    testing.TB
	env  []string
	args []string
}

func newPodman(t testing.TB) *podman {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(conf, []byte(`[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &podman{t: t, env: []string{"CONTAINERS_CONF=" + conf, "XDG_RUNTIME_DIR=" + filepath.Join(dir, "xdg")},
		args: []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"), "--storage-driver", "vfs",
			"--tmpdir", filepath.Join(dir, "tmp")}}
	t.Cleanup(func() {
		// vfs layers hold read-only files; podman removes them itself.
		_, _ = p.try("system", "reset", "--force")
	})
	return p
}

func (p *podman) try(args ...string) (string, error) {
	cmd := exec.Command("podman", append(append([]string{}, p.args...), args...)...)
	cmd.Env = append(os.Environ(), p.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *podman) run(args ...string) string {
	p.t.Helper()
	out, err := p.try(args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// liveImage returns the image the slot's heaviest revision runs.
func liveImage(t testing.TB, c *api.Client, app, slot string) (rev string, img *baton.ImageRef) {
	t.Helper()
	st, err := c.Status(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Slots {
		if s.Name != slot {
			continue
		}
		best := -1
		for _, r := range s.Revisions {
			if r.Weight > best {
				best, rev, img = r.Weight, r.Name, r.Image
			}
		}
	}
	return rev, img
}

// waitServes waits until host answers with version v through the proxy.
func waitServes(t testing.TB, p *proxyClient, host, v string) {
	t.Helper()
	eventually(t, 60*time.Second, host+" serves "+v, func() bool {
		status, body, err := p.get(host, "/")
		return err == nil && status == 200 && version(body) == v
	})
}

// batonContainers lists the containers in baton's runc state directory.
func batonContainers(t testing.TB, b *batonProc) []string {
	t.Helper()
	out, err := exec.Command("runc", "--root", filepath.Join(b.data, "runc"), "list", "--format", "json").Output()
	if err != nil {
		t.Fatalf("runc list: %v", err)
	}
	var list []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Pid    int    `json:"pid"`
	}
	if s := strings.TrimSpace(string(out)); s != "" && s != "null" {
		if err := json.Unmarshal(out, &list); err != nil {
			t.Fatalf("runc list: %v: %s", err, out)
		}
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, fmt.Sprintf("%s:%s:%d", c.ID, c.Status, c.Pid))
	}
	return ids
}

// TestImageThreeWaysIn deploys images each way baton takes them: pulled
// from a registry (--image), uploaded as a podman save archive, and
// pushed into baton's registry by skopeo and by podman (to a slot). Each
// ends as a revision recorded by image digest that serves.
func TestImageThreeWaysIn(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	for _, app := range []string{"img"} {
		if _, err := c.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateSlot(ctx, "img", "staging"); err != nil {
		t.Fatal(err)
	}
	p := newProxyClient(b.proxyAddr)
	reg := testRegistry(t)
	// v3 brings its own baton.toml (in its working directory): one
	// instance, and a release command that runs inside the image.
	v1img, v2img := helloImage(t, "v1", nil), helloImage(t, "v2", nil)
	v3img := helloImage(t, "v3", map[string]string{"baton.toml": `[run]
instances = 1
[health]
path = "/healthz"
interval = "100ms"
[release]
command = "/app/hello say release ran in the image"
`})
	pushTo(t, reg+"/hello:v1", v1img)
	pushTo(t, reg+"/hello:v2", v2img)
	pushTo(t, reg+"/hello:v3", v3img)

	// 1. --image pulls from a registry (the CLI, as a user types it),
	// with a manifest given beside it (3 instances, not the labels' 2).
	mf := filepath.Join(t.TempDir(), "baton.toml")
	if err := os.WriteFile(mf, []byte("[run]\ninstances = 3\n[health]\npath = \"/healthz\"\ninterval = \"100ms\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, b, "deploy", "img", "--image", reg+"/hello:v1", "--insecure-registry", "--manifest", mf, "--wait"); code != 0 {
		t.Fatalf("deploy --image: exit %d\n%s", code, out)
	}
	waitServes(t, p, "img.localhost", "v1")
	digest1, _ := v1img.Digest()
	st, err := c.Status(ctx, "img")
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Slots[0].Revisions; len(r) != 1 || r[0].Image == nil || r[0].Image.Digest != digest1.String() || r[0].Image.Ref != reg+"/hello:v1" || len(r[0].Instances) != 3 {
		t.Fatalf("status shows %+v, want %s from %s with 3 instances (--manifest)", r, digest1, reg+"/hello:v1")
	}
	out, _ := runCLI(t, b, "status", "img")
	if !strings.Contains(out, "image "+reg+"/hello:v1 "+digest1.String()[:19]) {
		t.Errorf("baton status img does not show the image and its digest:\n%s", out)
	}

	// 2. A podman save archive (docker-archive by default, OCI with
	// --format oci-archive), uploaded as PATH.
	pm := newPodman(t)
	pm.run("pull", "--tls-verify=false", reg+"/hello:v2")
	archive := filepath.Join(t.TempDir(), "hello-v2.tar")
	pm.run("save", "--format", "oci-archive", "-o", archive, reg+"/hello:v2")
	if out, code := runCLI(t, b, "deploy", "img", archive, "--wait"); code != 0 {
		t.Fatalf("deploy image archive: exit %d\n%s", code, out)
	}
	waitServes(t, p, "img.localhost", "v2")

	// 3a. skopeo copies into baton's registry: production.
	cmd := exec.Command("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds", "baton:"+b.token,
		"docker://"+reg+"/hello:v3", "docker://"+b.apiAddr+"/img:v3")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy into baton: %v\n%s", err, out)
	}
	waitServes(t, p, "img.localhost", "v3")
	digest3, _ := v3img.Digest()
	st, err = c.Status(ctx, "img")
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Slots[0].Revisions; len(r) != 1 || r[0].Image == nil || r[0].Image.Digest != digest3.String() || len(r[0].Instances) != 1 {
		t.Fatalf("after skopeo copy production runs %+v, want %s with 1 instance (its baton.toml)", r, digest3)
	}
	log, err := c.Log(ctx, st.Recent[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "release: release ran in the image") {
		t.Errorf("the image's release command did not run in it:\n%s", log)
	}

	// 3b. podman push to a slot, logged in with a token; a token of
	// scope read may not push.
	readTok := createToken(t, b, "reader", baton.ScopeRead)
	if out, err := pm.try("push", "--tls-verify=false", "--creds", "baton:"+readTok, reg+"/hello:v2", "docker://"+b.apiAddr+"/img/staging:v2"); err == nil {
		t.Fatalf("a read token pushed:\n%s", out)
	} else if !strings.Contains(strings.ToLower(out), "deploy") {
		t.Errorf("a refused push does not say which scope it needs:\n%s", out)
	}
	pm.run("push", "--tls-verify=false", "--creds", "baton:"+b.token, reg+"/hello:v2", "docker://"+b.apiAddr+"/img/staging:v2")
	waitServes(t, p, "img-staging.localhost", "v2")
	if _, img := liveImage(t, c, "img", "staging"); img == nil || !strings.HasPrefix(img.Ref, "push img/staging") {
		t.Fatalf("staging runs %+v, want the pushed image", img)
	}
}

// TestImageDeployUnderLoadSwapAndTraffic: image revisions go live with no
// failed request, swap between slots, and split traffic 80/20.
func TestImageDeployUnderLoadSwapAndTraffic(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "ct"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSlot(ctx, "ct", "staging"); err != nil {
		t.Fatal(err)
	}
	reg := testRegistry(t)
	for _, v := range []string{"v1", "v2", "v3"} {
		pushTo(t, reg+"/ct:"+v, helloImage(t, v, nil))
	}
	deployImage := func(ref, slot string, weight *int) baton.Deployment {
		t.Helper()
		res, err := c.Deploy(ctx, "ct", nil, api.DeployOptions{Slot: slot, Weight: weight, Image: &baton.ImagePull{Ref: reg + "/ct:" + ref, Insecure: true}})
		if err != nil {
			t.Fatalf("deploy %s: %v", ref, err)
		}
		d := waitFinal(t, c, res.Deployment.ID)
		if d.State != baton.StateSucceeded {
			log, _ := c.Log(ctx, d.ID)
			t.Fatalf("deploy %s: %s %s\n%s", ref, d.State, d.Error, log)
		}
		return d
	}
	p := newProxyClient(b.proxyAddr)
	deployImage("v1", "production", nil)
	waitServes(t, p, "ct.localhost", "v1")

	l := startLoad(t, p, "ct.localhost", 8)
	eventually(t, 10*time.Second, "load sees v1", func() bool { return l.count("v1") > 50 })
	deployImage("v2", "production", nil)
	eventually(t, 10*time.Second, "load sees v2", func() bool { return l.count("v2") > 50 })

	// Swap: staging runs v3, then takes production's place.
	deployImage("v3", "staging", nil)
	waitServes(t, p, "ct-staging.localhost", "v3")
	sw, err := c.Swap(ctx, "ct", "staging", "production", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := waitFinal(t, c, sw.ID); d.State != baton.StateSucceeded {
		t.Fatalf("swap: %s %s", d.State, d.Error)
	}
	eventually(t, 10*time.Second, "load sees v3 after the swap", func() bool { return l.count("v3") > 50 })
	versions, failures := l.finish()
	if len(failures) > 0 {
		t.Fatalf("%d failed requests while image revisions went live and swapped, first: %s", len(failures), failures[0])
	}
	t.Logf("requests per version: %v", versions)
	waitServes(t, p, "ct-staging.localhost", "v2")

	// Traffic: two image revisions 80/20 in multiple revision mode.
	if _, err := c.SetRevisionMode(ctx, "ct", baton.RevisionsMultiple); err != nil {
		t.Fatal(err)
	}
	twenty := 20
	d := deployImage("v1", "production", &twenty)
	st, err := c.Status(ctx, "ct")
	if err != nil {
		t.Fatal(err)
	}
	weights := map[string]int{}
	for _, s := range st.Slots {
		if s.Name == "production" {
			for _, r := range s.Revisions {
				weights[r.Name] = r.Weight
				if r.Image == nil {
					t.Errorf("revision %s shows no image in status", r.Name)
				}
			}
		}
	}
	if weights[d.Revision] != 20 || len(weights) != 2 {
		t.Fatalf("production weights %v, want %s at 20 beside one at 80", weights, d.Revision)
	}
	seen := map[string]int{}
	for range 200 {
		_, body, err := p.get("ct.localhost", "/")
		if err != nil {
			t.Fatal(err)
		}
		seen[version(body)]++
	}
	if seen["v1"] < 15 || seen["v1"] > 70 || seen["v3"] < 130 {
		t.Fatalf("200 requests at 80/20 went %v", seen)
	}
}

// TestImageKillDuringStartAndRestartInPlace: baton killed with -9 while a
// new image revision's containers start leaves no container behind once
// it is back (the previous revision serves); a restart in place keeps
// the running containers (same processes).
func TestImageKillDuringStartAndRestartInPlace(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "kc"); err != nil {
		t.Fatal(err)
	}
	reg := testRegistry(t)
	pushTo(t, reg+"/kc:v1", helloImage(t, "v1", nil))
	// v2 never turns healthy: its deployment stays in its start.
	pushTo(t, reg+"/kc:v2", helloImage(t, "v2", map[string]string{"unhealthy": ""}))
	res, err := c.Deploy(ctx, "kc", nil, api.DeployOptions{Image: &baton.ImagePull{Ref: reg + "/kc:v1", Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	if d := waitFinal(t, c, res.Deployment.ID); d.State != baton.StateSucceeded {
		t.Fatalf("v1: %s %s", d.State, d.Error)
	}
	p := newProxyClient(b.proxyAddr)
	waitServes(t, p, "kc.localhost", "v1")
	before := batonContainers(t, b)
	if len(before) != 2 {
		t.Fatalf("runc lists %v, want v1's 2 containers", before)
	}

	// Restart in place: the same containers serve on, under load.
	l := startLoad(t, p, "kc.localhost", 4)
	eventually(t, 10*time.Second, "load sees v1", func() bool { return l.count("v1") > 20 })
	b.restartInPlace()
	eventually(t, 10*time.Second, "load goes on after the restart", func() bool { return l.count("v1") > 200 })
	if _, failures := l.finish(); len(failures) > 0 {
		t.Fatalf("%d failed requests across a restart in place, first: %s", len(failures), failures[0])
	}
	if after := batonContainers(t, b); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("containers before the restart in place %v, after %v: want the same ones", before, after)
	}

	// kill -9 while v2's containers start.
	res, err = c.Deploy(ctx, "kc", nil, api.DeployOptions{Image: &baton.ImagePull{Ref: reg + "/kc:v2", Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "v2's containers run", func() bool { return len(batonContainers(t, b)) == 4 })
	// While v2 holds the app, a push under registry_on_conflict=fail is
	// refused, and says who holds it.
	if out, code := runCLI(t, b, "apps", "set", "kc", "--registry-on-conflict", "fail"); code != 0 {
		t.Fatalf("apps set --registry-on-conflict: exit %d\n%s", code, out)
	}
	push := exec.Command("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds", "baton:"+b.token,
		"docker://"+reg+"/kc:v1", "docker://"+b.apiAddr+"/kc:again")
	if out, err := push.CombinedOutput(); err == nil || !strings.Contains(string(out), res.Deployment.ID) {
		t.Fatalf("a push while %s runs, with registry_on_conflict=fail: %v, want a refusal naming it:\n%s", res.Deployment.ID, err, out)
	}
	b.stop(syscall.SIGKILL)
	b.start()
	waitServes(t, p, "kc.localhost", "v1")
	eventually(t, 20*time.Second, "only v1's containers are left", func() bool { return len(batonContainers(t, b)) == 2 })
	if d, err := c.Deployment(ctx, res.Deployment.ID); err != nil || d.State != baton.StateFailed {
		t.Fatalf("the deployment baton was killed in: %+v %v, want failed", d, err)
	}
	if rev, _ := liveImage(t, c, "kc", "production"); rev != "kc--000001" {
		t.Fatalf("production serves %s after the crash, want kc--000001", rev)
	}
}

// TestImageBadInputAndRetention: an image that cannot be had (unknown
// tag, unreachable registry, not an image) is refused with a sentence
// and the live revision serves on; collection removes the images of
// revisions it removes, and keeps the live one's.
func TestImageBadInputAndRetention(t *testing.T) {
	t.Parallel()
	b := startBaton(t, "--retain-revisions", "1")
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "ir"); err != nil {
		t.Fatal(err)
	}
	reg := testRegistry(t)
	imgs := map[string]v1.Image{}
	for _, v := range []string{"v1", "v2", "v3"} {
		imgs[v] = helloImage(t, v, nil)
		pushTo(t, reg+"/ir:"+v, imgs[v])
	}
	p := newProxyClient(b.proxyAddr)
	if out, code := runCLI(t, b, "deploy", "ir", "--image", reg+"/ir:v1", "--insecure-registry", "--wait"); code != 0 {
		t.Fatalf("deploy v1: exit %d\n%s", code, out)
	}
	waitServes(t, p, "ir.localhost", "v1")
	for _, bad := range []struct{ ref, want string }{
		{reg + "/ir:nope", "nope"},
		{freeAddr(t) + "/ir:v1", "registry"},
	} {
		out, code := runCLI(t, b, "deploy", "ir", "--image", bad.ref, "--insecure-registry")
		if code == 0 || !strings.Contains(out, bad.want) {
			t.Errorf("deploy --image %s: exit %d, want a refusal naming %q:\n%s", bad.ref, code, bad.want, out)
		}
	}
	notImage := filepath.Join(t.TempDir(), "x.tar")
	if err := os.WriteFile(notImage, bytes.Repeat([]byte("not a tar "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, b, "deploy", "ir", notImage); code == 0 {
		t.Errorf("deploying junk as an archive succeeded:\n%s", out)
	}
	waitServes(t, p, "ir.localhost", "v1")

	for _, v := range []string{"v2", "v3"} {
		if out, code := runCLI(t, b, "deploy", "ir", "--image", reg+"/ir:"+v, "--insecure-registry", "--wait"); code != 0 {
			t.Fatalf("deploy %s: exit %d\n%s", v, code, out)
		}
	}
	waitServes(t, p, "ir.localhost", "v3")
	if out, code := runCLI(t, b, "gc"); code != 0 {
		t.Fatalf("gc: exit %d\n%s", code, out)
	}
	held := func(v string) bool {
		d, err := imgs[v].Digest()
		if err != nil {
			t.Fatal(err)
		}
		_, err = os.Stat(filepath.Join(b.data, "images", "images", d.Hex+".json"))
		return err == nil
	}
	if held("v1") || !held("v3") {
		t.Fatalf("after gc with --retain-revisions 1: v1 held %v (want false), v3 held %v (want true)", held("v1"), held("v3"))
	}
	waitServes(t, p, "ir.localhost", "v3")
}

// TestImageAdoptedByAnotherController: on a shared PostgreSQL store, a
// controller that adopts an app whose controller died runs its image
// revision from the image's blobs in the shared store (the registry it
// was pulled from is gone by then).
func TestImageAdoptedByAnotherController(t *testing.T) {
	t.Parallel()
	a, b := twoControllers(t)
	ctx := context.Background()
	if _, err := a.client().CreateApp(ctx, "ia"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://")
	pushTo(t, reg+"/ia:v1", helloImage(t, "v1", nil))
	res, err := a.client().Deploy(ctx, "ia", nil, api.DeployOptions{Image: &baton.ImagePull{Ref: reg + "/ia:v1", Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	if d := waitFinal(t, a.client(), res.Deployment.ID); d.State != baton.StateSucceeded {
		t.Fatalf("v1 on a: %s %s", d.State, d.Error)
	}
	srv.Close()
	a.stop(syscall.SIGKILL)
	// b ran a share of v1 from the shared store all along (the two
	// hosts spread the app's instances), serves it on, and takes the app
	// over once a's lease runs out.
	waitServes(t, newProxyClient(b.proxyAddr), "ia.localhost", "v1")
	eventually(t, 30*time.Second, "b adopts the app", func() bool {
		st, err := b.client().Status(ctx, "ia")
		return err == nil && st.Controller == "ctl-b"
	})
	if _, img := liveImage(t, b.client(), "ia", "production"); img == nil || img.Ref != reg+"/ia:v1" {
		d, _ := b.client().Deployment(ctx, res.Deployment.ID)
		t.Fatalf("b runs %+v, want the image pulled from %s (deployment %+v)", img, reg, d)
	}
	// a, back, reaps the containers it left.
	a.start()
	eventually(t, 20*time.Second, "a's orphaned containers are gone", func() bool { return len(batonContainers(t, a)) == 0 })
}
