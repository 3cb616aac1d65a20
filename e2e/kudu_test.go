package e2e

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// TestKuduCurl runs the curl commands of Kudu's and Microsoft's zip deploy
// documentation against baton, unchanged but for the SCM URI: a plain App
// Service zip of the example app (an executable named app, no baton.toml)
// deploys synchronously, asynchronously with the Location polled until
// status 4, and through OneDeploy by Host APP.scm.localhost with a Bearer
// token; the proxy serves each version.
func TestKuduCurl(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	if _, err := b.client().CreateApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	p := newProxyClient(b.proxyAddr)
	serves := func(v string) {
		t.Helper()
		status, body, err := p.get("hello.localhost", "/")
		if err != nil || status != 200 || version(body) != v {
			t.Fatalf("proxy after deploying %s: %d %s %v", v, status, body, err)
		}
	}
	zipFile := func(v string) string {
		f := filepath.Join(t.TempDir(), "app.zip")
		if err := os.WriteFile(f, kuduZip(t, kuduAppDir(t, v)), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	scm := "http://" + b.apiAddr + "/kudu/hello"

	// Kudu wiki, "Deploying from a zip file": synchronous.
	res := kuduCurl(t, "-X", "POST", "-u", "$hello:"+adminToken, "--data-binary", "@"+zipFile("v1"), scm+"/api/zipdeploy")
	if res.status != 200 {
		t.Fatalf("sync zipdeploy: %d %s", res.status, res.body)
	}
	serves("v1")
	var d1 kuduDeployment
	json.Unmarshal([]byte(res.body), &d1)
	if d1.Status != 4 || !d1.Complete || !d1.Active || d1.Deployer != "ZipDeploy" {
		t.Fatalf("sync zipdeploy answered %+v", d1)
	}
	// The log says which convention ran the zip.
	logRes := kuduCurl(t, "-u", "$hello:"+adminToken, d1.LogURL)
	if !strings.Contains(logRes.body, "convention: prebuilt executable ./app") {
		t.Fatalf("log does not name the convention:\n%s", logRes.body)
	}

	// Asynchronous: 202 with a Location, polled until status 4.
	res = kuduCurl(t, "-X", "POST", "-u", "$hello:"+adminToken, "-T", zipFile("v2"), scm+"/api/zipdeploy?isAsync=true")
	loc := res.header.Get("Location")
	if res.status != 202 || !strings.HasPrefix(loc, scm+"/api/deployments/") {
		t.Fatalf("async zipdeploy: %d Location %q %s", res.status, loc, res.body)
	}
	var d2 kuduDeployment
	eventually(t, 2*time.Minute, "the Location reports status 4", func() bool {
		poll := kuduCurl(t, "-u", "$hello:"+adminToken, loc)
		if err := json.Unmarshal([]byte(poll.body), &d2); err != nil || poll.status != 200 {
			t.Fatalf("poll %s: %d %s", loc, poll.status, poll.body)
		}
		if d2.Status == 3 {
			t.Fatalf("async deployment failed: %s", d2.StatusText)
		}
		return d2.Status == 4
	})
	serves("v2")

	// Microsoft's "Deploy files to App Service", OneDeploy with an Entra
	// token, to the SCM host name.
	_, port, _ := net.SplitHostPort(b.apiAddr)
	res = kuduCurl(t, "-X", "POST", "-H", "Authorization: Bearer "+adminToken, "-T", zipFile("v3"),
		"http://hello.scm.localhost:"+port+"/api/publish?type=zip",
		"--resolve", "hello.scm.localhost:"+port+":127.0.0.1")
	if res.status != 200 {
		t.Fatalf("publish by Host: %d %s", res.status, res.body)
	}
	serves("v3")

	// Without credentials, as Kudu: 401 with a challenge.
	res = kuduCurl(t, "-X", "POST", "--data-binary", "@"+zipFile("v4"), scm+"/api/zipdeploy")
	if res.status != 401 || !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("no credentials: %d %v %s", res.status, res.header, res.body)
	}
	serves("v3")
}

// TestKuduPipelines: two pipelines that follow only Kudu's contract push at
// once; where Kudu answers the second with 409, baton queues it and both
// end with status 4, one after the other. isdeploying reads True while
// they run and False after; on_conflict=fail gets Kudu's 409 naming the
// holder; a running deployment cannot be deleted.
func TestKuduPipelines(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	if _, err := b.client().CreateApp(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(b.apiAddr)
	k := newKuduClient("http://k.scm.localhost:"+port, b.apiAddr, "k")
	if k.isDeploying(t) {
		t.Fatal("isdeploying True before any deployment")
	}

	// Both builds wait for the gate, so the two pipelines overlap.
	g := newGate(t)
	zips := map[string][]byte{
		"a": kuduZip(t, appDir(t, "a", buildWaitsFor(g))),
		"b": kuduZip(t, appDir(t, "b", buildWaitsFor(g))),
	}
	results := map[string]kuduDeployment{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, zip := range zips {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := k.pipeline(zip)
			if err != nil {
				t.Errorf("pipeline %s: %v", name, err)
			}
			mu.Lock()
			results[name] = d
			mu.Unlock()
		}()
	}

	// One builds (status 1), the other waits (status 0).
	var list []kuduDeployment
	eventually(t, time.Minute, "one deployment building and one pending", func() bool {
		list = k.deployments(t)
		// status_text names baton's phase: wait for the build itself, so
		// the holder's phase below is known.
		return len(list) == 2 && list[0].Status == 0 && list[1].Status == 1 && strings.HasSuffix(list[1].StatusText, "phase building")
	})
	holder := list[1]
	if !k.isDeploying(t) {
		t.Fatal("isdeploying False while two deployments run and wait")
	}

	// A client that asks to fail instead of waiting gets Kudu's 409,
	// which now says whom it waits for.
	resp, body, err := k.do("POST", "/api/zipdeploy?on_conflict=fail&author=carol", kuduZip(t, appDir(t, "c")))
	if err != nil {
		t.Fatal(err)
	}
	var conflict struct {
		Message string
		Holder  struct{ ID, Phase string }
	}
	json.Unmarshal(body, &conflict)
	if resp.StatusCode != 409 || resp.Header.Get("Retry-After") == "" || conflict.Holder.ID != holder.ID || conflict.Holder.Phase != "building" ||
		!strings.Contains(conflict.Message, "There is a deployment currently in progress") || !strings.Contains(conflict.Message, holder.ID) ||
		!strings.Contains(conflict.Message, "running since") {
		t.Fatalf("on_conflict=fail: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if resp, body, _ := k.do("DELETE", "/api/deployments/"+holder.ID, nil); resp.StatusCode != 409 {
		t.Fatalf("DELETE of a running deployment: %d %s", resp.StatusCode, body)
	}

	g.open(t)
	wg.Wait()
	a, bb := results["a"], results["b"]
	if a.Status != 4 || bb.Status != 4 {
		t.Fatalf("pipelines ended with status %d (%s) and %d (%s), want 4 and 4", a.Status, a.StatusText, bb.Status, bb.StatusText)
	}
	first, second := a, bb
	if second.ReceivedTime.Before(first.ReceivedTime) {
		first, second = second, first
	}
	if first.EndTime == nil || second.StartTime.Before(*first.EndTime) {
		t.Fatalf("deployments overlapped: %s ended %v, %s started %v", first.ID, first.EndTime, second.ID, second.StartTime)
	}
	if k.isDeploying(t) {
		t.Fatal("isdeploying True after both finished")
	}
	// The later one serves; the history lists it first.
	want := "a"
	if second.ID == bb.ID {
		want = "b"
	}
	status, page, err := newProxyClient(b.proxyAddr).get("k.localhost", "/")
	if err != nil || status != 200 || version(page) != want {
		t.Fatalf("proxy serves %d %s %v, want version %s", status, page, err, want)
	}
	list = k.deployments(t)
	var ids []string
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	if len(list) != 2 || list[0].ID != second.ID || !list[0].Active || list[1].Active {
		t.Fatalf("history %v, want %s then %s, only the first active", ids, second.ID, first.ID)
	}
	if resp, body, _ := k.do("DELETE", "/api/deployments/"+first.ID, nil); resp.StatusCode != 405 {
		t.Fatalf("DELETE of a finished deployment: %d %s", resp.StatusCode, body)
	}
}

// TestKuduBrokenZip: a corrupt zip, and a zip with nothing baton can run,
// end with status 3 and the reason in the log; the previous revision
// serves every request meanwhile.
func TestKuduBrokenZip(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	if _, err := b.client().CreateApp(ctx, "br"); err != nil {
		t.Fatal(err)
	}
	k := newKuduClient("http://"+b.apiAddr+"/kudu/br", b.apiAddr, "br")
	// Synchronous zip deploy of v1: 200 once it serves.
	resp, body, err := k.do("POST", "/api/zipdeploy", kuduZip(t, kuduAppDir(t, "v1")))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("sync zipdeploy of v1: %v %v %s", resp, err, body)
	}
	l := startLoad(t, newProxyClient(b.proxyAddr), "br.localhost", 4)
	eventually(t, 10*time.Second, "load sees v1", func() bool { return l.count("v1") > 20 })

	good := kuduZip(t, kuduAppDir(t, "v2"))
	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "README.md"), []byte("no app here"), 0o644)
	cases := []struct {
		name string
		zip  []byte
		want string
	}{
		{"truncated zip", good[:len(good)/2], "corrupt"},
		{"nothing to run", kuduZip(t, junk), "no convention applies"},
	}
	for _, tc := range cases {
		d, err := k.pipeline(tc.zip)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if d.Status != 3 || !strings.Contains(d.StatusText, tc.want) {
			t.Fatalf("%s: status %d %q, want 3 mentioning %q", tc.name, d.Status, d.StatusText, tc.want)
		}
		var errs []string
		for _, e := range k.log(t, d) {
			if e.Type == 2 {
				errs = append(errs, e.Message)
			}
		}
		if len(errs) != 1 || !strings.Contains(errs[0], tc.want) {
			t.Fatalf("%s: error entries of the log %q, want one mentioning %q", tc.name, errs, tc.want)
		}
	}
	// The synchronous form answers the failure itself.
	resp, body, err = k.do("POST", "/api/zipdeploy", good[:len(good)/2])
	var failed struct{ Message string }
	json.Unmarshal(body, &failed)
	if err != nil || resp.StatusCode != 400 || !strings.Contains(failed.Message, "corrupt") {
		t.Fatalf("sync deploy of a truncated zip: %v %v %s", resp, err, body)
	}

	versions, failures := l.finish()
	if len(failures) > 0 || len(versions) != 1 {
		t.Fatalf("while broken zips deployed: versions %v, %d failures %v", versions, len(failures), failures)
	}
	// The history has them all, newest first, the first one still active.
	list := k.deployments(t)
	statuses := make([]int, len(list))
	for i, d := range list {
		statuses[i] = d.Status
	}
	if !sort.SliceIsSorted(list, func(i, j int) bool { return list[i].ReceivedTime.After(list[j].ReceivedTime) }) ||
		len(list) != 4 || !list[3].Active || statuses[0] != 3 || statuses[3] != 4 {
		t.Fatalf("history statuses %v", statuses)
	}
}

// TestKuduSettings: GET /api/settings lists the production slot's settings
// without the secret ones, and the app option kudu_on_conflict=fail (kept
// on the app, not as a setting the app would see) turns a busy app's
// answer into Kudu's 409 unless the request asks to queue. The settings
// change itself is no Kudu deployment.
func TestKuduSettings(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "st"); err != nil {
		t.Fatal(err)
	}
	fail := string(baton.PolicyFail)
	if _, err := c.UpdateApp(ctx, "st", api.AppChange{KuduOnConflict: &fail}); err != nil {
		t.Fatal(err)
	}
	op, err := c.SetSettings(ctx, "st", "production", []baton.Setting{
		{Key: "GREETING", Value: "hi"}, {Key: "DB_PASSWORD", Value: "s3cret", Secret: true},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := waitFinal(t, c, op.ID); d.State != baton.StateSucceeded {
		t.Fatalf("settings change: %s %s", d.State, d.Error)
	}
	k := newKuduClient("http://"+b.apiAddr+"/kudu/st", b.apiAddr, "st")
	_, body, err := k.do("GET", "/api/settings", nil)
	var settings map[string]string
	if err != nil || json.Unmarshal(body, &settings) != nil || len(settings) != 1 || settings["GREETING"] != "hi" {
		t.Fatalf("settings: %s %v", body, err)
	}

	g := newGate(t)
	loc, err := k.zipDeployAsync(kuduZip(t, appDir(t, "a", buildWaitsFor(g))), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.pollUntil(loc, time.Minute, func(d kuduDeployment) bool { return d.Status == 1 }); err != nil {
		t.Fatal(err)
	}
	resp, body, err := k.do("POST", "/api/zipdeploy?isAsync=true", kuduZip(t, appDir(t, "b")))
	if err != nil || resp.StatusCode != 409 || !strings.Contains(string(body), "There is a deployment currently in progress") {
		t.Fatalf("with kudu_on_conflict=fail: %v %v %s", resp, err, body)
	}
	queued, err := k.zipDeployAsync(kuduZip(t, appDir(t, "b")), "&on_conflict=queue")
	if err != nil {
		t.Fatalf("on_conflict=queue overrides the setting: %v", err)
	}
	g.open(t)
	for _, l := range []string{loc, queued} {
		if d, err := k.pollUntil(l, 2*time.Minute, kuduFinished); err != nil || d.Status != 4 {
			t.Fatalf("%s: %+v %v", l, d, err)
		}
	}
	if list := k.deployments(t); len(list) != 2 {
		t.Fatalf("Kudu history has %d entries, want the 2 deployments without the settings change: %+v", len(list), list)
	}
}
