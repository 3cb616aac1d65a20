package kudu

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

func decodeJSON[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("answer is not the expected JSON: %v\n%s", err, body)
	}
	return v
}

func TestCredentialsRequired(t *testing.T) {
	s := newTestSite(t, Config{})
	req, _ := http.NewRequest("GET", s.srv.URL+"/kudu/hello/api/isdeploying", nil)
	resp, body := s.send(req)
	if resp.StatusCode != 401 || len(resp.Header.Values("WWW-Authenticate")) != 2 ||
		resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, `"Message"`) {
		t.Fatalf("no credentials: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	req.Header.Set("Authorization", "Bearer any-token")
	if resp, body := s.send(req); resp.StatusCode != 200 {
		t.Fatalf("bearer: %d %s", resp.StatusCode, body)
	}
}

func TestAuthorizeHook(t *testing.T) {
	var got Credentials
	s := newTestSite(t, Config{Authorize: func(r *http.Request, app string, c Credentials) error {
		got = c
		return baton.Errorf(baton.EFORBIDDEN, "token lacks the deploy scope for %s", app)
	}})
	resp, body := s.do("GET", "/api/isdeploying", "")
	if resp.StatusCode != 403 || !strings.Contains(body, "deploy scope for hello") || got != (Credentials{Scheme: "Basic", User: "$hello", Secret: "secret"}) {
		t.Fatalf("refused credentials: %d %s (saw %+v)", resp.StatusCode, body, got)
	}
}

func TestUnknownApp(t *testing.T) {
	s := newTestSite(t, Config{})
	req, _ := http.NewRequest("GET", s.srv.URL+"/kudu/nope/api/deployments", nil)
	req.SetBasicAuth("$nope", "x")
	if resp, body := s.send(req); resp.StatusCode != 404 || !strings.Contains(body, `app \"nope\" does not exist`) {
		t.Fatalf("unknown app: %d %s", resp.StatusCode, body)
	}
}

func TestZipDeployAsync(t *testing.T) {
	s := newTestSite(t, Config{})
	resp, body := s.do("POST", "/api/zipdeploy?isAsync=true&author=Ada&authorEmail=ada@example.com&deployer=GitHub", "PK-zip-bytes")
	if resp.StatusCode != 202 {
		t.Fatalf("async zip deploy: %d %s", resp.StatusCode, body)
	}
	req := <-s.dep.submitted
	art, _ := io.ReadAll(req.Artifact)
	if req.App != "hello" || req.Slot != baton.ProductionSlot || req.Policy != baton.PolicyQueue || string(art) != "PK-zip-bytes" ||
		req.Author != "Ada <ada@example.com>" || req.Message != defaultMessage {
		t.Fatalf("submitted %+v (artifact %q)", req, art)
	}
	res := decodeJSON[Result](t, body)
	loc := resp.Header.Get("Location")
	if loc != s.srv.URL+"/kudu/hello/api/deployments/"+res.ID || resp.Header.Get("SCM-DEPLOYMENT-ID") != res.ID || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("headers %v for %s", resp.Header, res.ID)
	}
	if res.Status != StatusPending || res.QueuePosition != 1 || res.Deployer != "GitHub" || res.AuthorEmail != "ada@example.com" {
		t.Fatalf("result %+v", res)
	}
	// The Location is pollable and reads the same deployment.
	req2, _ := http.NewRequest("GET", loc, nil)
	req2.SetBasicAuth("u", "p")
	resp, body = s.send(req2)
	if got := decodeJSON[Result](t, body); resp.StatusCode != 200 || got.ID != res.ID || got.Deployer != "GitHub" {
		t.Fatalf("poll: %d %s", resp.StatusCode, body)
	}
}

// TestZipDeploySync: the answer waits for the end (woken by Changes) and a
// failed deployment is a 400 with Kudu's Message and the reason.
func TestZipDeploySync(t *testing.T) {
	s := newTestSite(t, Config{})
	type answer struct {
		resp *http.Response
		body string
	}
	done := make(chan answer, 1)
	go func() {
		resp, body := s.do("POST", "/api/zipdeploy", "zip", "Content-Type", "application/x-www-form-urlencoded") // curl --data-binary
		done <- answer{resp, body}
	}()
	<-s.dep.submitted
	d, _ := s.store.Deployment(context.Background(), "d-000000000001")
	now := time.Now()
	d.State, d.Phase, d.StartedAt = baton.StateRunning, baton.PhaseBuilding, &now
	s.store.put(d)
	s.dep.notify() // a change that does not end it: the wait goes on
	d.State, d.FinishedAt, d.Error = baton.StateFailed, &now, "build command failed: exit status 1"
	s.store.put(d)
	s.store.AppendLog(context.Background(), d.ID, "deployment failed: "+d.Error)
	s.dep.notify()
	a := <-done
	body := decodeJSON[struct {
		Message    string
		Deployment Result
	}](t, a.body)
	if a.resp.StatusCode != 400 || !strings.Contains(body.Message, "build command failed") || body.Deployment.Status != StatusFailed {
		t.Fatalf("failed sync deploy: %d %s", a.resp.StatusCode, a.body)
	}
}

// TestZipDeployUnchanged: a zip whose artifact and settings already serve
// is a success for Kudu clients: status 4 at once (sync) or at the first
// poll of the Location (async), naming the deployment that created it,
// whose log gains nothing; force=true deploys it anyway.
func TestZipDeployUnchanged(t *testing.T) {
	s := newTestSite(t, Config{})
	done := time.Now()
	live := s.store.put(baton.Deployment{ID: "d-live", App: "hello", Slot: baton.ProductionSlot, State: baton.StateSucceeded,
		Revision: "hello--000003", StartedAt: &done, FinishedAt: &done})
	s.dep.live = live.ID

	resp, body := s.do("POST", "/api/zipdeploy", "zip")
	<-s.dep.submitted
	res := decodeJSON[Result](t, body)
	if resp.StatusCode != 200 || res.ID != live.ID || res.Status != StatusSuccess || !res.Complete ||
		!strings.Contains(res.StatusText, "Nothing to deploy: hello--000003 is already live in hello/production") {
		t.Fatalf("sync zip deploy of what is live: %d %s", resp.StatusCode, body)
	}
	resp, body = s.do("POST", "/api/zipdeploy?isAsync=true", "zip")
	<-s.dep.submitted
	if loc := resp.Header.Get("Location"); resp.StatusCode != 202 || loc != s.srv.URL+"/kudu/hello/api/deployments/"+live.ID {
		t.Fatalf("async zip deploy of what is live: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if lines, _ := s.store.Log(context.Background(), live.ID, 0); len(lines) != 0 {
		t.Fatalf("the live deployment's log gained %v", lines)
	}
	resp, body = s.do("POST", "/api/zipdeploy?isAsync=true&force=true", "zip")
	if req := <-s.dep.submitted; !req.Force || resp.StatusCode != 202 || decodeJSON[Result](t, body).ID == live.ID {
		t.Fatalf("force=true: %d %s (force %v)", resp.StatusCode, body, req.Force)
	}
	if resp, body := s.do("POST", "/api/zipdeploy?force=maybe", "zip"); resp.StatusCode != 400 {
		t.Fatalf("force=maybe: %d %s", resp.StatusCode, body)
	}
}

func TestConflictNamesHolder(t *testing.T) {
	s := newTestSite(t, Config{Now: func() time.Time { return time.Date(2026, 5, 1, 10, 0, 42, 0, time.UTC) }})
	started := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	holder := baton.Deployment{ID: "d-holder", App: "hello", State: baton.StateRunning, Phase: baton.PhaseBuilding, Author: "alice", StartedAt: &started}
	s.dep.err = &baton.Error{Code: baton.ECONFLICT, Message: "busy", RetryAfterSeconds: 30,
		Conflict: &baton.ConflictDetail{App: "hello", Holder: &holder, QueueLength: 2}}
	resp, raw := s.do("POST", "/api/zipdeploy?on_conflict=fail", "zip")
	if req := <-s.dep.submitted; req.Policy != baton.PolicyFail {
		t.Fatalf("policy %q", req.Policy)
	}
	body := decodeJSON[struct {
		Message string
		Holder  struct {
			ID, Author, Phase string
			RunningSince      time.Time `json:"running_since"`
		}
		QueueLength int `json:"queue_length"`
	}](t, raw)
	for _, want := range []string{"There is a deployment currently in progress", "d-holder", "alice", "phase building", "2026-05-01T10:00:00Z", "(42s)", "2 more queued"} {
		if !strings.Contains(body.Message, want) {
			t.Errorf("Message lacks %q: %s", want, body.Message)
		}
	}
	if resp.StatusCode != 409 || resp.Header.Get("Retry-After") != "30" || body.Holder.ID != "d-holder" || body.Holder.Phase != "building" ||
		!body.Holder.RunningSince.Equal(started) || body.QueueLength != 2 {
		t.Fatalf("409: %d %v\n%s", resp.StatusCode, resp.Header, raw)
	}
}

// TestConflictWordedByPolicySource: a 409 under the app's option
// kudu_on_conflict=fail does not tell the client to drop an on_conflict
// it never sent; it names the option and how to change it.
func TestConflictWordedByPolicySource(t *testing.T) {
	s := newTestSite(t, Config{Policy: func(ctx context.Context, app string) (baton.Policy, error) { return baton.PolicyFail, nil }})
	holder := baton.Deployment{ID: "d-holder", App: "hello", State: baton.StateRunning, Phase: baton.PhaseBuilding}
	s.dep.err = &baton.Error{Code: baton.ECONFLICT, Message: "busy", Conflict: &baton.ConflictDetail{App: "hello", Holder: &holder}}
	_, raw := s.do("POST", "/api/zipdeploy", "zip")
	<-s.dep.submitted
	msg := decodeJSON[struct{ Message string }](t, raw).Message
	if strings.Contains(msg, "without on_conflict=fail") || !strings.Contains(msg, "kudu_on_conflict=fail") ||
		!strings.Contains(msg, "baton apps set hello --kudu-on-conflict queue") {
		t.Errorf("409 under the app option: %s", msg)
	}
	_, raw = s.do("POST", "/api/zipdeploy?on_conflict=fail", "zip")
	<-s.dep.submitted
	if msg := decodeJSON[struct{ Message string }](t, raw).Message; !strings.Contains(msg, "without on_conflict=fail") {
		t.Errorf("409 under the request's on_conflict: %s", msg)
	}
}

func TestOtherRefusalsAreProblems(t *testing.T) {
	s := newTestSite(t, Config{})
	s.dep.err = &baton.Error{Code: baton.EQUEUEFULL, Message: "app \"hello\" already has 100 deployments queued", RetryAfterSeconds: 60}
	resp, body := s.do("POST", "/api/zipdeploy", "zip")
	<-s.dep.submitted
	p := decodeJSON[problem](t, body)
	if resp.StatusCode != 429 || resp.Header.Get("Content-Type") != "application/problem+json" || p.Code != baton.EQUEUEFULL ||
		p.Message != p.Detail || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("queue full: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}

func TestPolicyHook(t *testing.T) {
	s := newTestSite(t, Config{Policy: func(ctx context.Context, app string) (baton.Policy, error) { return baton.PolicyFail, nil }})
	s.do("POST", "/api/zipdeploy?isAsync=true", "zip")
	if req := <-s.dep.submitted; req.Policy != baton.PolicyFail {
		t.Fatalf("without on_conflict: policy %q, want the hook's", req.Policy)
	}
	s.do("POST", "/api/zipdeploy?isAsync=true&on_conflict=queue", "zip")
	if req := <-s.dep.submitted; req.Policy != baton.PolicyQueue {
		t.Fatalf("on_conflict=queue: policy %q", req.Policy)
	}
	if resp, body := s.do("POST", "/api/zipdeploy?on_conflict=later", "zip"); resp.StatusCode != 400 {
		t.Fatalf("bad on_conflict: %d %s", resp.StatusCode, body)
	}
}

func TestPublish(t *testing.T) {
	s := newTestSite(t, Config{})
	for _, tc := range []struct{ query, contentType, want string }{
		{"?type=war", "", "type='war' not supported"},
		{"", "", "type='' not supported"},
		{"?type=zip&path=webapps/ROOT", "", "path is not supported"},
		{"?type=zip", "application/json", "packageUri is not supported"},
	} {
		resp, body := s.do("POST", "/api/publish"+tc.query, `{"packageUri":"https://x/a.zip"}`, "Content-Type", tc.contentType)
		if resp.StatusCode != 400 || decodeJSON[struct{ Message string }](t, body).Message == "" || !strings.Contains(body, tc.want) {
			t.Errorf("publish%s (%s): %d %s", tc.query, tc.contentType, resp.StatusCode, body)
		}
	}
	resp, body := s.do("POST", "/api/publish?type=zip&async=true", "zip")
	req := <-s.dep.submitted
	if res := decodeJSON[Result](t, body); resp.StatusCode != 202 || res.Deployer != oneDeployer || req.Message != oneDeployer {
		t.Fatalf("OneDeploy async: %d %s", resp.StatusCode, body)
	}
}

func TestLatest(t *testing.T) {
	s := newTestSite(t, Config{})
	if resp, body := s.do("GET", "/api/deployments/latest", ""); resp.StatusCode != 404 || !strings.Contains(body, "Deployment 'latest' not found.") {
		t.Fatalf("no deployments: %d %s", resp.StatusCode, body)
	}
	t0 := time.Now()
	early, late := t0.Add(time.Second), t0.Add(2*time.Second)
	s.store.put(baton.Deployment{ID: "d-a", App: "hello", State: baton.StateSucceeded, FinishedAt: &late})
	s.store.put(baton.Deployment{ID: "d-b", App: "hello", State: baton.StateFailed, FinishedAt: &early})
	s.store.put(baton.Deployment{ID: "d-x", App: "other", State: baton.StateQueued})
	resp, body := s.do("GET", "/api/deployments/latest", "")
	if res := decodeJSON[Result](t, body); resp.StatusCode != 200 || res.ID != "d-a" {
		t.Fatalf("latest finished: %d %s", resp.StatusCode, body)
	}
	s.store.put(baton.Deployment{ID: "d-c", App: "hello", State: baton.StateRunning, Phase: baton.PhaseStarting})
	s.store.put(baton.Deployment{ID: "d-d", App: "hello", State: baton.StateQueued})
	resp, body = s.do("GET", "/api/deployments/latest", "")
	if res := decodeJSON[Result](t, body); resp.StatusCode != 202 || res.ID != "d-d" || res.QueuePosition != 1 ||
		!strings.HasSuffix(resp.Header.Get("Location"), "/kudu/hello/api/deployments/latest") {
		t.Fatalf("latest while busy: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body = s.do("GET", "/api/deployments", "")
	list := decodeJSON[[]Result](t, body)
	var ids []string
	for _, r := range list {
		ids = append(ids, r.ID)
	}
	if resp.StatusCode != 200 || strings.Join(ids, " ") != "d-d d-c d-b d-a" {
		t.Fatalf("list: %d %v", resp.StatusCode, ids)
	}
	if resp, _ := s.do("GET", "/api/deployments/d-x", ""); resp.StatusCode != 404 {
		t.Fatalf("another app's deployment: %d", resp.StatusCode)
	}
}

func TestDeleteAndIsDeploying(t *testing.T) {
	s := newTestSite(t, Config{})
	isDeploying := func() string {
		_, body := s.do("GET", "/api/isdeploying", "")
		return decodeJSON[map[string]string](t, body)["value"]
	}
	if v := isDeploying(); v != "False" {
		t.Fatalf("idle isdeploying = %q", v)
	}
	now := time.Now()
	s.store.put(baton.Deployment{ID: "d-done", App: "hello", State: baton.StateSucceeded, FinishedAt: &now})
	s.store.put(baton.Deployment{ID: "d-run", App: "hello", State: baton.StateRunning, Phase: baton.PhaseBuilding})
	if v := isDeploying(); v != "True" {
		t.Fatalf("busy isdeploying = %q", v)
	}
	if resp, body := s.do("DELETE", "/api/deployments/d-run", ""); resp.StatusCode != 409 || !strings.Contains(body, "phase building") {
		t.Fatalf("delete running: %d %s", resp.StatusCode, body)
	}
	if resp, body := s.do("DELETE", "/api/deployments/d-done", ""); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" || !strings.Contains(body, "history") {
		t.Fatalf("delete finished: %d %s", resp.StatusCode, body)
	}
	if resp, _ := s.do("DELETE", "/api/deployments/d-nope", ""); resp.StatusCode != 404 {
		t.Fatalf("delete unknown: %d", resp.StatusCode)
	}
}

func TestLogEntries(t *testing.T) {
	s := newTestSite(t, Config{})
	s.store.put(baton.Deployment{ID: "d-1", App: "hello", State: baton.StateFailed})
	s.store.AppendLog(context.Background(), "d-1", "phase extracting", "deployment failed: artifact is corrupt")
	resp, body := s.do("GET", "/api/deployments/d-1/log", "")
	es := decodeJSON[[]LogEntry](t, body)
	if resp.StatusCode != 200 || len(es) != 2 || es[0].Type != logMessage || es[1].Type != logError ||
		es[1].Message != "deployment failed: artifact is corrupt" || es[0].ID == "" || es[0].LogTime == "" || !strings.Contains(body, `"details_url": null`) {
		t.Fatalf("log: %d %s", resp.StatusCode, body)
	}
}

func TestSettings(t *testing.T) {
	s := newTestSite(t, Config{})
	if resp, body := s.do("GET", "/api/settings", ""); resp.StatusCode != 200 || strings.TrimSpace(body) != "{}" {
		t.Fatalf("settings: %d %s", resp.StatusCode, body)
	}
	if resp, _ := s.do("POST", "/api/settings", `{"A":"1"}`); resp.StatusCode != 501 {
		t.Fatalf("set settings: %d", resp.StatusCode)
	}
	s = newTestSite(t, Config{Settings: func(ctx context.Context, app string) (map[string]string, error) {
		return map[string]string{"GREETING": "hi " + app}, nil
	}})
	if _, body := s.do("GET", "/api/settings", ""); decodeJSON[map[string]string](t, body)["GREETING"] != "hi hello" {
		t.Fatalf("settings hook: %s", body)
	}
}

func TestHostRoute(t *testing.T) {
	s := newTestSite(t, Config{})
	req, _ := http.NewRequest("GET", s.srv.URL+"/api/isdeploying", nil)
	req.Host = "hello.scm.localhost:7070"
	req.SetBasicAuth("$hello", "x")
	if resp, body := s.send(req); resp.StatusCode != 200 || !strings.Contains(body, `"value"`) {
		t.Fatalf("by Host: %d %s", resp.StatusCode, body)
	}
	s.store.put(baton.Deployment{ID: "d-1", App: "hello", State: baton.StateQueued})
	req, _ = http.NewRequest("GET", s.srv.URL+"/api/deployments/d-1", nil)
	req.Host = "hello.scm.localhost:7070"
	req.SetBasicAuth("$hello", "x")
	if _, body := s.send(req); decodeJSON[Result](t, body).URL != "http://hello.scm.localhost:7070/api/deployments/d-1" {
		t.Fatalf("URLs by Host: %s", body)
	}
	req, _ = http.NewRequest("GET", s.srv.URL+"/api/isdeploying", nil)
	req.Host = "hello.localhost:7070"
	if resp, _ := s.send(req); resp.StatusCode != http.StatusTeapot {
		t.Fatalf("other hosts must reach the API: %d", resp.StatusCode)
	}
}

func TestUnimplementedRoute(t *testing.T) {
	s := newTestSite(t, Config{})
	resp, body := s.do("GET", "/api/vfs/site/wwwroot/", "")
	if resp.StatusCode != 404 || !strings.Contains(decodeJSON[struct{ Message string }](t, body).Message, "POST /api/zipdeploy") {
		t.Fatalf("unimplemented: %d %s", resp.StatusCode, body)
	}
}

var _ baton.Deployer = (*fakeDeployer)(nil)

// TestSiteDeployments: Kudu's history is the production slot's artifact
// deployments; settings changes, swaps and other slots' deployments are
// left out, and the deployment whose artifact serves is active even after
// a settings change restarted it as a new revision.
func TestSiteDeployments(t *testing.T) {
	s := newTestSite(t, Config{})
	now := time.Now()
	s.store.put(baton.Deployment{ID: "d-1", App: "hello", Kind: baton.KindDeploy, State: baton.StateSucceeded, FinishedAt: &now, ArtifactDigest: "aaa", Revision: "hello--000001"})
	s.store.put(baton.Deployment{ID: "d-2", App: "hello", Kind: baton.KindDeploy, Slot: "staging", State: baton.StateSucceeded, FinishedAt: &now})
	s.store.put(baton.Deployment{ID: "d-3", App: "hello", Kind: baton.KindConfig, State: baton.StateSucceeded, FinishedAt: &now, ArtifactDigest: "aaa", Revision: "hello--000003"})
	s.store.put(baton.Deployment{ID: "d-4", App: "hello", Kind: baton.KindSwap, State: baton.StateRunning})
	s.store.setLive("hello", "hello--000003", "d-3", "aaa")
	_, body := s.do("GET", "/api/deployments", "")
	list := decodeJSON[[]Result](t, body)
	if len(list) != 1 || list[0].ID != "d-1" || !list[0].Active {
		t.Fatalf("site deployments: %s", body)
	}
	// The swap holds the lock: a deployment would wait for it.
	if _, body := s.do("GET", "/api/isdeploying", ""); !strings.Contains(body, "True") {
		t.Fatalf("isdeploying during a swap: %s", body)
	}
	// Nothing of the site is in progress: latest is the last finished.
	if resp, body := s.do("GET", "/api/deployments/latest", ""); resp.StatusCode != 200 || decodeJSON[Result](t, body).ID != "d-1" {
		t.Fatalf("latest: %d %s", resp.StatusCode, body)
	}
}
