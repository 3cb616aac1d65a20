package coordinator_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// slotsApp creates app with a staging slot, sticky secret DB_URL per slot
// and a non-sticky FEATURE, production on v1 and staging on v2 (dir
// options opts apply to both).
func (b *batonEnv) slotsApp(app string, opts ...func(string)) {
	b.t.Helper()
	ctx := context.Background()
	b.createApp(app, "staging")
	for _, slot := range []string{"production", "staging"} {
		feature := map[string]string{"production": "old", "staging": "new"}[slot]
		d, err := b.c.SetSettings(ctx, app, slot, []baton.Setting{
			{Key: "DB_URL", Value: "postgres://" + slot, Sticky: true, Secret: true},
			{Key: "FEATURE", Value: feature},
		}, "")
		if err != nil {
			b.t.Fatal(err)
		}
		b.succeed(d.ID)
	}
	b.mustDeploy(app, appDir(b.t, "v1", opts...), api.DeployOptions{})
	b.mustDeploy(app, appDir(b.t, "v2", opts...), api.DeployOptions{Slot: "staging"})
}

// setSticky sets sticky settings of a slot and waits for the change.
func (b *batonEnv) setSticky(app, slot string, kv ...string) {
	b.t.Helper()
	var ss []baton.Setting
	for i := 0; i+1 < len(kv); i += 2 {
		ss = append(ss, baton.Setting{Key: kv[i], Value: kv[i+1], Sticky: true})
	}
	d, err := b.c.SetSettings(context.Background(), app, slot, ss, "")
	if err != nil {
		b.t.Fatal(err)
	}
	b.succeed(d.ID)
}

// cancelSwap cancels a swap as `baton swap cancel` does.
func (b *batonEnv) cancelSwap(id string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", "http://"+b.srv.APIAddr()+"/api/v1/swaps/"+id+"/cancel", nil)
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := b.c.HTTP.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		b.t.Fatalf("cancel swap %s: %s", id, resp.Status)
	}
}

// TestScenarioSwapStickySettings: after a swap production serves the
// staged code with production's sticky DB_URL and the staged non-sticky
// FEATURE; staging serves the old production code with staging's DB_URL.
// Under constant load nothing fails, and the new production instances were
// warmed before they got traffic; secrets stay masked.
func TestScenarioSwapStickySettings(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.slotsApp("sw")
	if a := b.ask(host("sw", "")); a.Version != "v1" || a.Settings["DB_URL"] != "postgres://production" || a.Settings["FEATURE"] != "old" {
		t.Fatalf("production before: %+v", a)
	}
	if a := b.ask(host("sw", "staging")); a.Version != "v2" || a.Settings["DB_URL"] != "postgres://staging" || a.Settings["FEATURE"] != "new" {
		t.Fatalf("staging before: %+v", a)
	}
	l := b.startLoad(host("sw", ""), 4)
	eventually(t, 10*time.Second, "load running", func() bool { return l.count("v1") > 20 })
	sw, err := b.c.Swap(ctx, "sw", "staging", "production", false, "")
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(sw.ID)
	eventually(t, 10*time.Second, "load sees v2", func() bool { return l.count("v2") > 20 })
	if _, failures := l.finish(); len(failures) > 0 {
		t.Fatalf("%d failed requests during the swap, first: %s", len(failures), failures[0])
	}
	log, err := b.c.Log(ctx, sw.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"phase warming", "warmed up", "phase switching"} {
		if !strings.Contains(log, want) {
			t.Errorf("swap log lacks %q:\n%s", want, log)
		}
	}
	prod := b.ask(host("sw", ""))
	if prod.Version != "v2" || prod.Settings["DB_URL"] != "postgres://production" || prod.Settings["FEATURE"] != "new" || prod.Slot != "production" {
		t.Fatalf("production after swap: %+v", prod)
	}
	if prod.Warmups < 1 {
		t.Fatalf("production instance served traffic without a warm-up request: %+v", prod)
	}
	stg := b.ask(host("sw", "staging"))
	if stg.Version != "v1" || stg.Settings["DB_URL"] != "postgres://staging" || stg.Settings["FEATURE"] != "old" || stg.Slot != "staging" {
		t.Fatalf("staging after swap: %+v", stg)
	}
	settings, err := b.c.Settings(ctx, "sw", "production")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if strings.Contains(s.Value, "postgres://") {
			t.Fatalf("secret shown in API read: %+v", s)
		}
	}
	// Only the two live instances run: the old ones were stopped.
	eventually(t, 10*time.Second, "old instances stopped", func() bool { return b.instances() == 2 })
	b.noLocks()
}

// TestScenarioSwapWarmupRules: a warm-up path answering a disallowed
// status fails the swap after its attempts, both slots untouched; a
// redirect is not followed.
func TestScenarioSwapWarmupRules(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.slotsApp("wu")
	b.setSticky("wu", "production", "BATON_SWAP_WARMUP_PATH", "/status/503", "BATON_SWAP_WARMUP_STATUSES", "200,202")
	before := b.ask(host("wu", ""))
	sw, err := b.c.Swap(ctx, "wu", "staging", "production", false, "")
	if err != nil {
		t.Fatal(err)
	}
	d := b.waitFinal(sw.ID)
	if d.State != baton.StateFailed || !strings.Contains(d.Error, "failed 5 times") || !strings.Contains(d.Error, "503") {
		t.Fatalf("swap with a failing warm-up: %s %q", d.State, d.Error)
	}
	if after := b.ask(host("wu", "")); after.Version != before.Version || after.PID != before.PID {
		t.Fatalf("production changed by a failed swap: %+v → %+v", before, after)
	}
	b.serves(host("wu", "staging"), "v2")
	eventually(t, 10*time.Second, "the failed swap's instances stopped", func() bool { return b.instances() == 2 })
	b.noLocks()

	b.setSticky("wu", "production", "BATON_SWAP_WARMUP_PATH", "/redirect", "BATON_SWAP_WARMUP_STATUSES", "302")
	sw, err = b.c.Swap(ctx, "wu", "staging", "production", false, "")
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(sw.ID)
	if a := b.ask(host("wu", "")); a.Version != "v2" || a.Redirected != 0 {
		t.Fatalf("after redirect warm-up: %+v (redirect followed %d times)", a, a.Redirected)
	}
}

// TestScenarioSwapCancelInWarming: a swap cancelled while it warms up
// changes nothing and leaves nothing running or held.
func TestScenarioSwapCancelInWarming(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.slotsApp("cw", withManifest(manifest("[warmup]\npaths = [\"/status/503\"]\nstatuses = [200]\nretries = 100\n")))
	before := b.ask(host("cw", ""))
	sw, err := b.c.Swap(ctx, "cw", "staging", "production", false, "")
	if err != nil {
		t.Fatal(err)
	}
	b.waitPhase(sw.ID, baton.PhaseWarming)
	got, err := b.c.Cancel(ctx, sw.ID, "not now")
	if err != nil || got.State != baton.StateCancelled {
		t.Fatalf("cancel in warming: %+v %v", got, err)
	}
	if after := b.ask(host("cw", "")); after.Version != before.Version || after.PID != before.PID {
		t.Fatalf("production changed by a cancelled swap: %+v → %+v", before, after)
	}
	b.serves(host("cw", "staging"), "v2")
	eventually(t, 10*time.Second, "the swap's instances stopped", func() bool { return b.instances() == 2 })
	b.noLocks()
}

// TestScenarioSwapPreview: pause, inspect, cancel → as before; pause,
// complete → swapped. While awaiting, the lock is held.
func TestScenarioSwapPreview(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.slotsApp("pv")

	sw, err := b.c.Swap(ctx, "pv", "staging", "production", true, "")
	if err != nil {
		t.Fatal(err)
	}
	b.waitPhase(sw.ID, baton.PhaseAwaitingCompletion)
	if a := b.ask(host("pv", "staging")); a.Version != "v2" || a.Settings["DB_URL"] != "postgres://production" {
		t.Fatalf("preview: staging host should serve v2 with production's settings: %+v", a)
	}
	b.serves(host("pv", ""), "v1")
	_, err = b.deployErr("pv", appDir(t, "v9"), api.DeployOptions{Policy: baton.PolicyFail})
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "awaiting-completion") {
		t.Fatalf("deploy during preview: %v", err)
	}
	b.cancelSwap(sw.ID)
	if d := b.waitFinal(sw.ID); d.State != baton.StateCancelled {
		t.Fatalf("cancelled preview: %s %s", d.State, d.Error)
	}
	if a := b.ask(host("pv", "staging")); a.Version != "v2" || a.Settings["DB_URL"] != "postgres://staging" {
		t.Fatalf("after cancelled preview, staging: %+v", a)
	}
	if a := b.ask(host("pv", "")); a.Version != "v1" || a.Settings["DB_URL"] != "postgres://production" {
		t.Fatalf("after cancelled preview, production: %+v", a)
	}
	eventually(t, 10*time.Second, "preview instances stopped", func() bool { return b.instances() == 2 })

	sw, err = b.c.Swap(ctx, "pv", "staging", "production", true, "")
	if err != nil {
		t.Fatal(err)
	}
	b.waitPhase(sw.ID, baton.PhaseAwaitingCompletion)
	if _, err := b.c.CompleteSwap(ctx, sw.ID); err != nil {
		t.Fatal(err)
	}
	b.succeed(sw.ID)
	if a := b.ask(host("pv", "")); a.Version != "v2" || a.Settings["DB_URL"] != "postgres://production" {
		t.Fatalf("after completed preview, production: %+v", a)
	}
	if a := b.ask(host("pv", "staging")); a.Version != "v1" || a.Settings["DB_URL"] != "postgres://staging" {
		t.Fatalf("after completed preview, staging: %+v", a)
	}
	// Completing what is not awaiting completion is refused.
	if _, err := b.c.CompleteSwap(ctx, sw.ID); baton.ErrorCode(err) == "" {
		t.Fatal("complete of a finished swap succeeded")
	}
	b.noLocks()
}

// TestScenarioSwapPreviewExpires: a preview left open is reported by status
// as swap_preview_open with the complete and cancel commands; at its
// deadline it is cancelled as `swap cancel` does, and audited.
func TestScenarioSwapPreviewExpires(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.slotsApp("px")
	sw, err := b.swap("px", swapRequest{Source: "staging", Target: "production", Preview: true, PreviewTimeout: "2s"}, "")
	if err != nil {
		t.Fatal(err)
	}
	b.waitPhase(sw.ID, baton.PhaseAwaitingCompletion)
	st, err := b.c.Status(ctx, "px")
	if err != nil {
		t.Fatal(err)
	}
	var open *baton.Conflict
	for i, cf := range st.Conflicts {
		if cf.Code == baton.ConflictSwapPreviewOpen {
			open = &st.Conflicts[i]
		}
	}
	if open == nil || open.Fix != "baton swap complete "+sw.ID || !strings.Contains(open.Message, "baton swap cancel "+sw.ID) {
		t.Fatalf("status during the preview: conflicts %+v, want %s with the complete and cancel commands", st.Conflicts, baton.ConflictSwapPreviewOpen)
	}
	d := b.waitFinal(sw.ID)
	if d.State != baton.StateCancelled || !strings.Contains(d.Error, "preview timeout of 2s") {
		t.Fatalf("expired preview: %s %q, want cancelled by its timeout", d.State, d.Error)
	}
	if took := d.FinishedAt.Sub(*d.PhaseStartedAt); took < 2*time.Second {
		t.Fatalf("the preview ended %s after it opened, before its deadline", took)
	}
	if a := b.ask(host("px", "staging")); a.Version != "v2" || a.Settings["DB_URL"] != "postgres://staging" {
		t.Fatalf("after the expired preview, staging: %+v", a)
	}
	if a := b.ask(host("px", "")); a.Version != "v1" || a.Settings["DB_URL"] != "postgres://production" {
		t.Fatalf("after the expired preview, production: %+v", a)
	}
	b.noLocks()
	if st, _ := b.c.Status(ctx, "px"); len(st.Conflicts) != 0 {
		t.Fatalf("conflicts after the expired preview: %+v", st.Conflicts)
	}
	audit, err := b.c.Audit(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range audit {
		if e.Action == "swap.cancel" && e.Target == sw.ID && e.Actor == "baton" && strings.Contains(e.Detail, "preview expired") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit entry for the expired preview: %+v", audit)
	}
	for _, sr := range []swapRequest{
		{Source: "staging", Target: "production", PreviewTimeout: "3s"},
		{Source: "staging", Target: "production", Preview: true, PreviewTimeout: "soon"},
	} {
		if _, err := b.swap("px", sr, ""); baton.ErrorCode(err) != baton.EINVALID {
			t.Errorf("swap %+v: %v, want invalid", sr, err)
		}
	}
}

// TestScenarioSwapConflictsAndAutoSwap: a swap while a deployment runs is
// refused naming it (fail) or queued (queue); auto-swap follows a staging
// deploy; a slot with nothing live cannot be swapped from.
func TestScenarioSwapConflictsAndAutoSwap(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.slotsApp("as")
	g := newGate(t)
	running := b.deploy("as", appDir(t, "v3", waitsInBuild(g)), api.DeployOptions{Slot: "staging"})
	b.waitPhase(running.ID, baton.PhaseBuilding)
	_, err := b.c.Swap(ctx, "as", "staging", "production", false, baton.PolicyFail)
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), running.ID) {
		t.Fatalf("swap under fail while deploying: %v", err)
	}
	queued, err := b.c.Swap(ctx, "as", "staging", "production", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if queued.State != baton.StateQueued {
		t.Fatalf("swap under queue: %s", queued.State)
	}
	g.open(t)
	b.succeed(queued.ID)
	assertSerial(t, b.history("as"))
	b.serves(host("as", ""), "v3")

	if _, err := b.c.SetAutoSwap(ctx, "as", "staging", "production"); err != nil {
		t.Fatal(err)
	}
	d := b.mustDeploy("as", appDir(t, "v4"), api.DeployOptions{Slot: "staging"})
	log, _ := b.c.Log(ctx, d.ID)
	i := strings.Index(log, baton.AutoSwapPrefix)
	if i < 0 {
		t.Fatalf("deploy log does not name the auto-swap:\n%s", log)
	}
	auto := strings.Fields(log[i+len(baton.AutoSwapPrefix):])[0]
	b.succeed(auto)
	if a := b.ask(host("as", "")); a.Version != "v4" || a.Settings["DB_URL"] != "postgres://production" {
		t.Fatalf("production after auto-swap: %+v", a)
	}
	b.serves(host("as", "staging"), "v3")

	b.createApp("empty", "staging")
	sw, err := b.c.Swap(ctx, "empty", "staging", "production", false, "")
	if err == nil {
		if d := b.waitFinal(sw.ID); d.State != baton.StateFailed || !strings.Contains(d.Error, "no live revision") {
			t.Fatalf("swap from an empty slot: %s %q", d.State, d.Error)
		}
	} else if !strings.Contains(baton.ErrorMessage(err), "no live revision") {
		t.Fatalf("swap from an empty slot: %v", err)
	}
}
