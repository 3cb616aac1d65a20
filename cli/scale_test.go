package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// scaleCall is what the fake API saw of one scale request.
type scaleCall struct {
	body  api.ScaleRequest
	query url.Values
}

// TestScaleCommand: `baton scale` sends the slot's new scale with the
// operation's options, says what it queued and how to follow it; with
// --wait it follows the operation to its end and exits with its result;
// usage mistakes and refusals say what to do.
func TestScaleCommand(t *testing.T) {
	f := newFakeAPI(t)
	var mu sync.Mutex
	var calls []scaleCall
	f.mux.HandleFunc("POST /api/v1/apps/{app}/scale", func(w http.ResponseWriter, r *http.Request) {
		var sc scaleCall
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sc.body); err != nil {
			t.Errorf("scale body: %v", err)
		}
		sc.query = r.URL.Query()
		mu.Lock()
		calls = append(calls, sc)
		mu.Unlock()
		if r.PathValue("app") == "nope" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(404)
			json.NewEncoder(w).Encode(map[string]any{"status": 404, "code": baton.ENOTFOUND, "detail": `app nope has no slot "qa"; its slots are production (create one with ` + "`baton slots create nope qa`)"})
			return
		}
		id := "d-sc"
		if sc.body.Instances == 5 {
			id = "d-bad"
		}
		params, _ := baton.EncodeParams(baton.KindScale, baton.ScaleParams{Instances: sc.body.Instances, MaxPerHost: sc.body.MaxPerHost})
		w.Header().Set("Location", "/api/v1/deployments/"+id)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(202)
		json.NewEncoder(w).Encode(baton.Deployment{ID: id, App: r.PathValue("app"), Slot: sc.body.Slot, Kind: baton.KindScale, State: baton.StateQueued, Params: params})
	})
	ok := baton.Deployment{ID: "d-sc", App: "hello", Slot: "staging", Kind: baton.KindScale, State: baton.StateSucceeded, Params: `{"instances":3,"max_per_host":1}`}
	f.sse("d-sc", ok, nil, "phase starting", "scale: 3 instances, at most 1 per host: 1 on h1, 1 on h2, 1 on h3")
	bad := baton.Deployment{ID: "d-bad", App: "hello", Slot: "production", Kind: baton.KindScale, State: baton.StateFailed, Params: `{"instances":5,"max_per_host":1}`,
		Error: "5 instances with at most 1 per host need 5 live hosts, and 3 are live (h1, h2, h3): lower --instances, raise --max-per-host or add a host"}
	f.sse("d-bad", bad, nil, "phase starting")

	last := func() scaleCall {
		mu.Lock()
		defer mu.Unlock()
		if len(calls) == 0 {
			t.Fatal("no scale request reached the server")
		}
		return calls[len(calls)-1]
	}
	stdout, stderr, code := f.run(context.Background(), "scale", "hello", "--slot", "staging", "--instances", "3", "--max-per-host", "1", "-m", "black friday", "--on-conflict", "fail")
	if code != 0 || stdout != "scale d-sc of hello/staging to 3 instances, at most 1 per host is queued; follow it with: baton logs -f d-sc\n" {
		t.Fatalf("scale: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if c := last(); c.body != (api.ScaleRequest{Slot: "staging", Instances: 3, MaxPerHost: 1}) ||
		c.query.Get("on_conflict") != "fail" || c.query.Get("message") != "black friday" {
		t.Fatalf("the server got %+v %v", c.body, c.query)
	}

	// --wait follows the operation: its log, then the outcome.
	stdout, stderr, code = f.run(context.Background(), "scale", "hello", "--slot", "staging", "--instances", "3", "--max-per-host", "1", "--wait")
	if code != 0 || !strings.Contains(stdout, "1 on h1, 1 on h2, 1 on h3") ||
		!strings.Contains(stdout, "scale d-sc succeeded: each revision of hello/staging runs 3 instances, at most 1 per host; where they run: baton status hello") ||
		!strings.Contains(stderr, "scale d-sc of hello/staging to 3 instances, at most 1 per host queued") {
		t.Fatalf("scale --wait: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	_, stderr, code = f.run(context.Background(), "scale", "hello", "--instances", "5", "--max-per-host", "1", "--wait")
	if code != ExitFailed || !strings.Contains(stderr, "scale d-bad failed: 5 instances with at most 1 per host need 5 live hosts") {
		t.Fatalf("a scale that failed: exit %d, stderr %q", code, stderr)
	}
	if c := last(); c.body.Slot != baton.ProductionSlot {
		t.Fatalf("scale without --slot went to slot %q", c.body.Slot)
	}

	// --json: the queued operation.
	stdout, _, code = f.run(context.Background(), "scale", "hello", "--instances", "2", "--json")
	var d baton.Deployment
	if err := json.Unmarshal([]byte(stdout), &d); code != 0 || err != nil || d.ID != "d-sc" || d.Kind != baton.KindScale {
		t.Fatalf("scale --json: exit %d, %q (%v)", code, stdout, err)
	}

	n := len(calls)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"scale", "hello"}, "how many instances? give --instances N (1 to 64), e.g. baton scale hello --instances 3"},
		{[]string{"scale", "hello", "--instances", "0"}, "--instances 0: give from 1 to 64 instances per revision, e.g. --instances 3"},
		{[]string{"scale", "hello", "--instances", "65"}, "--instances 65: give from 1 to 64"},
		{[]string{"scale", "hello", "--instances", "2", "--max-per-host", "-1"}, "--max-per-host -1: give from 1 to 64, or 0 for no cap"},
		{[]string{"scale", "hello", "--instances", "2", "--on-conflict", "maybe"}, "maybe"},
	} {
		_, stderr, code := f.run(context.Background(), tc.args...)
		if code != ExitError || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q does not say %q", tc.args, code, stderr, tc.want)
		}
	}
	if len(calls) != n {
		t.Fatalf("usage mistakes reached the server: %+v", calls[n:])
	}
	_, stderr, code = f.run(context.Background(), "scale", "nope", "--slot", "qa", "--instances", "2")
	if code != ExitError || !strings.Contains(stderr, "error: app nope has no slot \"qa\"; its slots are production (create one with `baton slots create nope qa`)") {
		t.Fatalf("a refused scale: exit %d, stderr %q", code, stderr)
	}
}

// TestHostsDrainCommands: `baton hosts drain|undrain HOST` say what
// happens next; `baton hosts` shows a host an operator asked to drain as
// draining; an unknown host is the server's sentence.
func TestHostsDrainCommands(t *testing.T) {
	f := newFakeAPI(t)
	f.json("POST /api/v1/hosts/h2/drain", 200, baton.Host{Controller: baton.Controller{ID: "h2", Instances: 2, DrainRequested: true}, State: baton.HostLive, Apps: []string{}})
	f.json("POST /api/v1/hosts/h2/undrain", 200, baton.Host{Controller: baton.Controller{ID: "h2"}, State: baton.HostLive, Apps: []string{}})
	f.problem("POST /api/v1/hosts/h9/drain", 404, baton.ENOTFOUND, "no host \"h9\" shares this store; the hosts are: h1, h2 (`baton hosts` lists them)", "")
	f.json("GET /api/v1/hosts", 200, []baton.Host{
		{Controller: baton.Controller{ID: "h1", Advertise: "127.0.0.2", Instances: 3}, State: baton.HostLive, Apps: []string{"hello"}},
		{Controller: baton.Controller{ID: "h2", Advertise: "127.0.0.3", DrainRequested: true}, State: baton.HostLive, Apps: []string{}},
		{Controller: baton.Controller{ID: "h3", Advertise: "127.0.0.4", DrainRequested: true, Silence: time.Minute}, State: baton.HostLost, Apps: []string{}},
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"hosts", "drain", "h2"}, "host h2 is draining (requested): its instances (2 now) move to the other hosts; watch them with: baton hosts; bring it back with: baton hosts undrain h2\n"},
		{[]string{"hosts", "undrain", "h2"}, "host h2 is live: it takes instances again; watch them with: baton hosts\n"},
	} {
		stdout, stderr, code := f.run(context.Background(), tc.args...)
		if code != 0 || stdout != tc.want {
			t.Errorf("%v: exit %d, stdout %q, want %q (stderr %q)", tc.args, code, stdout, tc.want, stderr)
		}
	}
	_, stderr, code := f.run(context.Background(), "hosts", "drain", "h9")
	if code != ExitError || !strings.Contains(stderr, `error: no host "h9" shares this store; the hosts are: h1, h2`) {
		t.Fatalf("drain of an unknown host: exit %d, stderr %q", code, stderr)
	}
	stdout, _, code := f.run(context.Background(), "hosts")
	rows := map[string]string{}
	for _, line := range strings.Split(stdout, "\n") {
		if fs := strings.Fields(line); len(fs) > 0 {
			rows[fs[0]] = line
		}
	}
	if code != 0 || !strings.Contains(rows["h1"], " live ") || !strings.Contains(rows["h2"], " draining (requested) ") ||
		!strings.Contains(rows["h3"], " lost ") || strings.Contains(rows["h3"], "draining") {
		t.Fatalf("hosts, exit %d:\n%s", code, stdout)
	}
	_, stderr, code = f.run(context.Background(), "hosts", "drian", "h2")
	if code != ExitError || !strings.Contains(stderr, `unknown command "drian"`) {
		t.Fatalf("a mistyped hosts subcommand: exit %d, stderr %q", code, stderr)
	}
}

// TestStatusShowsScaleAndHosts: status shows a slot's scale once set and,
// per revision, the hosts its instances run on with how each stands; the
// JSON has both; nothing of it for an app on one host with no scale.
func TestStatusShowsScaleAndHosts(t *testing.T) {
	st := baton.AppStatus{App: "hello", RevisionMode: "single", Slots: []baton.SlotStatus{
		{Name: "production", Host: "hello.localhost", Scale: &baton.Scale{App: "hello", Slot: "production", Instances: 3, MaxPerHost: 1},
			Revisions: []baton.RevisionStatus{{Name: "hello--000003", Weight: 100, Healthy: 1,
				Instances: []baton.InstanceStatus{{Addr: "127.0.0.2:4001", Healthy: true}},
				Hosts: []baton.Placement{
					{Host: "h3", Instances: 1, State: baton.PlacementStarting},
					{Host: "h1", Instances: 1, State: baton.PlacementHealthy},
					{Host: "h2", Instances: 1, State: baton.PlacementHealthy},
				}}}},
		{Name: "staging", Host: "hello-staging.localhost", Revisions: []baton.RevisionStatus{{Name: "hello--000004", Weight: 100,
			Hosts: []baton.Placement{{Host: "h2", Instances: 1, State: baton.PlacementFailed, Message: "address in use"}}}}},
	}}
	var b bytes.Buffer
	printStatus(&b, st, nil, time.Now())
	out := b.String()
	for _, want := range []string{
		"SCALE  production: 3 instances, at most 1 per host\n",
		"HOSTS  production hello--000003: 3 instances: 1 on h1 (healthy), 1 on h2 (healthy), 1 on h3 (starting)\n",
		"HOSTS  staging hello--000004: 1 instance: 1 on h2 (failed: address in use)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SCALE  staging") {
		t.Errorf("status shows a scale for staging, which has none:\n%s", out)
	}

	f := newFakeAPI(t)
	f.json("GET /api/v1/apps/hello/status", 200, st)
	stdout, _, code := f.run(context.Background(), "status", "hello", "-o", "json")
	var got baton.AppStatus
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil {
		t.Fatalf("status -o json: exit %d, %v\n%s", code, err, stdout)
	}
	if sc := got.Slots[0].Scale; sc == nil || sc.Instances != 3 || sc.MaxPerHost != 1 || len(got.Slots[0].Revisions[0].Hosts) != 3 || got.Slots[1].Scale != nil {
		t.Fatalf("status -o json lost the scale or hosts:\n%s", stdout)
	}

	b.Reset()
	st.Slots[0].Scale, st.Slots[0].Revisions[0].Hosts, st.Slots[1].Revisions[0].Hosts = nil, nil, nil
	printStatus(&b, st, nil, time.Now())
	if strings.Contains(b.String(), "SCALE") || strings.Contains(b.String(), "HOSTS") {
		t.Errorf("status of an app with no scale on one host shows placement:\n%s", &b)
	}
}

// TestScaleSummary: the history says what a scale did, and why baton
// placed instances again by itself.
func TestScaleSummary(t *testing.T) {
	for params, want := range map[string]string{
		`{"instances":3,"max_per_host":1}`:                            "3 instances, at most 1 per host",
		`{"instances":1,"max_per_host":0}`:                            "1 instance",
		`{"instances":0,"rebalance":true,"reason":"host h2 drained"}`: "place the instances again: host h2 drained",
	} {
		d := baton.Deployment{ID: "d-1", Kind: baton.KindScale, State: baton.StateSucceeded, Params: params}
		if got := summary(d); got != want {
			t.Errorf("summary of a scale %s = %q, want %q", params, got, want)
		}
	}
	d := baton.Deployment{ID: "d-1", App: "hello", Slot: "production", Kind: baton.KindScale, State: baton.StateSucceeded, Params: `{"instances":2,"max_per_host":0}`}
	if got := succeeded(d); got != "scale d-1 succeeded: 2 instances" {
		t.Errorf("succeeded(scale) = %q", got)
	}
}

// TestWatchPrintsPlacement: `baton status -w` prints a placement event as
// the slot's scale and where each revision's instances run.
func TestWatchPrintsPlacement(t *testing.T) {
	st := baton.AppStatus{App: "hello", Slots: []baton.SlotStatus{{Name: "production",
		Scale: &baton.Scale{Instances: 3, MaxPerHost: 1},
		Revisions: []baton.RevisionStatus{{Name: "hello--000002", Hosts: []baton.Placement{
			{Host: "h1", Instances: 1, State: baton.PlacementHealthy},
			{Host: "h2", Instances: 2, State: baton.PlacementStarting}}}}}}}
	var b strings.Builder
	printEvent(&b, api.AppEvent{Type: "placement", App: "hello", Status: st}, false)
	want := "hello placement: production scale 3 (at most 1 per host); hello--000002 on h1 1 (healthy), h2 2 (starting)\n"
	if got := b.String(); !strings.HasSuffix(got, want) {
		t.Fatalf("placement event printed as %q, want it to end in %q", got, want)
	}
}
