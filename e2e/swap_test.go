package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// helloAnswer is the example app's JSON answer.
type helloAnswer struct {
	Revision   string            `json:"revision"`
	Slot       string            `json:"slot"`
	Version    string            `json:"version"`
	PID        int               `json:"pid"`
	Served     int               `json:"served"`
	Warmups    int               `json:"warmups"`
	Redirected int               `json:"redirected"`
	Settings   map[string]string `json:"settings"`
}

func ask(t testing.TB, p *proxyClient, host string) helloAnswer {
	t.Helper()
	status, body, err := p.get(host, "/")
	if err != nil || status != 200 {
		t.Fatalf("GET %s: %d %s %v", host, status, body, err)
	}
	var a helloAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("GET %s: %v in %s", host, err, body)
	}
	return a
}

// slotsApp creates app with a staging slot, sticky DB_URL per slot and a
// non-sticky FEATURE, production on v1 and staging on v2.
func slotsApp(t testing.TB, b *batonProc, app string) {
	t.Helper()
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSlot(ctx, app, "staging"); err != nil {
		t.Fatal(err)
	}
	for slot, feature := range map[string]string{"production": "old", "staging": "new"} {
		d, err := c.SetSettings(ctx, app, slot, []baton.Setting{
			{Key: "DB_URL", Value: "postgres://" + slot, Sticky: true, Secret: true},
			{Key: "FEATURE", Value: feature},
		}, "")
		if err != nil {
			t.Fatal(err)
		}
		waitFinal(t, c, d.ID)
	}
	mustSucceed(t, c, app, appDir(t, "v1"))
	d := waitFinal(t, c, deploy(t, c, app, appDir(t, "v2"), api.DeployOptions{Slot: "staging"}).ID)
	if d.State != baton.StateSucceeded {
		t.Fatalf("staging deploy: %s %s", d.State, d.Error)
	}
}

// TestSwapStickySettings: after a swap production serves the staged code
// with production's sticky DB_URL and the staged non-sticky FEATURE; staging
// serves the old production code with staging's DB_URL. Under constant load
// nothing fails, and the new production instances were warmed before they
// got traffic.
func TestSwapStickySettings(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	slotsApp(t, b, "sw")
	p := newProxyClient(b.proxyAddr)
	if a := ask(t, p, "sw.localhost"); a.Version != "v1" || a.Settings["DB_URL"] != "postgres://production" || a.Settings["FEATURE"] != "old" {
		t.Fatalf("production before: %+v", a)
	}
	if a := ask(t, p, "sw-staging.localhost"); a.Version != "v2" || a.Settings["DB_URL"] != "postgres://staging" || a.Settings["FEATURE"] != "new" {
		t.Fatalf("staging before: %+v", a)
	}
	l := startLoad(t, p, "sw.localhost", 8)
	eventually(t, 10*time.Second, "load running", func() bool { return l.count("v1") > 20 })
	out, code := runCLI(t, b, "swap", "sw", "--from", "staging", "--wait")
	if code != 0 {
		t.Fatalf("swap: exit %d\n%s", code, out)
	}
	for _, want := range []string{"phase warming", "warmed up", "phase switching"} {
		if !strings.Contains(out, want) {
			t.Errorf("swap output lacks %q:\n%s", want, out)
		}
	}
	eventually(t, 10*time.Second, "load sees v2", func() bool { return l.count("v2") > 20 })
	_, failures := l.finish()
	if len(failures) > 0 {
		t.Fatalf("%d failed requests during the swap, first: %s", len(failures), failures[0])
	}
	prod := ask(t, p, "sw.localhost")
	if prod.Version != "v2" || prod.Settings["DB_URL"] != "postgres://production" || prod.Settings["FEATURE"] != "new" || prod.Slot != "production" {
		t.Fatalf("production after swap: %+v", prod)
	}
	if prod.Warmups < 1 {
		t.Fatalf("production instance served traffic without a warm-up request: %+v", prod)
	}
	stg := ask(t, p, "sw-staging.localhost")
	if stg.Version != "v1" || stg.Settings["DB_URL"] != "postgres://staging" || stg.Settings["FEATURE"] != "old" || stg.Slot != "staging" {
		t.Fatalf("staging after swap: %+v", stg)
	}
	// The secret stays masked in API reads.
	settings, err := c.Settings(context.Background(), "sw", "production")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if strings.Contains(s.Value, "postgres://") {
			t.Fatalf("secret shown in API read: %+v", s)
		}
	}
}

// TestSwapPreview: pause, inspect, complete; and pause, cancel → as before.
func TestSwapPreview(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	slotsApp(t, b, "pv")
	p := newProxyClient(b.proxyAddr)

	sw, err := c.Swap(ctx, "pv", "staging", "production", true, "")
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, c, sw.ID, baton.PhaseAwaitingCompletion)
	a := ask(t, p, "pv-staging.localhost")
	if a.Version != "v2" || a.Settings["DB_URL"] != "postgres://production" {
		t.Fatalf("preview: staging host should serve v2 with production's settings: %+v", a)
	}
	if a := ask(t, p, "pv.localhost"); a.Version != "v1" {
		t.Fatalf("production during preview: %+v", a)
	}
	// While awaiting, the lock is held: a fail-policy deploy is refused.
	if _, err := deployErr(c, "pv", appDir(t, "v9"), api.DeployOptions{Policy: baton.PolicyFail}); baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "awaiting-completion") {
		t.Fatalf("deploy during preview: %v", err)
	}
	if out, code := runCLI(t, b, "swap", "cancel", sw.ID); code != 0 {
		t.Fatalf("swap cancel: %d\n%s", code, out)
	}
	if a := ask(t, p, "pv-staging.localhost"); a.Version != "v2" || a.Settings["DB_URL"] != "postgres://staging" {
		t.Fatalf("after cancelled preview, staging: %+v", a)
	}
	if a := ask(t, p, "pv.localhost"); a.Version != "v1" || a.Settings["DB_URL"] != "postgres://production" {
		t.Fatalf("after cancelled preview, production: %+v", a)
	}

	sw, err = c.Swap(ctx, "pv", "staging", "production", true, "")
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, c, sw.ID, baton.PhaseAwaitingCompletion)
	if out, code := runCLI(t, b, "swap", "complete", sw.ID); code != 0 {
		t.Fatalf("swap complete: %d\n%s", code, out)
	}
	if a := ask(t, p, "pv.localhost"); a.Version != "v2" || a.Settings["DB_URL"] != "postgres://production" {
		t.Fatalf("after completed preview, production: %+v", a)
	}
	if a := ask(t, p, "pv-staging.localhost"); a.Version != "v1" || a.Settings["DB_URL"] != "postgres://staging" {
		t.Fatalf("after completed preview, staging: %+v", a)
	}
}

// TestSwapConflictsAndAutoSwap: a swap while a deployment runs is queued
// (queue) or refused naming it (fail); auto-swap follows a staging deploy.
func TestSwapConflictsAndAutoSwap(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	slotsApp(t, b, "as")
	g := newGate(t)
	running := deploy(t, c, "as", appDir(t, "v3", buildWaitsFor(g)), api.DeployOptions{Slot: "staging"})
	waitPhase(t, c, running.ID, baton.PhaseBuilding)
	_, err := c.Swap(ctx, "as", "staging", "production", false, baton.PolicyFail)
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), running.ID) {
		t.Fatalf("swap under fail while deploying: %v", err)
	}
	queued, err := c.Swap(ctx, "as", "staging", "production", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if queued.State != baton.StateQueued {
		t.Fatalf("swap under queue: %s", queued.State)
	}
	g.open(t)
	if d := waitFinal(t, c, queued.ID); d.State != baton.StateSucceeded {
		t.Fatalf("queued swap: %s %s", d.State, d.Error)
	}
	ds, _ := c.Deployments(ctx, "as", 50)
	assertSerial(t, ds)
	p := newProxyClient(b.proxyAddr)
	if a := ask(t, p, "as.localhost"); a.Version != "v3" {
		t.Fatalf("production after queued swap: %+v", a)
	}

	// Auto-swap: a deploy into staging swaps into production; deploy --wait follows it.
	if _, err := c.SetAutoSwap(ctx, "as", "staging", "production"); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, b, "deploy", "as", appDir(t, "v4"), "--slot", "staging", "--wait")
	if code != 0 || !strings.Contains(out, baton.AutoSwapPrefix) {
		t.Fatalf("deploy with auto-swap: %d\n%s", code, out)
	}
	if a := ask(t, p, "as.localhost"); a.Version != "v4" || a.Settings["DB_URL"] != "postgres://production" {
		t.Fatalf("production after auto-swap: %+v", a)
	}
	if a := ask(t, p, "as-staging.localhost"); a.Version != "v3" {
		t.Fatalf("staging after auto-swap: %+v", a)
	}
}

// TestSwapPreviewExpires: a preview left open (--preview-timeout 3s) is
// reported by status as conflict swap_preview_open with the complete and
// cancel commands; at its deadline it is cancelled as `swap cancel` does
// (the source slot serves its own settings again, nothing is held), and
// the audit log says so.
func TestSwapPreviewExpires(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	slotsApp(t, b, "px")
	p := newProxyClient(b.proxyAddr)

	out, code := runCLI(t, b, "swap", "px", "--from", "staging", "--preview", "--preview-timeout", "3s")
	if code != 0 {
		t.Fatalf("swap --preview-timeout: %d\n%s", code, out)
	}
	id := strings.Fields(strings.TrimPrefix(out, "swap "))[0]
	waitPhase(t, c, id, baton.PhaseAwaitingCompletion)
	st, err := c.Status(ctx, "px")
	if err != nil {
		t.Fatal(err)
	}
	var open *baton.Conflict
	for i, cf := range st.Conflicts {
		if cf.Code == baton.ConflictSwapPreviewOpen {
			open = &st.Conflicts[i]
		}
	}
	if open == nil || open.Fix != "baton swap complete "+id || !strings.Contains(open.Message, "baton swap cancel "+id) {
		t.Fatalf("status during the preview: conflicts %+v, want %s with the complete and cancel commands", st.Conflicts, baton.ConflictSwapPreviewOpen)
	}
	if out, code := runCLI(t, b, "status", "px", "--check"); code != 2 || !strings.Contains(out, baton.ConflictSwapPreviewOpen) {
		t.Fatalf("status --check during the preview: %d\n%s", code, out)
	}

	d := waitFinal(t, c, id)
	if d.State != baton.StateCancelled || !strings.Contains(d.Error, "preview timeout of 3s") {
		t.Fatalf("expired preview: %s %q, want cancelled by its timeout", d.State, d.Error)
	}
	if took := d.FinishedAt.Sub(*d.PhaseStartedAt); took < 3*time.Second {
		t.Fatalf("the preview ended %s after it opened, before its deadline", took)
	}
	if a := ask(t, p, "px-staging.localhost"); a.Version != "v2" || a.Settings["DB_URL"] != "postgres://staging" {
		t.Fatalf("after the expired preview, staging: %+v", a)
	}
	if a := ask(t, p, "px.localhost"); a.Version != "v1" || a.Settings["DB_URL"] != "postgres://production" {
		t.Fatalf("after the expired preview, production: %+v", a)
	}
	noLocks(t, c)
	if st, _ := c.Status(ctx, "px"); len(st.Conflicts) != 0 {
		t.Fatalf("conflicts after the expired preview: %+v", st.Conflicts)
	}
	audit, err := c.Audit(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range audit {
		if e.Action == "swap.cancel" && e.Target == id && e.Actor == "baton" && strings.Contains(e.Detail, "preview expired") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit entry for the expired preview: %+v", audit)
	}
	// A timeout without a preview is refused.
	if _, code := runCLI(t, b, "swap", "px", "--from", "staging", "--preview-timeout", "3s"); code != 1 {
		t.Fatalf("--preview-timeout without --preview: exit %d", code)
	}
	if _, err := c.SwapWith(ctx, "px", baton.SwapParams{Source: "staging", Target: "production", Preview: true, PreviewTimeout: "soon"}, ""); baton.ErrorCode(err) != baton.EINVALID {
		t.Fatalf("bad preview_timeout: %v", err)
	}
}
