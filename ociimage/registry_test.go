package ociimage

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushCall is one ManifestPushed call.
type pushCall struct {
	repo, ref string
	img       Image
}

// testRegistry serves s.Registry with a token check (Basic password
// "TOKEN" may push, "READ" may pull) and records ManifestPushed calls;
// pushErr, if set, is what the hook returns.
type testRegistry struct {
	s       *Store
	srv     *httptest.Server
	host    string
	mu      sync.Mutex
	calls   []pushCall
	pushErr error
}

func newTestRegistry(t *testing.T, s *Store) *testRegistry {
	t.Helper()
	tr := &testRegistry{s: s}
	h := s.Registry(RegistryHooks{
		Authorize: func(r *http.Request, repo string, push bool) error {
			_, token, ok := r.BasicAuth()
			switch {
			case !ok:
				return baton.Errorf(baton.EUNAUTHORIZED, "log in with a baton token")
			case token == "TOKEN", token == "READ" && !push:
				return nil
			}
			return baton.Errorf(baton.EFORBIDDEN, "this token may not push to %s; ask for a deploy token", repo)
		},
		ManifestPushed: func(ctx context.Context, repo, reference string, img Image) (http.Header, error) {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			tr.calls = append(tr.calls, pushCall{repo, reference, img})
			if tr.pushErr != nil {
				return nil, tr.pushErr
			}
			return http.Header{"Baton-Deployment": {"42"}}, nil
		},
	})
	tr.srv = httptest.NewServer(h)
	t.Cleanup(tr.srv.Close)
	tr.host = strings.TrimPrefix(tr.srv.URL, "http://")
	return tr
}

// pushed is what ManifestPushed was called with so far: the server may
// still run a handler when a client has exited.
func (tr *testRegistry) pushed() []pushCall {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]pushCall(nil), tr.calls...)
}

// refuse makes ManifestPushed fail with err (nil: accept again).
func (tr *testRegistry) refuse(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.pushErr = err
}

var pushAuth = remote.WithAuth(&authn.Basic{Username: "x", Password: "TOKEN"})

func (tr *testRegistry) write(t *testing.T, x any, repoTag string, opts ...remote.Option) error {
	t.Helper()
	ref, err := name.ParseReference(tr.host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	switch x := x.(type) {
	case v1.Image:
		return remote.Write(ref, x, opts...)
	case v1.ImageIndex:
		return remote.WriteIndex(ref, x, opts...)
	}
	panic("not an image")
}

func TestRegistryPushAndPull(t *testing.T) {
	s := newStore(t, Limits{})
	tr := newTestRegistry(t, s)
	img := serverImage(t)
	if err := tr.write(t, img, "app/blue:v1", pushAuth); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if len(tr.pushed()) != 1 || tr.pushed()[0].repo != "app/blue" || tr.pushed()[0].ref != "v1" || tr.pushed()[0].img.Digest != want.String() {
		t.Fatalf("ManifestPushed calls = %+v, want one for app/blue v1 %s", tr.pushed(), want)
	}
	if got := tr.pushed()[0].img; got.Ref != "push app/blue:v1" || got.Config.WorkingDir != "/app" {
		t.Errorf("pushed image = %+v", got)
	}
	if held, err := s.Image(want.String()); err != nil || held.Digest != want.String() {
		t.Errorf("Image after push = %+v, %v", held, err)
	}

	// Pull it back, by tag and by digest, with a read token.
	readAuth := remote.WithAuth(&authn.Basic{Username: "x", Password: "READ"})
	for _, ref := range []string{tr.host + "/app/blue:v1", tr.host + "/app/blue@" + want.String()} {
		r, _ := name.ParseReference(ref, name.Insecure)
		got, err := remote.Image(r, readAuth)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if d, _ := got.Digest(); d != want {
			t.Errorf("pulled %s, want %s", d, want)
		}
		ls, _ := got.Layers()
		for _, l := range ls {
			rc, err := l.Compressed() // verified against the digest by ggcr
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Errorf("layer: %v", err)
			}
			rc.Close()
		}
	}
	// Another store pulls from this one as from any registry.
	other := newStore(t, Limits{})
	if _, err := other.Pull(context.Background(), tr.host+"/app/blue:v1", PullOptions{Insecure: true, Username: "x", Password: "READ"}); err != nil {
		t.Fatal(err)
	}

	resp := tr.do(t, "GET", "/v2/app/blue/tags/list", "READ", nil, nil)
	var tags struct{ Tags []string }
	json.NewDecoder(resp.Body).Decode(&tags)
	resp.Body.Close()
	if len(tags.Tags) != 1 || tags.Tags[0] != "v1" {
		t.Errorf("tags = %v", tags.Tags)
	}

	// Removing the image drops its tag too.
	if err := s.Remove(want.String()); err != nil {
		t.Fatal(err)
	}
	resp = tr.do(t, "GET", "/v2/app/blue/manifests/v1", "READ", nil, nil)
	wantRegError(t, resp, http.StatusNotFound, "MANIFEST_UNKNOWN", "app/blue")
	if blobs := blobNames(t, s); len(blobs) != 0 {
		t.Errorf("Remove left blobs %v", blobs)
	}
}

func TestRegistryPushIndex(t *testing.T) {
	s := newStore(t, Limits{})
	tr := newTestRegistry(t, s)
	amd := runImage(t, []entry{fileE("run", "amd64")})
	arm := runImage(t, []entry{fileE("run", "arm64")})
	cf, _ := arm.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture = "arm64"
	arm = mustConfig(t, arm, cf)
	if err := tr.write(t, index(t, arm, "linux", "arm64", amd, "linux", "amd64"), "app:multi", pushAuth); err != nil {
		t.Fatal(err)
	}
	want, _ := amd.Digest()
	if len(tr.pushed()) != 1 || tr.pushed()[0].img.Digest != want.String() {
		t.Fatalf("ManifestPushed calls = %+v, want the amd64 child %s", tr.pushed(), want)
	}
	if err := tr.write(t, index(t, arm, "linux", "arm64"), "app:arm", pushAuth); err == nil || !strings.Contains(err.Error(), "no linux/amd64 image (it has: linux/arm64)") {
		t.Errorf("push of an arm64-only index: %v", err)
	}
	if len(tr.pushed()) != 1 {
		t.Errorf("ManifestPushed ran for a refused index")
	}
}

func TestRegistryRefusals(t *testing.T) {
	s := newStore(t, Limits{})
	tr := newTestRegistry(t, s)

	resp := tr.do(t, "GET", "/v2/", "", nil, nil)
	if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="baton"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	wantRegError(t, resp, http.StatusUnauthorized, "UNAUTHORIZED", "log in")
	resp = tr.do(t, "GET", "/v2/", "READ", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ with a token = %s", resp.Status)
	}
	resp.Body.Close()
	resp = tr.do(t, "POST", "/v2/app/blobs/uploads/", "READ", nil, nil)
	wantRegError(t, resp, http.StatusForbidden, "DENIED", "may not push to app")
	resp = tr.do(t, "GET", "/v2/App!/manifests/v1", "READ", nil, nil)
	wantRegError(t, resp, http.StatusBadRequest, "NAME_INVALID", "APP or APP/SLOT")

	err := tr.write(t, runImage(t, []entry{fileE("run", "x")}), "app:v1", remote.WithAuth(&authn.Basic{Username: "x", Password: "READ"}))
	if err == nil || !strings.Contains(err.Error(), "may not push") {
		t.Errorf("push with a read token: %v", err)
	}

	tr.refuse(&baton.Error{Code: baton.ECONFLICT, Message: "app is held by deployment 41 (alice, running for 2m)", RetryAfterSeconds: 5})
	img := runImage(t, []entry{fileE("run", "x")})
	err = tr.write(t, img, "app:v1", pushAuth)
	if err == nil || !strings.Contains(err.Error(), "app is held by deployment 41 (alice, running for 2m)") {
		t.Errorf("push refused by the hook: %v", err)
	}
	resp = tr.do(t, "GET", "/v2/app/manifests/v1", "READ", nil, nil)
	wantRegError(t, resp, http.StatusNotFound, "MANIFEST_UNKNOWN", "")

	tr.refuse(nil)
	noCmd := imageOf(t, &v1.Config{Env: []string{"A=b"}}, layerOf(t, tarBytes(t, fileE("x", "x"))))
	if err := tr.write(t, noCmd, "app:v2", pushAuth); err == nil || !strings.Contains(err.Error(), "no entrypoint and no command") {
		t.Errorf("push of an image with nothing to run: %v", err)
	}

	// A manifest naming a blob never pushed.
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%x","size":2},"layers":[]}`, sha256.Sum256([]byte("{}")))
	resp = tr.do(t, "PUT", "/v2/app/manifests/v3", "TOKEN", strings.NewReader(m), http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}})
	wantRegError(t, resp, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "was not pushed")
}

func TestRegistryUploads(t *testing.T) {
	s := newStore(t, Limits{MaxLayerBytes: 1000})
	tr := newTestRegistry(t, s)
	data := []byte(strings.Repeat("chunk", 100))
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(data))

	// Chunked: POST, two PATCHes, PUT.
	resp := tr.do(t, "POST", "/v2/app/blobs/uploads/", "TOKEN", nil, nil)
	loc := resp.Header.Get("Location")
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("POST = %s, Location %q", resp.Status, loc)
	}
	resp = tr.do(t, "PATCH", loc, "TOKEN", strings.NewReader(string(data[:200])), http.Header{"Content-Range": {"0-199"}})
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-199" {
		t.Fatalf("PATCH = %s, Range %q", resp.Status, resp.Header.Get("Range"))
	}
	resp.Body.Close()
	resp = tr.do(t, "PATCH", loc, "TOKEN", strings.NewReader("x"), http.Header{"Content-Range": {"100-100"}})
	wantRegError(t, resp, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", "resume")
	resp = tr.do(t, "PATCH", loc, "TOKEN", strings.NewReader(string(data[200:])), nil)
	resp.Body.Close()
	resp = tr.do(t, "PUT", loc+"?digest="+digest, "TOKEN", nil, nil)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != digest {
		t.Fatalf("PUT = %s", resp.Status)
	}
	resp.Body.Close()
	resp = tr.do(t, "HEAD", "/v2/other/blobs/"+digest, "READ", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
		t.Errorf("HEAD blob = %s, length %d", resp.Status, resp.ContentLength)
	}
	resp.Body.Close()

	// A cross-repository mount falls back to an upload; a monolithic
	// POST of a blob already held is answered at once.
	resp = tr.do(t, "POST", "/v2/other/blobs/uploads/?mount="+digest+"&from=app", "TOKEN", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("mount = %s, want 202", resp.Status)
	}
	resp.Body.Close()
	tr.do(t, "DELETE", resp.Header.Get("Location"), "TOKEN", nil, nil).Body.Close()
	resp = tr.do(t, "POST", "/v2/other/blobs/uploads/?digest="+digest, "TOKEN", strings.NewReader(string(data)), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("monolithic POST = %s, want 201", resp.Status)
	}
	resp.Body.Close()

	// Monolithic with the wrong digest: refused, nothing kept.
	wrong := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("other")))
	resp = tr.do(t, "POST", "/v2/app/blobs/uploads/?digest="+wrong, "TOKEN", strings.NewReader("not other"), nil)
	wantRegError(t, resp, http.StatusBadRequest, "DIGEST_INVALID", "hashes to")
	resp = tr.do(t, "HEAD", "/v2/app/blobs/"+wrong, "READ", nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of a refused blob = %s", resp.Status)
	}
	resp.Body.Close()

	// Over the layer limit, counted as it comes.
	resp = tr.do(t, "POST", "/v2/app/blobs/uploads/", "TOKEN", nil, nil)
	loc = resp.Header.Get("Location")
	resp.Body.Close()
	resp = tr.do(t, "PATCH", loc, "TOKEN", strings.NewReader(strings.Repeat("x", 1001)), nil)
	wantRegError(t, resp, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "limit")
	resp = tr.do(t, "PUT", loc+"?digest="+digest, "TOKEN", nil, nil)
	wantRegError(t, resp, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "start the push again")

	// An abandoned upload is removed by a later one.
	resp = tr.do(t, "POST", "/v2/app/blobs/uploads/", "TOKEN", nil, nil)
	resp.Body.Close()
	s.reapUploads(time.Now().Add(time.Hour))
	if entries, _ := os.ReadDir(filepath.Join(s.dir, "uploads")); len(entries) != 0 {
		t.Errorf("uploads left: %v", entries)
	}
	if blobs := blobNames(t, s); len(blobs) != 1 || "sha256:"+blobs[0] != digest {
		t.Errorf("blobs = %v, want only %s", blobs, digest)
	}
	// The one blob is pushed but in no image: remove it for the leftover check.
	os.Remove(s.blobPath(strings.TrimPrefix(digest, "sha256:")))
}

// do sends a request to the registry with the token as Basic password.
func (tr *testRegistry) do(t *testing.T, method, path, token string, body io.Reader, hdr http.Header) *http.Response {
	t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = tr.srv.URL + path
	}
	req, err := http.NewRequest(method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if token != "" {
		req.SetBasicAuth("x", token)
	}
	resp, err := tr.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// wantRegError checks a registry error response and closes it.
func wantRegError(t *testing.T, resp *http.Response, status int, code, msgPart string) {
	t.Helper()
	defer resp.Body.Close()
	var body struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: body is not an OCI error: %v", resp.Status, err)
	}
	if resp.StatusCode != status || len(body.Errors) != 1 || body.Errors[0].Code != code || !strings.Contains(body.Errors[0].Message, msgPart) {
		t.Errorf("response = %s %+v; want %d %s containing %q", resp.Status, body, status, code, msgPart)
	}
}

func TestRegistrySkopeoCopy(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Fatal("skopeo is not installed: apt-get install -y skopeo (./test.sh installs it)")
	}
	s := newStore(t, Limits{})
	tr := newTestRegistry(t, s)
	img := serverImage(t)
	archive := ociArchive(t, img)
	cmd := exec.Command("skopeo", "copy", "--dest-creds", "x:TOKEN", "--dest-tls-verify=false", "oci-archive:"+archive, "docker://"+tr.host+"/app:v1")
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	want, _ := img.Digest()
	if len(tr.pushed()) != 1 || tr.pushed()[0].repo != "app" || tr.pushed()[0].ref != "v1" {
		t.Fatalf("ManifestPushed calls = %+v", tr.pushed())
	}
	// skopeo may rewrite the manifest, but not the config.
	wantID, _ := img.ConfigName()
	if tr.pushed()[0].img.ID != wantID.String() {
		t.Errorf("pushed image ID %s, want %s (digest %s, ggcr's %s)", tr.pushed()[0].img.ID, wantID, tr.pushed()[0].img.Digest, want)
	}

	tr.refuse(baton.Errorf(baton.ECONFLICT, "app is held by deployment 41 (alice)"))
	cmd = exec.Command("skopeo", "copy", "--dest-creds", "x:TOKEN", "--dest-tls-verify=false", "oci-archive:"+archive, "docker://"+tr.host+"/app:v2")
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "app is held by deployment 41 (alice)") {
		t.Errorf("skopeo copy refused by the hook: %v\n%s", err, out)
	}
	t.Logf("skopeo said: %s", out)
}

func TestRegistryPodmanLoginPush(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("podman is not installed: apt-get install -y podman (./test.sh installs it)")
	}
	s := newStore(t, Limits{})
	tr := newTestRegistry(t, s)
	dir := t.TempDir()
	t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(dir, "auth.json"))
	podman(t, dir, "load", "-i", dockerArchive(t, serverImage(t)))
	podman(t, dir, "login", "--tls-verify=false", "-u", "x", "-p", "TOKEN", tr.host)
	podman(t, dir, "push", "--tls-verify=false", "hello:v1", tr.host+"/app:v1")
	if len(tr.pushed()) != 1 || tr.pushed()[0].repo != "app" || tr.pushed()[0].ref != "v1" {
		t.Fatalf("ManifestPushed calls = %+v", tr.pushed())
	}
	wantID, _ := serverImage(t).ConfigName()
	if tr.pushed()[0].img.ID != wantID.String() {
		t.Errorf("pushed image ID %s, want %s", tr.pushed()[0].img.ID, wantID)
	}
	podman(t, dir, "pull", "--tls-verify=false", tr.host+"/app:v1")
}
