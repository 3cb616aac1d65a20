package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// Contract of Enqueue's conflict policies beyond the basic cases in
// storetest.go: baton.Admit decides, and every store must apply its
// decision the same way.

// testEnqueueFailQueuedOnly: with nothing running, policy fail is refused
// by a queued deployment, which the conflict names (the oldest), with the
// queue's length.
func testEnqueueFailQueuedOnly(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "fq")).on(t)
	oldest := enqueue(t, s, newDeployment("fq", baton.PolicyQueue)).Deployment
	enqueue(t, s, newDeployment("fq", baton.PolicyQueue))
	_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: newDeployment("fq", baton.PolicyFail)})
	var e *baton.Error
	if !errors.As(err, &e) || e.Code != baton.ECONFLICT || e.Conflict == nil || e.Conflict.Holder == nil {
		t.Fatalf("fail on a queued app: %v, want a conflict naming its holder", err)
	}
	if e.Conflict.Holder.ID != oldest.ID || e.Conflict.QueueLength != 2 || !strings.Contains(e.Message, oldest.ID) {
		t.Fatalf("conflict = %+v (%s), want holder %s and queue length 2", e.Conflict, e.Message, oldest.ID)
	}
	if n := countDeployments(t, s, "fq"); n != 2 {
		t.Fatalf("refused request was recorded: %d deployments", n)
	}
}

// testEnqueueQueueFullDetail: the 429 names the running deployment and
// the queue's length; policies that empty the queue are not bound by it.
func testEnqueueQueueFullDetail(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "qf")).on(t)
	running := enqueue(t, s, newDeployment("qf", baton.PolicyQueue)).Deployment
	start(t, s, running)
	const limit = 2
	ask := func(p baton.Policy) (baton.EnqueueResult, error) {
		return s.Enqueue(ctx, baton.EnqueueRequest{Deployment: newDeployment("qf", p), MaxQueue: limit})
	}
	for i := 0; i < limit; i++ {
		must(ask(baton.PolicyQueue)).on(t)
	}
	_, err := ask(baton.PolicyQueue)
	var e *baton.Error
	if !errors.As(err, &e) || e.Code != baton.EQUEUEFULL || e.Conflict == nil || e.Conflict.Holder == nil ||
		e.Conflict.Holder.ID != running.ID || e.Conflict.QueueLength != limit {
		t.Fatalf("full queue: %+v, want EQUEUEFULL naming %s and %d queued", err, running.ID, limit)
	}
	sup := must(ask(baton.PolicySupersede)).on(t)
	if len(sup.Replaced) != limit || sup.Deployment.State != baton.StateQueued {
		t.Fatalf("supersede on a full queue = %+v, want it queued, replacing %d", sup, limit)
	}
	for _, id := range sup.Replaced {
		d := must(s.Deployment(ctx, id)).on(t)
		if d.State != baton.StateSuperseded || !strings.Contains(d.Error, sup.Deployment.ID) {
			t.Fatalf("replaced %s = %s %q, want superseded by %s", id, d.State, d.Error, sup.Deployment.ID)
		}
	}
}

// testEnqueueCancelSupersedeIdle: on an idle app, cancel and supersede
// queue the deployment and replace nothing.
func testEnqueueCancelSupersedeIdle(t *testing.T, s baton.Store) {
	ctx := context.Background()
	for _, p := range []baton.Policy{baton.PolicyCancel, baton.PolicySupersede} {
		app := "idle-" + string(p)
		must(s.CreateApp(ctx, app)).on(t)
		res := enqueue(t, s, newDeployment(app, p))
		if res.Deployment.State != baton.StateQueued || res.Deployment.Policy != p || len(res.Replaced) != 0 || res.CancelRunning != "" || res.Existing {
			t.Fatalf("%s on an idle app = %+v, want queued, nothing replaced", p, res)
		}
	}
}

// testEnqueueRefusesUnknownPolicy: a policy Admit does not know is
// EINVALID, and nothing is recorded.
func testEnqueueRefusesUnknownPolicy(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "up")).on(t)
	_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: newDeployment("up", "later")})
	wantCode(t, err, baton.EINVALID)
	if n := countDeployments(t, s, "up"); n != 0 {
		t.Fatalf("refused request was recorded: %d deployments", n)
	}
}

// testEnqueueDefaults: a deployment recorded without a Kind is a deploy.
func testEnqueueDefaults(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "dk")).on(t)
	d := newDeployment("dk", baton.PolicyQueue)
	d.Kind = ""
	if got := enqueue(t, s, d).Deployment; got.Kind != baton.KindDeploy {
		t.Fatalf("kind = %q, want %q", got.Kind, baton.KindDeploy)
	}
	d = newDeployment("dk", baton.PolicyQueue)
	d.Kind = baton.KindRestart
	if got := enqueue(t, s, d).Deployment; got.Kind != baton.KindRestart {
		t.Fatalf("kind = %q, want %q", got.Kind, baton.KindRestart)
	}
}

// testFreezeBeatsIdempotency: a frozen app refuses even a repeat of a
// request it accepted, so nobody mistakes the repeat's answer for progress.
func testFreezeBeatsIdempotency(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "fi")).on(t)
	d := newDeployment("fi", baton.PolicyQueue)
	d.IdempotencyKey = "k"
	enqueue(t, s, d)
	if err := s.SetFrozen(ctx, "fi", &baton.Freeze{Reason: "incident", By: "alice"}); err != nil {
		t.Fatal(err)
	}
	again := newDeployment("fi", baton.PolicyQueue)
	again.IdempotencyKey = "k"
	_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: again, IdempotencyWindow: time.Hour})
	wantCode(t, err, baton.EFROZEN)
}

// testEnqueueNewerOnly: a store reads the slot's live deploy by its order
// key (through the revision that serves, wherever it was deployed) and the
// queued keys, so that newer-only refuses an older key naming the newer
// deploy and supersedes an older queued one; keys round-trip.
func testEnqueueNewerOnly(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "no")).on(t)
	keyed := func(key int64) baton.Deployment {
		d := newDeployment("no", baton.PolicyNewerOnly)
		d.OrderKey = key
		return d
	}
	live := enqueue(t, s, keyed(7)).Deployment
	f := start(t, s, live)
	r := must(s.CreateRevision(ctx, f, baton.Revision{App: "no", Slot: baton.ProductionSlot, Deployment: live.ID})).on(t)
	must(0, s.UpdateRunning(ctx, f, live.ID, baton.PhaseSwitching, r.Name)).on(t)
	must(0, s.SetRouting(ctx, f, map[string][]baton.RevisionWeight{baton.ProductionSlot: {{Revision: r.Name, Weight: 100}}})).on(t)
	must(0, s.FinishDeployment(ctx, f, live.ID, baton.StateSucceeded, "")).on(t)

	_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: keyed(5)})
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), live.ID) {
		t.Fatalf("key 5 after live key 7: %v, want a conflict naming %s", err, live.ID)
	}
	older := enqueue(t, s, keyed(8)).Deployment
	if got := must(s.Deployment(ctx, older.ID)).on(t); got.OrderKey != 8 {
		t.Fatalf("order key read back as %d, want 8", got.OrderKey)
	}
	newer := enqueue(t, s, keyed(9))
	if len(newer.Replaced) != 1 || newer.Replaced[0] != older.ID {
		t.Fatalf("key 9 replaced %v, want the queued key 8 (%s)", newer.Replaced, older.ID)
	}
	if d := must(s.Deployment(ctx, older.ID)).on(t); d.State != baton.StateSuperseded {
		t.Fatalf("queued key 8 is %s, want superseded", d.State)
	}
	_, err = s.Enqueue(ctx, baton.EnqueueRequest{Deployment: keyed(8)})
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), newer.Deployment.ID) {
		t.Fatalf("key 8 behind a queued key 9: %v, want a conflict naming %s", err, newer.Deployment.ID)
	}
}
