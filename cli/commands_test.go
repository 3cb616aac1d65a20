package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// fakeAPI is a baton API that answers what a test gives it, one handler
// per route pattern, and records nothing else.
type fakeAPI struct {
	*httptest.Server
	mux *http.ServeMux
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{mux: http.NewServeMux()}
	f.Server = httptest.NewServer(f.mux)
	t.Cleanup(f.Close)
	return f
}

// json answers pattern with status and v as JSON.
func (f *fakeAPI) json(pattern string, status int, v any) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	})
}

// problem answers pattern with an RFC 9457 problem; location, when set, is
// sent as the Location of the operation the request started.
func (f *fakeAPI) problem(pattern string, status int, code, detail, location string) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if location != "" {
			w.Header().Set("Location", location)
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "status": status, "code": code, "detail": detail})
	})
}

// sse answers a deployment's log stream with lines, then the end event
// with d; with hold, it keeps the stream open until the client leaves.
func (f *fakeAPI) sse(id string, d baton.Deployment, hold chan<- struct{}, lines ...string) {
	f.mux.HandleFunc("GET /api/v1/deployments/"+id+"/log", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i, l := range lines {
			fmt.Fprintf(w, "id: %d\nevent: log\ndata: %s\n\n", i+1, l)
		}
		w.(http.Flusher).Flush()
		if hold != nil {
			close(hold)
			<-r.Context().Done()
			return
		}
		b, _ := json.Marshal(d)
		fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
	})
}

// run runs the CLI against f and returns stdout, stderr and the exit code.
func (f *fakeAPI) run(ctx context.Context, args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	code := Run(ctx, append([]string{"--url", f.URL, "--token", "baton_test"}, args...), &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// TestExitCodeOfOperationThatRanAndFailed: a traffic set or stabilize that
// ran and failed exited 5 ("refused") because the server answers it with a
// 409; it is exit 3, and a real refusal (the conflict policy, a freeze, a
// full queue, an unusable request) stays exit 5.
func TestExitCodeOfOperationThatRanAndFailed(t *testing.T) {
	f := newFakeAPI(t)
	failed := baton.Deployment{ID: "d-tr", App: "hello", Slot: "production", Kind: baton.KindTraffic, State: baton.StateFailed,
		Params: `{"weights":{"hello--000002":100}}`, Error: "hello--000002 has no healthy instance"}
	f.json("GET /api/v1/deployments/d-tr", 200, failed)
	f.problem("PUT /api/v1/apps/hello/slots/production/traffic", 409, baton.ECONFLICT, "traffic d-tr failed: hello--000002 has no healthy instance", "/api/v1/deployments/d-tr")
	stab := failed
	stab.ID, stab.Kind, stab.Params = "d-st", baton.KindStabilize, `{"revision":""}`
	f.json("GET /api/v1/deployments/d-st", 200, stab)
	f.problem("POST /api/v1/apps/hello/stabilize", 409, baton.ECONFLICT, "stabilize d-st failed", "/api/v1/deployments/d-st")
	f.problem("POST /api/v1/apps/busy/stabilize", 409, baton.ECONFLICT, "hello is busy: deployment d-x runs", "")
	f.problem("POST /api/v1/apps/frozen/stabilize", 423, baton.EFROZEN, "frozen", "")
	f.problem("POST /api/v1/apps/full/stabilize", 429, baton.EQUEUEFULL, "queue full", "")
	f.problem("POST /api/v1/apps/bad/slots/production/deployments", 422, baton.EUNPROCESSABLE, "not an archive", "")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hi"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"traffic set that failed", []string{"traffic", "set", "hello", "hello--000002=100"}, ExitFailed, "traffic change d-tr failed: hello--000002 has no healthy instance"},
		{"stabilize that failed", []string{"stabilize", "hello"}, ExitFailed, "stabilize d-st failed"},
		{"refused by the policy", []string{"stabilize", "busy", "--on-conflict", "fail"}, ExitRefused, "busy"},
		{"frozen", []string{"stabilize", "frozen"}, ExitRefused, "frozen"},
		{"queue full", []string{"stabilize", "full"}, ExitRefused, "queue full"},
		{"unusable upload", []string{"deploy", "bad", dir}, ExitRefused, "not an archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := f.run(context.Background(), tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, want %d; stderr %q does not say %q", code, tt.code, stderr, tt.want)
			}
		})
	}
}

// TestDeployWaitInterrupted: Ctrl-C on deploy --wait left the deployment
// running with no word; it says the deployment goes on, its id, and how to
// follow and cancel it, and exits 130.
func TestDeployWaitInterrupted(t *testing.T) {
	f := newFakeAPI(t)
	queued := baton.Deployment{ID: "d-int", App: "hello", Slot: "production", Kind: baton.KindDeploy, State: baton.StateQueued}
	f.json("POST /api/v1/apps/hello/slots/production/deployments", 202, queued)
	running := queued
	running.State, running.Phase = baton.StateRunning, baton.PhaseBuilding
	f.json("GET /api/v1/deployments/d-int", 200, running)
	streaming := make(chan struct{})
	f.sse("d-int", running, streaming, "phase building")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-streaming; cancel() }() // what Ctrl-C does to the CLI's context
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hi"), 0o644)
	stdout, stderr, code := f.run(ctx, "deploy", "hello", dir, "--wait")
	if code != ExitInterrupted {
		t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", code, ExitInterrupted, stdout, stderr)
	}
	for _, want := range []string{"deployment d-int goes on on the server (running, phase building)", "baton logs -f d-int", "baton deployments cancel d-int"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not say %q", stderr, want)
		}
	}
}

// TestSuccessSaysWhatHappened: swap complete and wait ID printed nothing
// on success; stabilize printed nothing when its log had no matching line.
func TestSuccessSaysWhatHappened(t *testing.T) {
	f := newFakeAPI(t)
	swap := baton.Deployment{ID: "d-sw", App: "hello", Slot: "production", Kind: baton.KindSwap, State: baton.StateSucceeded,
		Params: `{"source":"staging","target":"production","preview":true}`}
	f.json("POST /api/v1/swaps/d-sw/complete", 200, swap)
	dep := baton.Deployment{ID: "d-dep", App: "hello", Slot: "production", Kind: baton.KindDeploy, State: baton.StateSucceeded, Revision: "hello--000002"}
	f.sse("d-dep", dep, nil, "deployment succeeded")
	stab := baton.Deployment{ID: "d-st", App: "hello", Slot: "production", Kind: baton.KindStabilize, State: baton.StateSucceeded, Params: `{"revision":"hello--000002"}`}
	f.json("POST /api/v1/apps/hello/stabilize", 200, stab)
	f.mux.HandleFunc("GET /api/v1/deployments/d-st/log", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "phase switching") })
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"swap", "complete", "d-sw"}, "swap d-sw succeeded: staging ⇄ production (preview)"},
		{[]string{"wait", "d-dep"}, "deployment d-dep succeeded: hello--000002 serves hello/production"},
		{[]string{"stabilize", "hello", "--revision", "hello--000002"}, "stabilize d-st succeeded: keep hello--000002 at 100 %"},
	}
	for _, tt := range tests {
		stdout, stderr, code := f.run(context.Background(), tt.args...)
		if code != 0 || !strings.Contains(stdout, tt.want) {
			t.Errorf("%v: exit %d, stdout %q does not say %q (stderr %q)", tt.args, code, stdout, tt.want, stderr)
		}
	}
}

// TestSmallWordings: "cancelled: cancelled: oops"; an empty --auto-swap-to
// printed "auto swap to -".
func TestSmallWordings(t *testing.T) {
	f := newFakeAPI(t)
	f.json("POST /api/v1/deployments/d-c/cancel", 200, baton.Deployment{ID: "d-c", Kind: baton.KindDeploy, State: baton.StateCancelled, Error: "cancelled: oops"})
	f.json("POST /api/v1/deployments/d-r/cancel", 200, baton.Deployment{ID: "d-r", Kind: baton.KindDeploy, State: baton.StateCancelled, Error: "cancelled by request"})
	f.json("PATCH /api/v1/apps/hello/slots/staging", 200, baton.Slot{App: "hello", Name: "staging"})
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"deployments", "cancel", "d-c", "--reason", "oops"}, "deployment d-c is cancelled: oops\n"},
		{[]string{"deployments", "cancel", "d-r"}, "deployment d-r is cancelled by request\n"},
		{[]string{"slots", "set", "hello", "staging", "--auto-swap-to", ""}, "slot staging of hello: auto swap off\n"},
	}
	for _, tt := range tests {
		stdout, stderr, code := f.run(context.Background(), tt.args...)
		if code != 0 || stdout != tt.want {
			t.Errorf("%v: exit %d, stdout %q, want %q (stderr %q)", tt.args, code, stdout, tt.want, stderr)
		}
	}
	if err := resultError(baton.Deployment{ID: "d-c", State: baton.StateCancelled, Error: "cancelled: oops"}); err == nil || strings.Count(err.Error(), "cancelled") != 1 {
		t.Errorf("resultError = %v, want one 'cancelled'", err)
	}
}

// TestAppsListAndAuditTables: apps list repeated the app's CREATED date on
// its slot rows; the audit table was hundreds of characters wide.
func TestAppsListAndAuditTables(t *testing.T) {
	f := newFakeAPI(t)
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.Local)
	f.json("GET /api/v1/apps", 200, []baton.App{{Name: "hello", CreatedAt: created, Slots: []baton.Slot{{Name: "production", LiveRevision: "hello--000002"}, {Name: "staging"}}}})
	stdout, _, code := f.run(context.Background(), "apps", "list")
	if code != 0 || strings.Count(stdout, "2026-12-01") != 1 || strings.Count(stdout, "hello ") != 1 {
		t.Errorf("apps list, exit %d:\n%s", code, stdout)
	}
	long := strings.Repeat("d-1a2b3c4d5e6f {\"weights\":{\"hello--000012\":80}} ", 8)
	f.json("GET /api/v1/audit", 200, []baton.AuditEntry{{Time: created, Actor: "admin", Action: "traffic", Target: "hello/production", Outcome: "ok", Remote: "127.0.0.1", Detail: long}})
	t.Setenv("COLUMNS", "100")
	stdout, stderr, code := f.run(context.Background(), "audit")
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if n := len([]rune(line)); n > 100 {
			t.Errorf("audit line of %d characters on a 100-column terminal: %q", n, line)
		}
	}
	if code != 0 || !strings.Contains(stderr, "-o json") {
		t.Errorf("audit exit %d, stderr %q does not point at -o json", code, stderr)
	}
	stdout, _, code = f.run(context.Background(), "audit", "-o", "json")
	if code != 0 || !strings.Contains(stdout, `"detail": "`+strings.ReplaceAll(long, `"`, `\"`)) {
		t.Errorf("audit -o json, exit %d, lacks the whole detail:\n%s", code, stdout)
	}
}

// TestDeploymentsListShowsEveryOperation: traffic, stabilize and settings
// rows were blank but for their state; each shows its kind and what it did.
func TestDeploymentsListShowsEveryOperation(t *testing.T) {
	now := time.Now()
	ds := []baton.Deployment{
		{ID: "d-1", Kind: baton.KindTraffic, State: baton.StateSucceeded, Params: `{"weights":{"hello--000013":20,"hello--000012":80}}`, CreatedAt: now},
		{ID: "d-2", Kind: baton.KindStabilize, State: baton.StateSucceeded, Params: `{"revision":""}`, CreatedAt: now},
		{ID: "d-3", Kind: baton.KindConfig, State: baton.StateSucceeded, Params: `{"set":[{"key":"DB_URL","value":"x","sticky":true,"secret":true}],"unset":["OLD"]}`, Revision: "hello--000014", CreatedAt: now},
		{ID: "d-4", Kind: baton.KindSwap, State: baton.StateSucceeded, Params: `{"source":"staging","target":"production"}`, CreatedAt: now},
		{ID: "d-5", Kind: baton.KindRestart, State: baton.StateSucceeded, Params: `{"revision":"hello--000012"}`, CreatedAt: now},
		{ID: "d-6", Kind: baton.KindDeploy, State: baton.StateSucceeded, Message: "fix login\nmore", Commit: "0123456789abcdef-dirty", CreatedAt: now},
	}
	var b bytes.Buffer
	printDeployments(&b, ds, now)
	for _, want := range []string{
		"KIND", "SUMMARY",
		"traffic", "hello--000012 80%, hello--000013 20%",
		"stabilize", "keep the newest healthy revision at 100 %",
		"config", "set DB_URL (sticky, secret); unset OLD",
		"swap", "staging ⇄ production",
		"restart", "restart hello--000012",
		"deploy", "fix login", "0123456789-dirty",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("deployments list lacks %q:\n%s", want, &b)
		}
	}
	if strings.Contains(b.String(), "more") {
		t.Errorf("a message's second line is in the table:\n%s", &b)
	}
}

// TestStatusShowsLiveProvenance: status showed the live revision but not
// its commit, message, author or deploy time; and HEALTHY 2/2 beside
// instances marked crash-looping.
func TestStatusShowsLiveProvenance(t *testing.T) {
	at := time.Date(2026, 12, 6, 9, 30, 0, 0, time.Local)
	st := baton.AppStatus{App: "hello", RevisionMode: "single", Slots: []baton.SlotStatus{
		{Name: "production", Host: "hello.localhost", Revisions: []baton.RevisionStatus{{Name: "hello--000002", Weight: 100, Healthy: 2,
			Instances: []baton.InstanceStatus{{Addr: "127.0.0.1:1", Healthy: true}, {Addr: "127.0.0.1:2", Healthy: true, CrashLooping: true, Restarts: 4}}}}},
		{Name: "staging", Host: "hello-staging.localhost", Revisions: []baton.RevisionStatus{{Name: "hello--000003", Weight: 100, Healthy: 1,
			Instances: []baton.InstanceStatus{{Addr: "127.0.0.1:3", Healthy: true}}}}},
	}}
	live := map[string]baton.Deployment{
		"hello--000002": {ID: "d-2", Kind: baton.KindDeploy, Author: "alice", Commit: "abcdef0123456789", Message: "fix login", FinishedAt: &at},
		"hello--000003": {ID: "d-3", Kind: baton.KindDeploy, Author: "bob", Commit: "99887766554433-dirty", Message: "try", FinishedAt: &at},
	}
	var b bytes.Buffer
	printStatus(&b, st, live, time.Now())
	out := b.String()
	for _, want := range []string{"DEPLOYED", "BY", "alice", "abcdef0123", "fix login", "2026-12-06 09:30:00", "bob", "9988776655-dirty"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "2/2") || !strings.Contains(out, "1/2") {
		t.Errorf("a crash-looping instance counted as healthy:\n%s", out)
	}
}

// TestDirtyTreeProvenance: a deploy from a working tree with uncommitted
// changes recorded the HEAD commit as if it were clean.
func TestDirtyTreeProvenance(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	for _, v := range []string{"GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_SOURCEVERSION", "GIT_COMMIT", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "CI_COMMIT_TITLE", "BUILD_SOURCEVERSIONMESSAGE"} {
		t.Setenv(v, "")
	}
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=Ada", "-c", "user.email=ada@example.com"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("v1"), 0o644)
	git("add", ".")
	git("commit", "-q", "-m", "first")
	head := git("rev-parse", "HEAD")

	var clean, dirty api.DeployOptions
	fillProvenance(&clean, dir)
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("v2, not committed"), 0o644)
	fillProvenance(&dirty, dir)
	if clean.Commit != head {
		t.Errorf("clean tree: commit %q, want %q", clean.Commit, head)
	}
	if dirty.Commit != head+"-dirty" || dirty.Message != "first" || dirty.Author != "Ada" {
		t.Errorf("dirty tree: commit %q message %q author %q, want %q, first, Ada", dirty.Commit, dirty.Message, dirty.Author, head+"-dirty")
	}
}

// TestLogsSince: --since is checked as the server reads it and sent as
// typed; 0s (only what comes from now on) was refused by the CLI while the
// server took it.
func TestLogsSince(t *testing.T) {
	f := newFakeAPI(t)
	var mu sync.Mutex
	var got []string
	sent := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }
	f.mux.HandleFunc("GET /api/v1/apps/hello/logs", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Query().Get("since"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, "[]")
	})
	for _, since := range []string{"0s", "10m", "2026-12-06T16:00:00Z"} {
		if _, stderr, code := f.run(context.Background(), "logs", "hello", "--since", since); code != ExitOK {
			t.Errorf("--since %s: exit %d, stderr %q", since, code, stderr)
		}
	}
	want := []string{"0s", "10m", "2026-12-06T16:00:00Z"}
	if !slices.Equal(sent(), want) {
		t.Errorf("since sent %q, want %q", sent(), want)
	}
	_, stderr, code := f.run(context.Background(), "logs", "hello", "--since", "-5m")
	if code == ExitOK || !strings.Contains(stderr, "give a duration back from now") || len(sent()) != len(want) {
		t.Errorf("--since -5m: exit %d, stderr %q, %d requests; want a refusal that says what to give, and no request", code, stderr, len(sent()))
	}
}

// TestHostsMarkOlderBatons: `baton hosts` marks a host whose proxy sends
// no peer key (an older baton, mid-upgrade), and only that one.
func TestHostsMarkOlderBatons(t *testing.T) {
	f := newFakeAPI(t)
	f.json("GET /api/v1/hosts", 200, []baton.Host{
		{Controller: baton.Controller{ID: "h1", Advertise: "10.0.0.1", Peer: "10.0.0.1:7071", SendsPeerKey: true}, State: baton.HostLive},
		{Controller: baton.Controller{ID: "h2", Advertise: "10.0.0.2", Peer: "10.0.0.2:7071"}, State: baton.HostLive},
	})
	stdout, _, code := f.run(context.Background(), "hosts")
	if code != 0 || strings.Count(stdout, "sends no peer key") != 1 || !strings.Contains(stdout, "10.0.0.2:7071 (sends no peer key: older baton)") {
		t.Errorf("baton hosts, exit %d:\n%s", code, stdout)
	}
}
