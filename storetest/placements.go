package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// appLease takes app's lease, the fence of a scale change.
func appLease(t testing.TB, s baton.Store, app string) baton.Fence {
	t.Helper()
	l := must(s.AcquireLease(context.Background(), baton.AppLeaseKey(app), "tester", time.Minute)).on(t)
	return baton.Fence{Key: l.Key, Token: l.Token}
}

// placement is a starting placement of n instances.
func placement(app, slot, revision, host string, n int) baton.Placement {
	return baton.Placement{App: app, Slot: slot, Revision: revision, Host: host, Instances: n, State: baton.PlacementStarting}
}

// described lists placements as "app/slot/revision@host n state message",
// in the order given, for comparisons whose failures read.
func described(ps []baton.Placement) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = fmt.Sprintf("%s/%s/%s@%s %d %s %s", p.App, p.Slot, p.Revision, p.Host, p.Instances, p.State, p.Message)
	}
	return out
}

func wantPlacements(t testing.TB, s baton.Store, f baton.PlacementFilter, want ...string) []baton.Placement {
	t.Helper()
	ps := must(s.Placements(context.Background(), f)).on(t)
	if ps == nil {
		t.Fatalf("Placements(%+v) = nil, want an empty list", f)
	}
	if got := described(ps); !slices.Equal(got, want) {
		t.Fatalf("Placements(%+v) =\n%q\nwant\n%q", f, got, want)
	}
	return ps
}

func generation(t testing.TB, s baton.Store, app string) int64 {
	t.Helper()
	return must(s.App(context.Background(), app)).on(t).RoutingGeneration
}

// testScale: a slot's scale is set under the app's lease and read back,
// zero until set; stale fences and unknown apps and slots are refused.
func testScale(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "sc")).on(t)
	must(s.CreateSlot(ctx, "sc", "staging")).on(t)
	if got := must(s.Scale(ctx, "sc", baton.ProductionSlot)).on(t); got != (baton.Scale{App: "sc", Slot: baton.ProductionSlot}) {
		t.Fatalf("scale never set = %+v, want zero", got)
	}
	f := appLease(t, s, "sc")
	must(0, s.SetScale(ctx, f, baton.Scale{App: "sc", Slot: baton.ProductionSlot, Instances: 3, MaxPerHost: 2})).on(t)
	must(0, s.SetScale(ctx, f, baton.Scale{App: "sc", Slot: "staging", Instances: 1})).on(t)
	must(0, s.SetScale(ctx, f, baton.Scale{App: "sc", Slot: baton.ProductionSlot, Instances: 4, MaxPerHost: 1})).on(t)
	if got, want := must(s.Scale(ctx, "sc", baton.ProductionSlot)).on(t), (baton.Scale{App: "sc", Slot: baton.ProductionSlot, Instances: 4, MaxPerHost: 1}); got != want {
		t.Fatalf("scale after a change = %+v, want %+v", got, want)
	}
	if got, want := must(s.Scale(ctx, "sc", "staging")).on(t), (baton.Scale{App: "sc", Slot: "staging", Instances: 1}); got != want {
		t.Fatalf("staging scale = %+v, want %+v", got, want)
	}

	stale := baton.Fence{Key: f.Key, Token: f.Token - 1}
	if err := s.SetScale(ctx, stale, baton.Scale{App: "sc", Slot: baton.ProductionSlot, Instances: 9}); !errors.Is(err, baton.ErrStaleToken) {
		t.Fatalf("SetScale with a stale fence: %v, want ErrStaleToken", err)
	}
	if got := must(s.Scale(ctx, "sc", baton.ProductionSlot)).on(t); got.Instances != 4 {
		t.Fatalf("a stale SetScale changed the scale: %+v", got)
	}
	wantCode(t, s.SetScale(ctx, f, baton.Scale{App: "sc", Slot: "nope", Instances: 1}), baton.ENOTFOUND)
	// A lease of an app that does not exist fences nothing that exists.
	ghost := appLease(t, s, "ghost")
	wantCode(t, s.SetScale(ctx, ghost, baton.Scale{App: "ghost", Slot: baton.ProductionSlot, Instances: 1}), baton.ENOTFOUND)
}

// testSetPlacements: SetPlacements replaces one revision's placements in
// a slot, leaves the others, keeps State and Message as given, and
// advances the routing generation; what it refuses changes nothing.
func testSetPlacements(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "pl")).on(t)
	must(s.CreateSlot(ctx, "pl", "staging")).on(t)
	prod := baton.ProductionSlot
	gen := generation(t, s, "pl")
	before := time.Now().Add(-time.Hour)

	healthy := placement("pl", prod, "r1", "h2", 1)
	healthy.State, healthy.Message = baton.PlacementHealthy, "kept as given"
	must(0, s.SetPlacements(ctx, "pl", prod, "r1", []baton.Placement{placement("pl", prod, "r1", "h1", 2), healthy})).on(t)
	must(0, s.SetPlacements(ctx, "pl", prod, "r2", []baton.Placement{placement("pl", prod, "r2", "h1", 1)})).on(t)
	must(0, s.SetPlacements(ctx, "pl", "staging", "r1", []baton.Placement{placement("pl", "staging", "r1", "h3", 1)})).on(t)
	if g := generation(t, s, "pl"); g != gen+3 {
		t.Fatalf("routing generation after 3 SetPlacements = %d, want %d", g, gen+3)
	}
	ps := wantPlacements(t, s, baton.PlacementFilter{App: "pl"},
		"pl/production/r1@h1 2 starting ",
		"pl/production/r1@h2 1 healthy kept as given",
		"pl/production/r2@h1 1 starting ",
		"pl/staging/r1@h3 1 starting ")
	for _, p := range ps {
		if p.UpdatedAt.Before(before) || p.UpdatedAt.After(time.Now().Add(time.Hour)) {
			t.Fatalf("placement %s@%s updated at %v, want about now", p.Revision, p.Host, p.UpdatedAt)
		}
	}

	// Replacing r1 in production moves it off h2 onto h3 and touches
	// neither r2 nor r1 in staging.
	must(0, s.SetPlacements(ctx, "pl", prod, "r1", []baton.Placement{placement("pl", prod, "r1", "h1", 1), placement("pl", prod, "r1", "h3", 2)})).on(t)
	wantPlacements(t, s, baton.PlacementFilter{App: "pl"},
		"pl/production/r1@h1 1 starting ",
		"pl/production/r1@h3 2 starting ",
		"pl/production/r2@h1 1 starting ",
		"pl/staging/r1@h3 1 starting ")
	// An empty list removes them all, and still advances the generation.
	must(0, s.SetPlacements(ctx, "pl", prod, "r2", nil)).on(t)
	wantPlacements(t, s, baton.PlacementFilter{App: "pl", Revision: "r2"})
	st := must(s.RoutingAcks(ctx, "pl")).on(t)
	if st.Generation != gen+5 || st.Age < 0 || st.Age > time.Hour {
		t.Fatalf("routing after 5 SetPlacements = %+v, want generation %d, changed about now", st, gen+5)
	}

	for _, tc := range []struct {
		name string
		p    baton.Placement
	}{
		{"other app", placement("other", prod, "r1", "h1", 1)},
		{"other slot", placement("pl", "staging", "r1", "h1", 1)},
		{"other revision", placement("pl", prod, "r2", "h1", 1)},
		{"no instances", placement("pl", prod, "r1", "h1", 0)},
		{"negative instances", placement("pl", prod, "r1", "h1", -1)},
		{"no state", baton.Placement{App: "pl", Slot: prod, Revision: "r1", Host: "h1", Instances: 1}},
		{"no host", placement("pl", prod, "r1", "", 1)},
	} {
		// The invalid one comes second: nothing of the call is kept.
		err := s.SetPlacements(ctx, "pl", prod, "r1", []baton.Placement{placement("pl", prod, "r1", "h9", 1), tc.p})
		if baton.ErrorCode(err) != baton.EINVALID {
			t.Fatalf("%s: SetPlacements = %v, want EINVALID", tc.name, err)
		}
	}
	wantCode(t, s.SetPlacements(ctx, "pl", prod, "r1", []baton.Placement{placement("pl", prod, "r1", "h1", 1), placement("pl", prod, "r1", "h1", 2)}), baton.EINVALID)
	wantCode(t, s.SetPlacements(ctx, "nope", prod, "r1", []baton.Placement{placement("nope", prod, "r1", "h1", 1)}), baton.ENOTFOUND)
	wantCode(t, s.SetPlacements(ctx, "nope", prod, "r1", nil), baton.ENOTFOUND)
	wantCode(t, s.SetPlacements(ctx, "pl", "nope", "r1", []baton.Placement{placement("pl", "nope", "r1", "h1", 1)}), baton.ENOTFOUND)
	wantPlacements(t, s, baton.PlacementFilter{App: "pl"},
		"pl/production/r1@h1 1 starting ",
		"pl/production/r1@h3 2 starting ",
		"pl/staging/r1@h3 1 starting ")
	if g := generation(t, s, "pl"); g != gen+5 {
		t.Fatalf("routing generation after refused SetPlacements = %d, want %d", g, gen+5)
	}
}

// testReportPlacement: a host's report sets the State and Message of its
// placement only, without a new routing generation.
func testReportPlacement(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "rp")).on(t)
	prod := baton.ProductionSlot
	must(0, s.SetPlacements(ctx, "rp", prod, "r1", []baton.Placement{placement("rp", prod, "r1", "h1", 1), placement("rp", prod, "r1", "h2", 1)})).on(t)
	old := wantPlacements(t, s, baton.PlacementFilter{App: "rp", Host: "h2"}, "rp/production/r1@h2 1 starting ")[0]
	gen := generation(t, s, "rp")

	failed := baton.Placement{App: "rp", Slot: prod, Revision: "r1", Host: "h2", State: baton.PlacementFailed, Message: "port 8080 in use"}
	must(0, s.ReportPlacement(ctx, failed)).on(t)
	ps := wantPlacements(t, s, baton.PlacementFilter{App: "rp"},
		"rp/production/r1@h1 1 starting ",
		"rp/production/r1@h2 1 failed port 8080 in use")
	if ps[1].UpdatedAt.Before(old.UpdatedAt) {
		t.Fatalf("reported placement updated at %v, before it was placed at %v", ps[1].UpdatedAt, old.UpdatedAt)
	}
	healthy := failed
	healthy.State, healthy.Message = baton.PlacementHealthy, ""
	must(0, s.ReportPlacement(ctx, healthy)).on(t)
	wantPlacements(t, s, baton.PlacementFilter{App: "rp", Host: "h2"}, "rp/production/r1@h2 1 healthy ")
	if g := generation(t, s, "rp"); g != gen {
		t.Fatalf("routing generation after reports = %d, want %d (unchanged)", g, gen)
	}

	for _, p := range []baton.Placement{
		{App: "rp", Slot: prod, Revision: "r1", Host: "h3", State: baton.PlacementHealthy},
		{App: "rp", Slot: prod, Revision: "r2", Host: "h1", State: baton.PlacementHealthy},
		{App: "rp", Slot: "staging", Revision: "r1", Host: "h1", State: baton.PlacementHealthy},
		{App: "nope", Slot: prod, Revision: "r1", Host: "h1", State: baton.PlacementHealthy},
	} {
		wantCode(t, s.ReportPlacement(ctx, p), baton.ENOTFOUND)
	}
	// A report that arrives after the owner moved the instances finds
	// nothing, and brings nothing back.
	must(0, s.SetPlacements(ctx, "rp", prod, "r1", []baton.Placement{placement("rp", prod, "r1", "h1", 2)})).on(t)
	wantCode(t, s.ReportPlacement(ctx, healthy), baton.ENOTFOUND)
	wantPlacements(t, s, baton.PlacementFilter{App: "rp"}, "rp/production/r1@h1 2 starting ")
}

// testPlacementFilters: every non-empty field of the filter must match;
// the list is by app, slot, revision and host, whatever the order written.
func testPlacementFilters(t *testing.T, s baton.Store) {
	ctx := context.Background()
	for _, app := range []string{"b", "a"} {
		must(s.CreateApp(ctx, app)).on(t)
		must(s.CreateSlot(ctx, app, "blue")).on(t)
		for _, slot := range []string{baton.ProductionSlot, "blue"} {
			for _, rev := range []string{"r2", "r1"} {
				ps := []baton.Placement{placement(app, slot, rev, "h2", 1), placement(app, slot, rev, "h1", 2)}
				must(0, s.SetPlacements(ctx, app, slot, rev, ps)).on(t)
			}
		}
	}
	wantPlacements(t, s, baton.PlacementFilter{},
		"a/blue/r1@h1 2 starting ", "a/blue/r1@h2 1 starting ", "a/blue/r2@h1 2 starting ", "a/blue/r2@h2 1 starting ",
		"a/production/r1@h1 2 starting ", "a/production/r1@h2 1 starting ", "a/production/r2@h1 2 starting ", "a/production/r2@h2 1 starting ",
		"b/blue/r1@h1 2 starting ", "b/blue/r1@h2 1 starting ", "b/blue/r2@h1 2 starting ", "b/blue/r2@h2 1 starting ",
		"b/production/r1@h1 2 starting ", "b/production/r1@h2 1 starting ", "b/production/r2@h1 2 starting ", "b/production/r2@h2 1 starting ")
	wantPlacements(t, s, baton.PlacementFilter{App: "b", Slot: "blue"},
		"b/blue/r1@h1 2 starting ", "b/blue/r1@h2 1 starting ", "b/blue/r2@h1 2 starting ", "b/blue/r2@h2 1 starting ")
	wantPlacements(t, s, baton.PlacementFilter{Host: "h2", Revision: "r2"},
		"a/blue/r2@h2 1 starting ", "a/production/r2@h2 1 starting ", "b/blue/r2@h2 1 starting ", "b/production/r2@h2 1 starting ")
	wantPlacements(t, s, baton.PlacementFilter{Slot: baton.ProductionSlot, Host: "h1"},
		"a/production/r1@h1 2 starting ", "a/production/r2@h1 2 starting ", "b/production/r1@h1 2 starting ", "b/production/r2@h1 2 starting ")
	wantPlacements(t, s, baton.PlacementFilter{App: "a", Slot: "blue", Revision: "r1", Host: "h2"}, "a/blue/r1@h2 1 starting ")
	wantPlacements(t, s, baton.PlacementFilter{App: "c"})
	wantPlacements(t, s, baton.PlacementFilter{Host: "h3"})
}

// testPlacementsGoWithSlotsAndApps: a slot's scale and placements go with
// it, an app's with it (not coming back when it is created again); a
// deregistered host's stay.
func testPlacementsGoWithSlotsAndApps(t *testing.T, s baton.Store) {
	ctx := context.Background()
	prod := baton.ProductionSlot
	for _, app := range []string{"gone", "kept"} {
		must(s.CreateApp(ctx, app)).on(t)
		must(s.CreateSlot(ctx, app, "staging")).on(t)
		f := appLease(t, s, app)
		for _, slot := range []string{prod, "staging"} {
			must(0, s.SetScale(ctx, f, baton.Scale{App: app, Slot: slot, Instances: 2})).on(t)
			must(0, s.SetPlacements(ctx, app, slot, "r1", []baton.Placement{placement(app, slot, "r1", "h1", 2)})).on(t)
		}
	}
	must(0, s.RegisterController(ctx, baton.ControllerInfo{ID: "h1", Addr: "10.0.0.1:7070"})).on(t)
	must(0, s.DeregisterController(ctx, "h1")).on(t)
	wantPlacements(t, s, baton.PlacementFilter{Host: "h1"},
		"gone/production/r1@h1 2 starting ", "gone/staging/r1@h1 2 starting ",
		"kept/production/r1@h1 2 starting ", "kept/staging/r1@h1 2 starting ")

	must(0, s.DeleteSlot(ctx, "kept", "staging")).on(t)
	wantPlacements(t, s, baton.PlacementFilter{App: "kept"}, "kept/production/r1@h1 2 starting ")
	if sc := must(s.Scale(ctx, "kept", "staging")).on(t); sc.Instances != 0 {
		t.Fatalf("scale of a deleted slot = %+v, want zero", sc)
	}
	must(s.CreateSlot(ctx, "kept", "staging")).on(t)
	if sc := must(s.Scale(ctx, "kept", "staging")).on(t); sc.Instances != 0 {
		t.Fatalf("scale of a slot created again = %+v, want zero", sc)
	}
	wantPlacements(t, s, baton.PlacementFilter{App: "kept", Slot: "staging"})

	must(0, s.DeleteApp(ctx, "gone")).on(t)
	wantPlacements(t, s, baton.PlacementFilter{App: "gone"})
	must(s.CreateApp(ctx, "gone")).on(t)
	wantPlacements(t, s, baton.PlacementFilter{App: "gone"})
	if sc := must(s.Scale(ctx, "gone", prod)).on(t); sc.Instances != 0 {
		t.Fatalf("scale of an app created again = %+v, want zero", sc)
	}
	if sc := must(s.Scale(ctx, "kept", prod)).on(t); sc.Instances != 2 {
		t.Fatalf("scale of the other app = %+v, want 2 instances", sc)
	}
	wantPlacements(t, s, baton.PlacementFilter{}, "kept/production/r1@h1 2 starting ")
}

// testHostDrain: an operator's drain request is kept by the host's
// restarts (registering again) and heartbeats, until lifted.
func testHostDrain(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(0, s.RegisterController(ctx, baton.ControllerInfo{ID: "h1", Addr: "10.0.0.1:7070"})).on(t)
	must(0, s.RegisterController(ctx, baton.ControllerInfo{ID: "h2", Addr: "10.0.0.2:7070"})).on(t)
	drains := func() [2]bool {
		t.Helper()
		cs := must(s.Controllers(ctx)).on(t)
		if len(cs) != 2 {
			t.Fatalf("controllers = %+v", cs)
		}
		return [2]bool{cs[0].DrainRequested, cs[1].DrainRequested}
	}
	if got := drains(); got != [2]bool{} {
		t.Fatalf("drain requested of new hosts = %v", got)
	}
	must(0, s.SetHostDrain(ctx, "h1", true)).on(t)
	if got := drains(); got != [2]bool{true, false} {
		t.Fatalf("after draining h1: %v", got)
	}
	must(0, s.HeartbeatController(ctx, "h1", baton.Heartbeat{Instances: 2})).on(t)
	must(0, s.HeartbeatController(ctx, "h1", baton.Heartbeat{Draining: true})).on(t)
	must(0, s.RegisterController(ctx, baton.ControllerInfo{ID: "h1", Addr: "10.0.0.9:7070"})).on(t)
	must(0, s.HeartbeatController(ctx, "h1", baton.Heartbeat{})).on(t)
	if got := drains(); got != [2]bool{true, false} {
		t.Fatalf("after h1's heartbeats and restart: %v, want h1's drain request kept", got)
	}
	must(0, s.SetHostDrain(ctx, "h1", true)).on(t)
	must(0, s.SetHostDrain(ctx, "h1", false)).on(t)
	if got := drains(); got != [2]bool{} {
		t.Fatalf("after undraining h1: %v", got)
	}
	wantCode(t, s.SetHostDrain(ctx, "nope", true), baton.ENOTFOUND)
}
