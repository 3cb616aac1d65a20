package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// Contract of EnqueueRequest.IfUnchanged: a deploy request that would
// change nothing records nothing, decided in the transaction that would
// otherwise queue it.

// goLive records a deployment of app's slot that made a new revision serve
// it at 100 %, as the coordinator does, and returns the deployment and the
// revision.
func goLive(t testing.TB, s baton.Store, app, slot string) (baton.Deployment, baton.Revision) {
	t.Helper()
	ctx := context.Background()
	d := newDeployment(app, baton.PolicyQueue)
	d.Slot = slot
	d = enqueue(t, s, d).Deployment
	f := start(t, s, d)
	r := must(s.CreateRevision(ctx, f, baton.Revision{App: app, Slot: slot, Deployment: d.ID, ArtifactDigest: d.ArtifactDigest})).on(t)
	if err := s.UpdateRunning(ctx, f, d.ID, baton.PhaseSwitching, r.Name); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRouting(ctx, f, map[string][]baton.RevisionWeight{slot: {{Revision: r.Name, Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDeployment(ctx, f, d.ID, baton.StateSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	return must(s.Deployment(ctx, d.ID)).on(t), r
}

// newestSeq is the Seq of app's newest deployment.
func newestSeq(t testing.TB, s baton.Store, app string) int64 {
	t.Helper()
	ds := must(s.Deployments(context.Background(), baton.DeploymentFilter{App: app, Limit: 1})).on(t)
	if len(ds) == 0 {
		t.Fatalf("%s has no deployments", app)
	}
	return ds[0].Seq
}

func countDeployments(t testing.TB, s baton.Store, app string) int {
	t.Helper()
	return len(must(s.Deployments(context.Background(), baton.DeploymentFilter{App: app})).on(t))
}

// wantUnchanged checks res is an Unchanged answer naming live's creator.
func wantUnchanged(t testing.TB, res baton.EnqueueResult, live baton.Deployment, rev string) {
	t.Helper()
	if !res.Unchanged || res.Deployment.ID != live.ID || res.Deployment.Revision != rev || res.Deployment.State != baton.StateSucceeded {
		t.Fatalf("answer %+v, want Unchanged with %s (which created %s)", res, live.ID, rev)
	}
}

func testEnqueueUnchanged(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "un")).on(t)
	must(s.CreateSlot(ctx, "un", "staging")).on(t)
	live, rev := goLive(t, s, "un", baton.ProductionSlot)
	check := &baton.LiveCheck{Revision: rev.Name, Weight: 100, Seq: newestSeq(t, s, "un")}
	ask := func(slot, key string, p baton.Policy, c *baton.LiveCheck, window time.Duration) (baton.EnqueueResult, error) {
		d := newDeployment("un", p)
		d.Slot, d.IdempotencyKey = slot, key
		return s.Enqueue(ctx, baton.EnqueueRequest{Deployment: d, IdempotencyWindow: window, IfUnchanged: c})
	}
	got := func(slot, key string, p baton.Policy, c *baton.LiveCheck, window time.Duration) baton.EnqueueResult {
		t.Helper()
		return must(ask(slot, key, p, c, window)).on(t)
	}

	// What was compared still serves: nothing is recorded, whatever the policy.
	for _, p := range []baton.Policy{baton.PolicyQueue, baton.PolicyFail, baton.PolicyCancel, baton.PolicySupersede} {
		res := got(baton.ProductionSlot, "", p, check, time.Hour)
		wantUnchanged(t, res, live, rev.Name)
		if res.Existing {
			t.Fatalf("%s: a request without a key answered Existing", p)
		}
	}
	// With a key the answer is kept: a repeat gets it even without the
	// check (as it would get the first deployment).
	wantUnchanged(t, got(baton.ProductionSlot, "ci-7", baton.PolicyQueue, check, time.Hour), live, rev.Name)
	again := got(baton.ProductionSlot, "ci-7", baton.PolicyQueue, nil, time.Hour)
	wantUnchanged(t, again, live, rev.Name)
	if !again.Existing {
		t.Fatal("a repeated key did not answer Existing")
	}
	if n := countDeployments(t, s, "un"); n != 1 {
		t.Fatalf("%d deployments recorded, want only the one that went live", n)
	}

	// The weight or the slot compared is not what serves: queued as usual.
	for _, c := range []struct {
		slot  string
		check baton.LiveCheck
	}{
		{baton.ProductionSlot, baton.LiveCheck{Revision: rev.Name, Weight: 20, Seq: check.Seq}},
		{"staging", *check},
		{baton.ProductionSlot, baton.LiveCheck{Revision: "un--000099", Weight: 100, Seq: check.Seq}},
	} {
		res := got(c.slot, "", baton.PolicyQueue, &c.check, time.Hour)
		if res.Unchanged || res.Deployment.State != baton.StateQueued {
			t.Fatalf("check %+v in slot %s: answer %+v, want a queued deployment", c.check, c.slot, res)
		}
		// While it waits, nothing is unchanged: it would change what serves.
		res = got(baton.ProductionSlot, "", baton.PolicyQueue, &baton.LiveCheck{Revision: rev.Name, Weight: 100, Seq: newestSeq(t, s, "un")}, time.Hour)
		if res.Unchanged {
			t.Fatalf("unchanged while %s is queued", res.Deployment.ID)
		}
		for _, q := range must(s.Deployments(ctx, baton.DeploymentFilter{App: "un", States: []baton.State{baton.StateQueued}})).on(t) {
			must(s.CancelQueued(ctx, q.ID, "test")).on(t)
		}
	}
	// Nothing waits now, but deployments were accepted after the check
	// was made: it no longer proves anything.
	res, err := ask(baton.ProductionSlot, "", baton.PolicyFail, check, time.Hour)
	if err != nil || res.Unchanged || res.Deployment.State != baton.StateQueued {
		t.Fatalf("a check older than the newest deployment: %+v %v, want a queued deployment", res, err)
	}
	must(s.CancelQueued(ctx, res.Deployment.ID, "test")).on(t)
	fresh := &baton.LiveCheck{Revision: rev.Name, Weight: 100, Seq: newestSeq(t, s, "un")}
	wantUnchanged(t, got(baton.ProductionSlot, "", baton.PolicyQueue, fresh, time.Hour), live, rev.Name)

	// A kept answer ends with the Idempotency-Key's window.
	if res := got(baton.ProductionSlot, "ci-7", baton.PolicyQueue, nil, -time.Second); res.Unchanged || res.Existing {
		t.Fatalf("a key outside its window answered %+v", res)
	}

	// A frozen app refuses before anything is compared.
	if err := s.SetFrozen(ctx, "un", &baton.Freeze{Reason: "incident", By: "alice"}); err != nil {
		t.Fatal(err)
	}
	_, err = ask(baton.ProductionSlot, "", baton.PolicyQueue, &baton.LiveCheck{Revision: rev.Name, Weight: 100, Seq: newestSeq(t, s, "un")}, time.Hour)
	wantCode(t, err, baton.EFROZEN)

	// The kept answers go with the app.
	if err := s.DeleteApp(ctx, "un"); err != nil {
		t.Fatal(err)
	}
	must(s.CreateApp(ctx, "un")).on(t)
	goLive(t, s, "un", baton.ProductionSlot)
	if res := got(baton.ProductionSlot, "ci-7", baton.PolicyQueue, nil, time.Hour); res.Unchanged {
		t.Fatalf("a key kept from the deleted app answered %+v", res)
	}
}

// testEnqueueUnchangedConcurrent: requests that would change nothing race
// one that changes what serves. Each is decided at one moment, with the
// policy: one not answered Unchanged was queued after the other one.
func testEnqueueUnchangedConcurrent(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "unrace")).on(t)
	_, rev := goLive(t, s, "unrace", baton.ProductionSlot)
	check := &baton.LiveCheck{Revision: rev.Name, Weight: 100, Seq: newestSeq(t, s, "unrace")}
	const n = 12
	results := make([]baton.EnqueueResult, n)
	errs := concurrently(n, func(i int) error {
		req := baton.EnqueueRequest{Deployment: newDeployment("unrace", baton.PolicyQueue), IfUnchanged: check}
		if i == n/2 {
			req.IfUnchanged = nil // a different artifact
		}
		var err error
		results[i], err = s.Enqueue(ctx, req)
		return err
	})
	other := results[n/2].Deployment
	recorded := 1
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if i == n/2 || results[i].Unchanged {
			continue
		}
		recorded++
		if d := results[i].Deployment; d.Seq <= other.Seq {
			t.Fatalf("request %d was queued as %s (seq %d) before %s (seq %d) changed anything", i, d.ID, d.Seq, other.ID, other.Seq)
		}
	}
	if got := countDeployments(t, s, "unrace") - 1; got != recorded {
		t.Fatalf("%d deployments recorded after the first, %d answered as recorded", got, recorded)
	}
}
