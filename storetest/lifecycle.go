package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// testLeaseExpiresByStoreClock: a lease lasts exactly its TTL on the
// store's clock — not less (nobody takes it over early), not forever (it
// can be taken over once the TTL has passed, with a higher token, and the
// old token is fenced out).
func testLeaseExpiresByStoreClock(t *testing.T, s baton.Store) {
	ctx := context.Background()
	const key, ttl = "app:clock", 1500 * time.Millisecond
	before := time.Now()
	l := must(s.AcquireLease(ctx, key, "first", ttl)).on(t)
	if got := l.ExpiresAt.Sub(l.AcquiredAt); got != ttl {
		t.Fatalf("lease runs %v from acquired_at to expires_at, want the TTL %v", got, ttl)
	}
	old := baton.Fence{Key: key, Token: l.Token}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * ttl)
	var taken baton.Lease
	for conflicts := 0; ; conflicts++ {
		next, err := s.AcquireLease(ctx, key, "second", time.Minute)
		if err == nil {
			if elapsed := time.Since(before); elapsed < ttl {
				t.Fatalf("lease with TTL %v taken over after %v", ttl, elapsed)
			}
			taken = next
			break
		}
		wantCode(t, err, baton.ECONFLICT)
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("lease with TTL %v still held after %v (%d refusals)", ttl, time.Since(before), conflicts)
		}
	}
	if taken.Token <= old.Token {
		t.Fatalf("token after expiry %d, not above %d", taken.Token, old.Token)
	}
	if _, err := s.RenewLease(ctx, old, time.Minute); !errors.Is(err, baton.ErrStaleToken) {
		t.Fatalf("renewing the expired lease: %v, want ErrStaleToken", err)
	}
	if err := s.ReleaseLease(ctx, old); !errors.Is(err, baton.ErrStaleToken) {
		t.Fatalf("releasing the expired lease: %v, want ErrStaleToken", err)
	}
	if cur := must(s.Lease(ctx, key)).on(t); cur.Holder != "second" || cur.Token != taken.Token {
		t.Fatalf("lease after takeover = %+v", cur)
	}
}

// testDeleteAppKeepsFences: deleting an app drops its lease but not its
// fencing counter, so a writer from before the delete cannot write into an
// app created again under the same name.
func testDeleteAppKeepsFences(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "phoenix")).on(t)
	d := enqueue(t, s, newDeployment("phoenix", baton.PolicyQueue)).Deployment
	old := start(t, s, d)
	if err := s.DeleteApp(ctx, "phoenix"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Lease(ctx, old.Key)
	wantCode(t, err, baton.ENOTFOUND)
	_, err = s.Deployment(ctx, d.ID)
	wantCode(t, err, baton.ENOTFOUND)
	must(s.CreateApp(ctx, "phoenix")).on(t)
	l := must(s.AcquireLease(ctx, old.Key, "new", time.Minute)).on(t)
	if l.Token <= old.Token {
		t.Fatalf("token after re-creating the app = %d, not above %d", l.Token, old.Token)
	}
	if err := s.SetLive(ctx, old, baton.ProductionSlot, "phoenix--000001"); !errors.Is(err, baton.ErrStaleToken) {
		t.Fatalf("write with a token from before the delete: %v, want ErrStaleToken", err)
	}
}

// testFailInterruptedSelectsApps: recovery of some apps leaves the others
// running; an empty list selects none (nil selects all).
func testFailInterruptedSelectsApps(t *testing.T, s baton.Store) {
	ctx := context.Background()
	var running []baton.Deployment
	for _, app := range []string{"mine", "theirs"} {
		must(s.CreateApp(ctx, app)).on(t)
		d := enqueue(t, s, newDeployment(app, baton.PolicyQueue)).Deployment
		start(t, s, d)
		running = append(running, d)
	}
	if failed := must(s.FailInterrupted(ctx, []string{})).on(t); len(failed) != 0 {
		t.Fatalf("FailInterrupted of no apps failed %+v", failed)
	}
	failed := must(s.FailInterrupted(ctx, []string{"mine"})).on(t)
	if len(failed) != 1 || failed[0].ID != running[0].ID || failed[0].State != baton.StateFailed {
		t.Fatalf("FailInterrupted(mine) = %+v", failed)
	}
	if _, err := s.Lease(ctx, baton.AppLeaseKey("mine")); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("lease of the recovered app: %v, want ENOTFOUND", err)
	}
	if l := must(s.Lease(ctx, baton.AppLeaseKey("theirs"))).on(t); l.Holder != running[1].ID {
		t.Fatalf("lease of the other app = %+v", l)
	}
	if d := must(s.Deployment(ctx, running[1].ID)).on(t); d.State != baton.StateRunning {
		t.Fatalf("the other app's deployment became %s", d.State)
	}
}

// testDeploymentTransitions: state changes refuse what does not apply, and
// a phase's start time moves only when the phase changes.
func testDeploymentTransitions(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "tr")).on(t)
	_, err := s.CancelQueued(ctx, "d-nope", "x")
	wantCode(t, err, baton.ENOTFOUND)
	_, err = s.Enqueue(ctx, baton.EnqueueRequest{Deployment: baton.Deployment{ID: baton.NewID("d-"), App: "tr", Slot: "nope", Policy: baton.PolicyQueue}})
	wantCode(t, err, baton.ENOTFOUND)
	d := enqueue(t, s, newDeployment("tr", baton.PolicyQueue)).Deployment
	if d.Kind != baton.KindDeploy || d.State != baton.StateQueued || d.CreatedAt.IsZero() {
		t.Fatalf("queued deployment = %+v", d)
	}
	f := start(t, s, d)
	_, err = s.StartDeployment(ctx, f, "d-nope")
	wantCode(t, err, baton.ENOTFOUND)
	_, err = s.StartDeployment(ctx, f, d.ID)
	wantCode(t, err, baton.ECONFLICT)
	if err := s.FinishDeployment(ctx, f, d.ID, baton.StateRunning, ""); err == nil {
		t.Fatal("FinishDeployment to running succeeded")
	}
	running := must(s.Deployment(ctx, d.ID)).on(t)
	if running.State != baton.StateRunning || running.Token != f.Token || running.StartedAt == nil || running.PhaseStartedAt == nil {
		t.Fatalf("started deployment = %+v", running)
	}
	if err := s.UpdateRunning(ctx, f, d.ID, baton.PhaseExtracting, ""); err != nil {
		t.Fatal(err)
	}
	p1 := *must(s.Deployment(ctx, d.ID)).on(t).PhaseStartedAt
	if err := s.UpdateRunning(ctx, f, d.ID, baton.PhaseExtracting, "tr--000001"); err != nil {
		t.Fatal(err)
	}
	same := must(s.Deployment(ctx, d.ID)).on(t)
	if !same.PhaseStartedAt.Equal(p1) || same.Revision != "tr--000001" {
		t.Fatalf("same phase again: phase started %v (was %v), revision %q", same.PhaseStartedAt, p1, same.Revision)
	}
	if err := s.UpdateRunning(ctx, f, d.ID, baton.PhaseBuilding, "tr--000001"); err != nil {
		t.Fatal(err)
	}
	if next := must(s.Deployment(ctx, d.ID)).on(t); next.Phase != baton.PhaseBuilding || next.PhaseStartedAt.Before(p1) {
		t.Fatalf("next phase: %s started %v, previous started %v", next.Phase, next.PhaseStartedAt, p1)
	}
	must(s.AcquireLease(ctx, baton.ResourceLeaseKey("db"), d.ID, time.Minute)).on(t)
	if err := s.FinishDeployment(ctx, f, d.ID, baton.StateSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	final := must(s.Deployment(ctx, d.ID)).on(t)
	if final.State != baton.StateSucceeded || final.FinishedAt == nil || final.FinishedAt.Before(*final.StartedAt) {
		t.Fatalf("finished deployment = %+v", final)
	}
	// Finishing released its leases in the same write: no crash between
	// the two can leave a finished deployment holding the app.
	for _, key := range []string{baton.AppLeaseKey("tr"), baton.ResourceLeaseKey("db")} {
		if l, err := s.Lease(ctx, key); baton.ErrorCode(err) != baton.ENOTFOUND {
			t.Fatalf("lease %s after FinishDeployment: %+v %v, want ENOTFOUND", key, l, err)
		}
	}
	// A finished deployment takes no more writes, even under its own lease.
	if err := s.UpdateRunning(ctx, f, d.ID, baton.PhaseDraining, ""); !errors.Is(err, baton.ErrStaleToken) {
		t.Fatalf("UpdateRunning after finish: %v, want ErrStaleToken", err)
	}
}

// testRecoveryAfterSwitch: a deployment that recorded its routing change
// (or was draining) when its controller died succeeded — its revision
// serves — while one that had not yet switched failed. Both recovery paths
// (FailInterrupted alone, FailExpired shared) say the same.
func testRecoveryAfterSwitch(t *testing.T, s baton.Store) {
	ctx := context.Background()
	recoveries := map[string]func() ([]baton.Deployment, error){
		"interrupted": func() ([]baton.Deployment, error) { return s.FailInterrupted(ctx, nil) },
		"expired":     func() ([]baton.Deployment, error) { return s.FailExpired(ctx) },
	}
	for name, recover := range recoveries {
		switched, draining, early := name+"-switched", name+"-draining", name+"-early"
		ids := map[string]string{}
		for _, app := range []string{switched, draining, early} {
			must(s.CreateApp(ctx, app)).on(t)
			d := enqueue(t, s, newDeployment(app, baton.PolicyQueue)).Deployment
			// A lease of a microsecond has expired by the recovery, as in
			// testFailExpired; FailInterrupted ignores expiry.
			l := must(s.AcquireLease(ctx, baton.AppLeaseKey(app), d.ID, time.Microsecond)).on(t)
			f := baton.Fence{Key: l.Key, Token: l.Token}
			must(s.StartDeployment(ctx, f, d.ID)).on(t)
			r := must(s.CreateRevision(ctx, f, baton.Revision{App: app, Slot: baton.ProductionSlot, Deployment: d.ID})).on(t)
			switch app {
			case switched:
				if err := s.UpdateRunning(ctx, f, d.ID, baton.PhaseSwitching, r.Name); err != nil {
					t.Fatal(err)
				}
				if err := s.SetRouting(ctx, f, map[string][]baton.RevisionWeight{baton.ProductionSlot: {{Revision: r.Name, Weight: 100}}}); err != nil {
					t.Fatal(err)
				}
			case draining:
				if err := s.UpdateRunning(ctx, f, d.ID, baton.PhaseDraining, r.Name); err != nil {
					t.Fatal(err)
				}
			case early:
				if err := s.UpdateRunning(ctx, f, d.ID, baton.PhaseSwitching, r.Name); err != nil {
					t.Fatal(err)
				}
			}
			ids[app] = d.ID
		}
		ended := must(recover()).on(t)
		if len(ended) != 3 {
			t.Fatalf("%s: recovery ended %d deployments, want 3: %+v", name, len(ended), ended)
		}
		want := map[string]baton.State{switched: baton.StateSucceeded, draining: baton.StateSucceeded, early: baton.StateFailed}
		for app, state := range want {
			d := must(s.Deployment(ctx, ids[app])).on(t)
			if d.State != state || d.FinishedAt == nil || (state == baton.StateSucceeded) != (d.Error == "") {
				t.Errorf("%s: %s after recovery = %s %q, want %s", name, app, d.State, d.Error, state)
			}
			if _, err := s.Lease(ctx, baton.AppLeaseKey(app)); baton.ErrorCode(err) != baton.ENOTFOUND {
				t.Errorf("%s: lease of %s after recovery: %v, want ENOTFOUND", name, app, err)
			}
		}
		for _, d := range ended {
			if d.State != want[d.App] {
				t.Errorf("%s: recovery returned %s as %s, want %s", name, d.App, d.State, want[d.App])
			}
			if d.State == baton.StateFailed && (!strings.HasPrefix(d.Error, baton.ReasonInterrupted+": ") || !strings.HasSuffix(d.Error, " "+string(baton.PhaseSwitching))) {
				t.Errorf("%s: %s failed with %q, want %q naming its phase", name, d.App, d.Error, baton.ReasonInterrupted+": … switching")
			}
		}
	}
}
