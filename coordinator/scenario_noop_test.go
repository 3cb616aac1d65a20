package coordinator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/artifact"
)

// TestScenarioRedeployOfLiveIsNoop: deploying the folder that is live
// again records no deployment and says so (200 with the deployment that
// created the live revision); an Idempotency-Key repeat of a no-op gets
// the same answer, even forced; Force deploys it as a new revision; the
// same folder to another slot deploys; another artifact deploys.
func TestScenarioRedeployOfLiveIsNoop(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	b.createApp("same", "staging")
	dir := appDir(t, "v1")
	first := b.mustDeploy("same", dir, api.DeployOptions{})
	if first.Revision != "same--000001" {
		t.Fatalf("first revision: %s", first.Revision)
	}
	noop := "same--000001 is already live in same/production with this artifact and these settings; nothing to do"
	for _, o := range []api.DeployOptions{{}, {Message: "again", Commit: "feedbeef"}} {
		res, err := b.deployErr("same", dir, o)
		if err != nil || !res.Unchanged || res.ID != first.ID || res.Revision != "same--000001" ||
			!strings.Contains(res.Detail, noop) || !strings.Contains(res.Detail, "force=true") {
			t.Fatalf("deploy %+v of what is live: %+v %v", o, res, err)
		}
	}
	if ds := b.history("same"); len(ds) != 1 {
		t.Fatalf("the no-ops recorded deployments: %+v", ds)
	}

	// The API: 200 (not 202) with the deployment that created it.
	var body bytes.Buffer
	if err := artifact.Pack(dir, &body); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+b.srv.APIAddr()+"/api/v1/apps/same/slots/production/deployments", &body)
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := b.c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res api.DeployResult
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !res.Unchanged || res.ID != first.ID || res.State != baton.StateSucceeded ||
		resp.Header.Get("Location") != "/api/v1/deployments/"+first.ID {
		t.Fatalf("POST of what is live: %d %v %+v %v", resp.StatusCode, resp.Header, res, err)
	}
	for _, o := range []api.DeployOptions{{IdempotencyKey: "ci-1"}, {IdempotencyKey: "ci-1", Force: true}} {
		res, err := b.deployErr("same", dir, o)
		if err != nil || !res.Unchanged || res.ID != first.ID {
			t.Fatalf("deploy %+v: %+v %v", o, res, err)
		}
	}
	if ds := b.history("same"); len(ds) != 1 {
		t.Fatalf("the no-ops recorded deployments: %+v", ds)
	}

	forced := b.mustDeploy("same", dir, api.DeployOptions{Force: true})
	if forced.Revision != "same--000002" {
		t.Fatalf("forced: %+v", forced)
	}
	if res, err := b.deployErr("same", dir, api.DeployOptions{}); err != nil || !res.Unchanged ||
		!strings.Contains(res.Detail, "same--000002 is already live in same/production") {
		t.Fatalf("deploy after force: %+v %v", res, err)
	}
	stg := b.mustDeploy("same", dir, api.DeployOptions{Slot: "staging"})
	if res, err := b.deployErr("same", dir, api.DeployOptions{Slot: "staging"}); err != nil || !res.Unchanged || res.ID != stg.ID ||
		!strings.Contains(res.Detail, "same--000003 is already live in same/staging") {
		t.Fatalf("deploy to staging again: %+v %v", res, err)
	}
	b.mustDeploy("same", appDir(t, "v2"), api.DeployOptions{})
	if ds := b.history("same"); len(ds) != 4 {
		t.Fatalf("want 4 deployments (v1, v1 forced, v1 to staging, v2): %+v", ds)
	}
	// While something is queued or running, the same folder is not a
	// no-op: what is queued would change what serves.
	g := newGate(t)
	held := b.deploy("same", appDir(t, "v3", waitsInBuild(g)), api.DeployOptions{})
	b.waitPhase(held.ID, baton.PhaseBuilding)
	again, err := b.deployErr("same", appDir(t, "v2"), api.DeployOptions{})
	if err != nil || again.Unchanged {
		t.Fatalf("v2 while v3 deploys: %+v %v, want queued", again, err)
	}
	g.open(t)
	b.succeed(held.ID)
	b.succeed(again.ID)
	b.serves(host("same", ""), "v2")
}

// TestScenarioRedeployAfterSettingsChange: the same folder deploys again
// when the settings a new revision would carry differ from the live
// revision's (it was swapped in from a slot with other settings), and
// after a settings change that did not go live (its restart was
// cancelled), for a setting that travels with the revision and for a
// sticky one; after each, the same folder is a no-op again.
func TestScenarioRedeployAfterSettingsChange(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	servesWith := func(app, key, value string) {
		t.Helper()
		if got := b.ask(host(app, "")).Settings; got[key] != value {
			t.Fatalf("%s runs with settings %v, want %s=%q", app, got, key, value)
		}
	}
	redeploys := func(app, dir string) {
		t.Helper()
		before := len(b.history(app))
		res, err := b.deployErr(app, dir, api.DeployOptions{})
		if err != nil || res.Unchanged {
			t.Fatalf("the same folder did not deploy: %+v %v", res, err)
		}
		b.succeed(res.ID)
		if n := len(b.history(app)); n != before+1 {
			t.Fatalf("%d deployments, want %d", n, before+1)
		}
		if res, err := b.deployErr(app, dir, api.DeployOptions{}); err != nil || !res.Unchanged || res.ID != b.history(app)[0].ID {
			t.Fatalf("the same folder once more: %+v %v, want unchanged", res, err)
		}
	}

	b.createApp("sw", "staging")
	op, err := b.c.SetSettings(ctx, "sw", "staging", []baton.Setting{{Key: "FEATURE", Value: "blue"}}, baton.PolicyQueue)
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(op.ID)
	sw := appDir(t, "v1")
	b.mustDeploy("sw", sw, api.DeployOptions{Slot: "staging"})
	swap, err := b.c.Swap(ctx, "sw", "staging", baton.ProductionSlot, false, baton.PolicyQueue)
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(swap.ID)
	servesWith("sw", "FEATURE", "blue")
	redeploys("sw", sw)
	servesWith("sw", "FEATURE", "")

	b.createApp("cfg")
	g := newGate(t)
	g.open(t)
	dir := appDir(t, "v1", listensAfter(g))
	b.mustDeploy("cfg", dir, api.DeployOptions{})
	for _, s := range []baton.Setting{{Key: "FEATURE", Value: "on"}, {Key: "TIER", Value: "gold", Sticky: true}} {
		if err := os.Remove(string(g)); err != nil {
			t.Fatal(err)
		}
		op, err := b.c.SetSettings(ctx, "cfg", baton.ProductionSlot, []baton.Setting{s}, baton.PolicyQueue)
		if err != nil {
			t.Fatal(err)
		}
		b.waitPhase(op.ID, baton.PhaseStarting)
		if _, err := b.c.Cancel(ctx, op.ID, "test"); err != nil {
			t.Fatal(err)
		}
		if d := b.waitFinal(op.ID); d.State != baton.StateCancelled {
			t.Fatalf("settings change %s: %s %s", op.ID, d.State, d.Error)
		}
		g.open(t)
		servesWith("cfg", s.Key, "")
		redeploys("cfg", dir)
		servesWith("cfg", s.Key, s.Value)
	}
}

// TestScenarioSettingsChange: a settings change restarts what serves the
// slot with the new environment, without a failed request; unsetting
// removes it; a secret never shows in reads; a change to a slot with
// nothing live only records it.
func TestScenarioSettingsChange(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("st", "staging")
	b.mustDeploy("st", appDir(t, "v1"), api.DeployOptions{})
	l := b.startLoad(host("st", ""), 2)
	op, err := b.c.SetSettings(ctx, "st", baton.ProductionSlot, []baton.Setting{
		{Key: "COLOR", Value: "red"}, {Key: "TOKEN", Value: "s3cret", Secret: true}}, "")
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(op.ID)
	if a := b.ask(host("st", "")); a.Settings["COLOR"] != "red" || a.Settings["TOKEN"] != "s3cret" || a.Version != "v1" {
		t.Fatalf("after the change: %+v", a)
	}
	eventually(t, 10*time.Second, "load sees the new instance", func() bool { return l.count("v1") > 20 })
	if _, failures := l.finish(); len(failures) > 0 {
		t.Fatalf("%d failed requests during the settings change, first: %s", len(failures), failures[0])
	}
	ss, err := b.c.Settings(ctx, "st", baton.ProductionSlot)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if strings.Contains(s.Value, "s3cret") {
			t.Fatalf("secret shown in API read: %+v", s)
		}
	}
	op, err = b.c.UnsetSetting(ctx, "st", baton.ProductionSlot, "COLOR", "")
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(op.ID)
	if a := b.ask(host("st", "")); a.Settings["COLOR"] != "" || a.Settings["TOKEN"] != "s3cret" {
		t.Fatalf("after unset: %+v", a)
	}
	// Nothing live in staging: recorded, used by the next deployment.
	op, err = b.c.SetSettings(ctx, "st", "staging", []baton.Setting{{Key: "COLOR", Value: "blue"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(op.ID)
	b.mustDeploy("st", appDir(t, "s1"), api.DeployOptions{Slot: "staging"})
	if a := b.ask(host("st", "staging")); a.Settings["COLOR"] != "blue" {
		t.Fatalf("staging: %+v", a)
	}
	eventually(t, 10*time.Second, "replaced instances stopped", func() bool { return b.instances() == 2 })
}
