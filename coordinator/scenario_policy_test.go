package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// TestScenarioQueueFIFO: concurrent deploy requests under the queue policy
// all finish, in acceptance order, never two at once, and nothing is held
// after.
func TestScenarioQueueFIFO(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	b.createApp("q")
	const n = 50
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = appDir(t, fmt.Sprintf("v%d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, dir := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The server takes 8 uploads at once and refuses one that
			// found no slot within 30 s, asking to retry (a loaded
			// machine met it): a client retries, a few times.
			for attempt := 1; ; attempt++ {
				_, err := b.deployErr("q", dir, api.DeployOptions{})
				if err != nil && baton.ErrorCode(err) == baton.ERATELIMITED && attempt < 5 {
					continue
				}
				if err != nil {
					errs <- err
				}
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("deploy request refused: %v", err)
	}
	// They run one after another, 50 deployments: on a loaded machine
	// that takes minutes (150 s was seen, against a 3-minute limit), so the
	// wait fails when the queue stops moving (no deployment ended for a
	// minute), not at a total that depends on the machine's speed.
	var ds []baton.Deployment
	for final := -1; final < n; {
		before := final
		eventually(t, time.Minute, fmt.Sprintf("another deployment of the queue final (%d of %d so far)", max(before, 0), n), func() bool {
			ds = b.history("q")
			final = 0
			for _, d := range ds {
				if d.State.Final() {
					final++
				}
			}
			return final > before
		})
	}
	if len(ds) != n {
		t.Fatalf("%d deployments in the history, want %d", len(ds), n)
	}
	for _, d := range ds {
		if d.State != baton.StateSucceeded {
			t.Errorf("deployment %s: %s %s", d.ID, d.State, d.Error)
		}
	}
	assertSerial(t, ds)
	sort.Slice(ds, func(i, j int) bool { return ds[i].Seq < ds[j].Seq })
	for i := 1; i < len(ds); i++ {
		if ds[i].StartedAt.Before(*ds[i-1].StartedAt) {
			t.Fatalf("%s (seq %d) started before %s (seq %d)", ds[i].ID, ds[i].Seq, ds[i-1].ID, ds[i-1].Seq)
		}
	}
	// The last accepted one serves; only it runs.
	live := ds[len(ds)-1]
	if got := b.routing("q"); len(got) != 1 || got[live.Revision] != 100 {
		t.Fatalf("routing after the queue: %v, want %s at 100", got, live.Revision)
	}
	eventually(t, 10*time.Second, "only the live revision runs", func() bool { return b.instances() == 1 && len(b.processes(live.Revision)) == len(b.processes("")) })
	b.noLocks()
}

// TestScenarioFailPolicy: while one deployment runs, on_conflict=fail is a
// 409 naming the holder, its phase, author and a Retry-After, and records
// nothing; the queue length counts waiting deployments.
func TestScenarioFailPolicy(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	b.createApp("f")
	g := newGate(t)
	holder := b.deploy("f", appDir(t, "v1", waitsInBuild(g)), api.DeployOptions{Author: "alice", Commit: "abc123", Message: "slow one"})
	b.waitPhase(holder.ID, baton.PhaseBuilding)

	_, err := b.deployErr("f", appDir(t, "v2"), api.DeployOptions{Policy: baton.PolicyFail})
	var e *baton.Error
	if !errors.As(err, &e) || e.Code != baton.ECONFLICT {
		t.Fatalf("fail policy while busy: %v, want a conflict", err)
	}
	if e.Conflict == nil || e.Conflict.Holder == nil || e.Conflict.Holder.ID != holder.ID || e.Conflict.Holder.Phase != baton.PhaseBuilding ||
		e.Conflict.Holder.Author != "alice" || e.Conflict.Holder.Commit != "abc123" || e.Conflict.QueueLength != 0 {
		t.Fatalf("409 does not name the holder and its phase: %+v", e.Conflict)
	}
	if e.RetryAfterSeconds < 1 || !strings.Contains(e.Message, holder.ID) || !strings.Contains(e.Message, "alice") {
		t.Fatalf("409 message/Retry-After: %q, %d", e.Message, e.RetryAfterSeconds)
	}
	// A queued one behind it: fail still refuses and counts it.
	queued := b.deploy("f", appDir(t, "v3"), api.DeployOptions{})
	_, err = b.deployErr("f", appDir(t, "v4"), api.DeployOptions{Policy: baton.PolicyFail})
	if !errors.As(err, &e) || e.Conflict == nil || e.Conflict.QueueLength != 1 {
		t.Fatalf("fail policy with one queued: %v (%+v)", err, e)
	}
	g.open(t)
	b.succeed(holder.ID)
	b.succeed(queued.ID)
	if ds := b.history("f"); len(ds) != 2 {
		t.Fatalf("refused requests were recorded: %d deployments", len(ds))
	}
	// Idle: fail policy deploys.
	b.mustDeploy("f", appDir(t, "v5"), api.DeployOptions{Policy: baton.PolicyFail})
	b.serves(host("f", ""), "v5")
}

// TestScenarioCancelPolicy: on_conflict=cancel cancels the running and
// queued deployments (each naming it) and is the only one that goes live;
// the cancelled running one leaves nothing behind.
func TestScenarioCancelPolicy(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	b.createApp("c")
	b.mustDeploy("c", appDir(t, "v0"), api.DeployOptions{})
	g := newGate(t)
	running := b.deploy("c", appDir(t, "v1", waitsInBuild(g)), api.DeployOptions{})
	b.waitPhase(running.ID, baton.PhaseBuilding)
	var queued []string
	for i := 2; i <= 4; i++ {
		queued = append(queued, b.deploy("c", appDir(t, fmt.Sprint("v", i)), api.DeployOptions{}).ID)
	}
	winner := b.deploy("c", appDir(t, "v9"), api.DeployOptions{Policy: baton.PolicyCancel})
	b.succeed(winner.ID)
	for _, id := range append([]string{running.ID}, queued...) {
		d := b.get(id)
		if d.State != baton.StateCancelled || !strings.Contains(d.Error, winner.ID) {
			t.Errorf("%s: %s %q, want cancelled naming %s", id, d.State, d.Error, winner.ID)
		}
	}
	b.serves(host("c", ""), "v9")
	b.assertClean(b.get(running.ID))
}

// TestScenarioSupersedePolicy: supersede replaces the queued deployments
// and runs after the current one, which completes.
func TestScenarioSupersedePolicy(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	b.createApp("s")
	g := newGate(t)
	running := b.deploy("s", appDir(t, "v1", waitsInBuild(g)), api.DeployOptions{})
	b.waitPhase(running.ID, baton.PhaseBuilding)
	var queued []string
	for i := 2; i <= 4; i++ {
		queued = append(queued, b.deploy("s", appDir(t, fmt.Sprint("v", i)), api.DeployOptions{}).ID)
	}
	newest := b.deploy("s", appDir(t, "v5"), api.DeployOptions{Policy: baton.PolicySupersede})
	if newest.State != baton.StateQueued {
		t.Fatalf("supersede: %s, want queued", newest.State)
	}
	for _, id := range queued {
		if d := b.get(id); d.State != baton.StateSuperseded {
			t.Errorf("%s: %s, want superseded", id, d.State)
		}
	}
	g.open(t)
	b.succeed(running.ID)
	b.succeed(newest.ID)
	assertSerial(t, b.history("s"))
	b.serves(host("s", ""), "v5")
}

// TestScenarioIdempotencyKey: the same key with the same request returns
// the first deployment instead of queueing a second; the same key with
// another artifact is a 422 naming the first, and creates nothing;
// another key deploys.
func TestScenarioIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	b.createApp("i", "staging")
	dir := appDir(t, "v1")
	first := b.deploy("i", dir, api.DeployOptions{IdempotencyKey: "pipeline-42"})
	again, err := b.deployErr("i", dir, api.DeployOptions{IdempotencyKey: "pipeline-42"})
	if err != nil || again.ID != first.ID {
		t.Fatalf("same key gave %s (%v), want %s", again.ID, err, first.ID)
	}
	_, err = b.deployErr("i", appDir(t, "v2"), api.DeployOptions{IdempotencyKey: "pipeline-42"})
	if baton.ErrorCode(err) != baton.EUNPROCESSABLE || !strings.Contains(err.Error(), first.ID) || !strings.Contains(err.Error(), "artifact digest") {
		t.Fatalf("same key, other artifact: %v; want 422 naming %s and the artifact", err, first.ID)
	}
	_, err = b.deployErr("i", dir, api.DeployOptions{IdempotencyKey: "pipeline-42", Slot: "staging"})
	if baton.ErrorCode(err) != baton.EUNPROCESSABLE {
		t.Fatalf("same key, other slot: %v; want 422", err)
	}
	forced := b.deploy("i", dir, api.DeployOptions{IdempotencyKey: "pipeline-43", Force: true})
	if forced.ID == first.ID {
		t.Fatal("different key returned the same deployment")
	}
	b.succeed(first.ID)
	b.succeed(forced.ID)
	if ds := b.history("i"); len(ds) != 2 {
		t.Fatalf("%d deployments, want 2", len(ds))
	}
}

// TestScenarioCancelQueuedAndFinished: a queued deployment cancels at once
// with the reason given; a finished one cannot be cancelled (409 saying
// so); an unknown one is not found.
func TestScenarioCancelQueuedAndFinished(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("cq")
	g := newGate(t)
	running := b.deploy("cq", appDir(t, "v1", waitsInBuild(g)), api.DeployOptions{})
	b.waitPhase(running.ID, baton.PhaseBuilding)
	queued := b.deploy("cq", appDir(t, "v2"), api.DeployOptions{})
	got, err := b.c.Cancel(ctx, queued.ID, "not this one")
	if err != nil || got.State != baton.StateCancelled || !strings.Contains(got.Error, "not this one") {
		t.Fatalf("cancel a queued deployment: %+v %v", got, err)
	}
	g.open(t)
	b.succeed(running.ID)
	_, err = b.c.Cancel(ctx, running.ID, "")
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "already finished") {
		t.Fatalf("cancel of a finished deployment: %v", err)
	}
	if _, err := b.c.Cancel(ctx, "d-nope", ""); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("cancel of an unknown deployment: %v", err)
	}
	b.serves(host("cq", ""), "v1")
}
