package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// history returns app's deployments, newest first.
func history(t testing.TB, c *api.Client, app string) []baton.Deployment {
	t.Helper()
	ds, err := c.Deployments(context.Background(), app, 100)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestRedeployOfLiveIsNoop: deploying the folder that is live again records
// no deployment and says so (CLI exit 0, with and without --wait; the API
// answers 200 with the deployment that created the live revision); --force
// deploys it; the same folder to another slot deploys; an Idempotency-Key
// repeat of a no-op gets the same answer.
func TestRedeployOfLiveIsNoop(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "same"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSlot(ctx, "same", "staging"); err != nil {
		t.Fatal(err)
	}
	dir := appDir(t, "v1")
	if out, code := runCLI(t, b, "deploy", "same", dir, "--wait"); code != 0 {
		t.Fatalf("first deploy: exit %d\n%s", code, out)
	}
	first := history(t, c, "same")
	if len(first) != 1 || first[0].Revision != "same--000001" {
		t.Fatalf("after the first deploy: %+v", first)
	}
	noop := "same--000001 is already live in same/production with this artifact and these settings; nothing to do (use --force to deploy it again)"
	for _, args := range [][]string{{"--wait"}, nil, {"-m", "again", "--commit", "feedbeef"}} {
		out, code := runCLI(t, b, append([]string{"deploy", "same", dir}, args...)...)
		if code != 0 || strings.TrimSpace(out) != noop {
			t.Fatalf("deploy %v of what is live: exit %d, output\n%s\nwant exit 0 and %q", args, code, out, noop)
		}
	}
	out, code := runCLI(t, b, "deploy", "same", dir, "--json")
	var res api.DeployResult
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || !res.Unchanged || res.ID != first[0].ID ||
		res.Revision != "same--000001" || !strings.Contains(res.Detail, "force=true") {
		t.Fatalf("deploy --json of what is live: exit %d %v\n%s", code, err, out)
	}
	if ds := history(t, c, "same"); len(ds) != 1 {
		t.Fatalf("the no-ops recorded deployments: %+v", ds)
	}

	// The API: 200 (not 202) with the deployment that created it.
	body, err := zipDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+b.apiAddr+"/api/v1/apps/same/slots/production/deployments", "application/zip", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res = api.DeployResult{}
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !res.Unchanged || res.ID != first[0].ID || res.State != baton.StateSucceeded ||
		resp.Header.Get("Location") != "/api/v1/deployments/"+first[0].ID {
		t.Fatalf("POST of what is live: %d %v %+v %v", resp.StatusCode, resp.Header, res, err)
	}
	// An Idempotency-Key repeat of a no-op gets the no-op again, even forced.
	for _, o := range []api.DeployOptions{{IdempotencyKey: "ci-1"}, {IdempotencyKey: "ci-1", Force: true}} {
		res, err := deployErr(c, "same", dir, o)
		if err != nil || !res.Unchanged || res.ID != first[0].ID {
			t.Fatalf("deploy %+v: %+v %v", o, res, err)
		}
	}
	if ds := history(t, c, "same"); len(ds) != 1 {
		t.Fatalf("the no-ops recorded deployments: %+v", ds)
	}

	// --force deploys it again, as a new revision.
	if out, code := runCLI(t, b, "deploy", "same", dir, "--force", "--wait"); code != 0 || !strings.Contains(out, "deployment succeeded") {
		t.Fatalf("deploy --force: exit %d\n%s", code, out)
	}
	ds := history(t, c, "same")
	if len(ds) != 2 || ds[0].State != baton.StateSucceeded || ds[0].Revision != "same--000002" {
		t.Fatalf("after --force: %+v", ds)
	}
	if out, _ := runCLI(t, b, "deploy", "same", dir); !strings.Contains(out, "same--000002 is already live in same/production") {
		t.Fatalf("deploy after --force:\n%s", out)
	}

	// The same folder to another slot deploys; then it is live there too.
	if out, code := runCLI(t, b, "deploy", "same", dir, "--slot", "staging", "--wait"); code != 0 || !strings.Contains(out, "deployment succeeded") {
		t.Fatalf("deploy to staging: exit %d\n%s", code, out)
	}
	if out, code := runCLI(t, b, "deploy", "same", dir, "--slot", "staging", "--wait"); code != 0 ||
		!strings.Contains(out, "same--000003 is already live in same/staging") {
		t.Fatalf("deploy to staging again: exit %d\n%s", code, out)
	}
	// Another artifact deploys, of course.
	mustSucceed(t, c, "same", appDir(t, "v2"))
	if ds := history(t, c, "same"); len(ds) != 4 {
		t.Fatalf("want 4 deployments (v1, v1 forced, v1 to staging, v2): %+v", ds)
	}
	if out, code := runCLI(t, b, "deploy", "--help"); code != 0 || !strings.Contains(out, "--force") {
		t.Fatalf("deploy --help does not document --force:\n%s", out)
	}
}

// TestKuduZipDeployUnchanged: a Kudu pipeline pushing the zip that is live
// succeeds, synchronously (200, status 4) and asynchronously (202, the
// Location reads status 4), without a new deployment; force=true deploys.
func TestKuduZipDeployUnchanged(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	if _, err := b.client().CreateApp(context.Background(), "kz"); err != nil {
		t.Fatal(err)
	}
	k := newKuduClient("http://"+b.apiAddr+"/kudu/kz", b.apiAddr, "kz")
	zip := kuduZip(t, kuduAppDir(t, "v1"))
	resp, body, err := k.do("POST", "/api/zipdeploy", zip)
	var first kuduDeployment
	if err != nil || resp.StatusCode != 200 || json.Unmarshal(body, &first) != nil || first.Status != 4 {
		t.Fatalf("first zipdeploy: %v %v %s", resp, err, body)
	}
	resp, body, err = k.do("POST", "/api/zipdeploy", zip)
	var again kuduDeployment
	if err != nil || resp.StatusCode != 200 || json.Unmarshal(body, &again) != nil || again.Status != 4 || !again.Complete ||
		again.ID != first.ID || !strings.Contains(again.StatusText, "Nothing to deploy: kz--000001 is already live in kz/production") {
		t.Fatalf("the same zip again: %v %v %s", resp, err, body)
	}
	d, err := k.pipeline(zip)
	if err != nil || d.Status != 4 || d.ID != first.ID {
		t.Fatalf("the same zip through an async pipeline: %+v %v", d, err)
	}
	list := func() []kuduDeployment {
		resp, body, err := k.do("GET", "/api/deployments", nil)
		var l []kuduDeployment
		if err != nil || resp.StatusCode != 200 || json.Unmarshal(body, &l) != nil {
			t.Fatalf("deployments: %v %v %s", resp, err, body)
		}
		return l
	}
	if l := list(); len(l) != 1 {
		t.Fatalf("Kudu lists %d deployments, want 1", len(l))
	}
	loc, err := k.zipDeployAsync(zip, "&force=true")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := k.pollUntil(loc, 2*time.Minute, kuduFinished); err != nil || d.Status != 4 || d.ID == first.ID {
		t.Fatalf("force=true: %+v %v", d, err)
	}
	if l := list(); len(l) != 2 {
		t.Fatalf("Kudu lists %d deployments after force=true, want 2", len(l))
	}
}

// TestGitPushOfLiveCommit: a push of the commit whose archive already
// serves (deployed with `baton deploy` of `git archive`) deploys nothing:
// the remote lines say so, the push succeeds and main moves to it.
func TestGitPushOfLiveCommit(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "gl"); err != nil {
		t.Fatal(err)
	}
	w := newGitWork(t, "Alice")
	sha := w.commitApp("v1")
	archive := filepath.Join(t.TempDir(), "v1.tar.gz")
	w.must("archive", "--format=tar.gz", "-o", archive, sha)
	if out, code := runCLI(t, b, "deploy", "gl", archive, "--wait"); code != 0 {
		t.Fatalf("deploy of the archive: exit %d\n%s", code, out)
	}
	remote := gitRemote(b, "gl")
	_, out, err := w.run("push", remote, "main")
	if err != nil {
		t.Fatalf("push of the live commit: %v\n%s", err, out)
	}
	for _, want := range []string{
		"remote: baton: gl--000001 is already live in gl/production with this artifact and these settings; nothing to do",
		"remote: baton: gl--000001 is live: http://gl.localhost:" + proxyPort(b) + "/", "* [new branch]      main -> main",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "phase extracting") {
		t.Errorf("the push deployed:\n%s", out)
	}
	if got := serverMain(t, remote); got != sha {
		t.Fatalf("server main = %q, want %s", got, sha)
	}
	if ds := history(t, c, "gl"); len(ds) != 1 {
		t.Fatalf("deployments after the push: %+v", ds)
	}
}
