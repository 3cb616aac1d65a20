// Package storetest is the contract every baton.Store implementation passes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// Opener returns a fresh, empty store for one test.
type Opener func(t testing.TB) baton.Store

// Run runs the whole contract against stores made by open.
func Run(t *testing.T, open Opener) {
	tests := map[string]func(*testing.T, baton.Store){
		"Apps":                   testApps,
		"LeaseExclusive":         testLeaseExclusive,
		"LeaseTokensIncrease":    testLeaseTokensIncrease,
		"LeaseConcurrent":        testLeaseConcurrent,
		"FencingRejectsStale":    testFencingRejectsStale,
		"EnqueueQueueOrder":      testEnqueueQueueOrder,
		"DeploymentsPerApp":      testDeploymentsPerApp,
		"EnqueueFail":            testEnqueueFail,
		"EnqueueQueueFull":       testEnqueueQueueFull,
		"EnqueueCancelSupersede": testEnqueueCancelSupersede,

		"EnqueueFailQueuedOnly":       testEnqueueFailQueuedOnly,
		"EnqueueQueueFullDetail":      testEnqueueQueueFullDetail,
		"EnqueueCancelSupersedeIdle":  testEnqueueCancelSupersedeIdle,
		"EnqueueRefusesUnknownPolicy": testEnqueueRefusesUnknownPolicy,
		"EnqueueDefaults":             testEnqueueDefaults,
		"FreezeBeatsIdempotency":      testFreezeBeatsIdempotency,
		"EnqueueNewerOnly":            testEnqueueNewerOnly,

		"Idempotency":             testIdempotency,
		"IdempotencyOtherRequest": testIdempotencyOtherRequest,
		"AppOptions":              testAppOptions,
		"EnqueueUnchanged":        testEnqueueUnchanged,
		"FailInterrupted":         testFailInterrupted,
		"Log":                     testLog,
		"Revisions":               testRevisions,
		"Audit":                   testAudit,
		"Tokens":                  testTokens,
		"Routing":                 testRouting,
		"Freeze":                  testFreeze,
		"Controllers":             testControllers,
		"RoutingGenerations":      testRoutingGenerations,
		"FailExpired":             testFailExpired,
		"SlotsAndSettings":        testSlotsAndSettings,

		"LeaseExpiresByStoreClock":   testLeaseExpiresByStoreClock,
		"DeleteAppKeepsFences":       testDeleteAppKeepsFences,
		"FailInterruptedSelectsApps": testFailInterruptedSelectsApps,
		"RecoveryAfterSwitch":        testRecoveryAfterSwitch,
		"DeploymentTransitions":      testDeploymentTransitions,
		"EnqueueFailConcurrent":      testEnqueueFailConcurrent,
		"EnqueueQueueFullConcurrent": testEnqueueQueueFullConcurrent,
		"IdempotencyConcurrent":      testIdempotencyConcurrent,
		"EnqueueUnchangedConcurrent": testEnqueueUnchangedConcurrent,
		"LogConcurrentTail":          testLogConcurrentTail,
		"Domains":                    testDomains,
		"CertStore":                  testCertStore,
		"Hooks":                      testHooks,
		"DeliveryQueue":              testDeliveryQueue,
		"DeliveryClaimConcurrent":    testDeliveryClaimConcurrent,
		"Scale":                      testScale,
		"SetPlacements":              testSetPlacements,
		"ReportPlacement":            testReportPlacement,
		"PlacementFilters":           testPlacementFilters,
		"PlacementsGoWithSlots":      testPlacementsGoWithSlotsAndApps,
		"HostDrain":                  testHostDrain,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			// Each test has a store of its own; a server-backed store
			// spends most of a test waiting for round trips.
			t.Parallel()
			fn(t, open(t))
		})
	}
}

// result carries a (value, error) pair so a call can be checked inline:
// must(s.App(ctx, "x")).on(t).
type result[T any] struct {
	v   T
	err error
}

func must[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) on(t testing.TB) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := baton.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func newDeployment(app string, p baton.Policy) baton.Deployment {
	return baton.Deployment{ID: baton.NewID("d-"), App: app, Slot: baton.ProductionSlot, Policy: p,
		ArtifactDigest: "00", ArtifactType: "zip", Author: "tester"}
}

func enqueue(t testing.TB, s baton.Store, d baton.Deployment) baton.EnqueueResult {
	t.Helper()
	return must(s.Enqueue(context.Background(), baton.EnqueueRequest{Deployment: d, IdempotencyWindow: time.Hour})).on(t)
}

// start acquires the app lease and starts d under it.
func start(t testing.TB, s baton.Store, d baton.Deployment) baton.Fence {
	t.Helper()
	ctx := context.Background()
	l := must(s.AcquireLease(ctx, baton.AppLeaseKey(d.App), d.ID, time.Minute)).on(t)
	f := baton.Fence{Key: l.Key, Token: l.Token}
	must(s.StartDeployment(ctx, f, d.ID)).on(t)
	return f
}

func testApps(t *testing.T, s baton.Store) {
	ctx := context.Background()
	a := must(s.CreateApp(ctx, "hello")).on(t)
	if a.Name != "hello" || len(a.Slots) != 1 || a.Slots[0].Name != baton.ProductionSlot {
		t.Fatalf("created app = %+v, want hello with a production slot", a)
	}
	_, err := s.CreateApp(ctx, "hello")
	wantCode(t, err, baton.ECONFLICT)
	// Run by a controller from the start, its routing generation advanced
	// as by AssignApp; a name taken is ECONFLICT all the same.
	owned := must(s.CreateAppFor(ctx, "owned", "ctl-a")).on(t)
	if owned.Controller != "ctl-a" || owned.RoutingGeneration != a.RoutingGeneration+1 || len(owned.Slots) != 1 {
		t.Fatalf("created for ctl-a: %+v, want it run by ctl-a, generation %d, a production slot", owned, a.RoutingGeneration+1)
	}
	if got := must(s.App(ctx, "owned")).on(t); got.Controller != "ctl-a" {
		t.Fatalf("read back: controller %q, want ctl-a", got.Controller)
	}
	_, err = s.CreateAppFor(ctx, "hello", "ctl-a")
	wantCode(t, err, baton.ECONFLICT)
	if err := s.DeleteApp(ctx, "owned"); err != nil {
		t.Fatal(err)
	}
	must(s.CreateApp(ctx, "another")).on(t)
	apps := must(s.Apps(ctx)).on(t)
	if len(apps) != 2 || apps[0].Name != "another" || apps[1].Name != "hello" {
		t.Fatalf("apps = %+v", apps)
	}
	if err := s.DeleteApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	_, err = s.App(ctx, "hello")
	wantCode(t, err, baton.ENOTFOUND)
	wantCode(t, s.DeleteApp(ctx, "hello"), baton.ENOTFOUND)
}

func testLeaseExclusive(t *testing.T, s baton.Store) {
	ctx := context.Background()
	l := must(s.AcquireLease(ctx, "app:x", "one", time.Minute)).on(t)
	_, err := s.AcquireLease(ctx, "app:x", "two", time.Minute)
	wantCode(t, err, baton.ECONFLICT)
	f := baton.Fence{Key: l.Key, Token: l.Token}
	r := must(s.RenewLease(ctx, f, 2*time.Minute)).on(t)
	if !r.ExpiresAt.After(l.ExpiresAt) {
		t.Fatalf("renew did not extend: %v then %v", l.ExpiresAt, r.ExpiresAt)
	}
	if err := s.ReleaseLease(ctx, f); err != nil {
		t.Fatal(err)
	}
	_, err = s.Lease(ctx, "app:x")
	wantCode(t, err, baton.ENOTFOUND)
	must(s.AcquireLease(ctx, "app:x", "two", time.Minute)).on(t)
	// An expired lease can be taken over.
	must(s.AcquireLease(ctx, "app:y", "one", time.Microsecond)).on(t)
	l2 := must(s.AcquireLease(ctx, "app:y", "two", time.Minute)).on(t)
	if l2.Holder != "two" {
		t.Fatalf("holder = %q", l2.Holder)
	}
	b := must(s.BreakLease(ctx, "app:y")).on(t)
	if b.Holder != "two" {
		t.Fatalf("broken lease holder = %q", b.Holder)
	}
	leases := must(s.Leases(ctx)).on(t)
	if len(leases) != 1 || leases[0].Key != "app:x" {
		t.Fatalf("leases = %+v", leases)
	}
}

func testLeaseTokensIncrease(t *testing.T, s baton.Store) {
	ctx := context.Background()
	var last int64
	for i := 0; i < 20; i++ {
		l := must(s.AcquireLease(ctx, "app:t", fmt.Sprint("h", i), time.Minute)).on(t)
		if l.Token <= last {
			t.Fatalf("token %d after %d: not increasing", l.Token, last)
		}
		last = l.Token
		if i%2 == 0 {
			if err := s.ReleaseLease(ctx, baton.Fence{Key: l.Key, Token: l.Token}); err != nil {
				t.Fatal(err)
			}
		} else {
			must(s.BreakLease(ctx, l.Key)).on(t)
		}
	}
}

// testLeaseConcurrent races many goroutines for one key and checks that no
// two ever believed they held it at once.
func testLeaseConcurrent(t *testing.T, s baton.Store) {
	ctx := context.Background()
	var holders atomic.Int32
	var maxHolders atomic.Int32
	var wins atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				l, err := s.AcquireLease(ctx, "app:race", fmt.Sprint(g, "-", i), time.Minute)
				if baton.ErrorCode(err) == baton.ECONFLICT {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				n := holders.Add(1)
				for {
					m := maxHolders.Load()
					if n <= m || maxHolders.CompareAndSwap(m, n) {
						break
					}
				}
				wins.Add(1)
				holders.Add(-1)
				if err := s.ReleaseLease(ctx, baton.Fence{Key: l.Key, Token: l.Token}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if maxHolders.Load() != 1 || wins.Load() == 0 {
		t.Fatalf("max simultaneous holders = %d, wins = %d; want 1 and > 0", maxHolders.Load(), wins.Load())
	}
}

func testFencingRejectsStale(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "f")).on(t)
	d1 := enqueue(t, s, newDeployment("f", baton.PolicyQueue)).Deployment
	d2 := enqueue(t, s, newDeployment("f", baton.PolicyQueue)).Deployment
	// d1 starts under a short lease, stalls; the lease expires and d2 takes over.
	l1 := must(s.AcquireLease(ctx, "app:f", d1.ID, time.Microsecond)).on(t)
	stale := baton.Fence{Key: l1.Key, Token: l1.Token}
	must(s.StartDeployment(ctx, stale, d1.ID)).on(t)
	l2 := must(s.AcquireLease(ctx, "app:f", d2.ID, time.Minute)).on(t)
	fresh := baton.Fence{Key: l2.Key, Token: l2.Token}
	if fresh.Token <= stale.Token {
		t.Fatalf("fresh token %d not above stale %d", fresh.Token, stale.Token)
	}
	checks := map[string]error{
		"UpdateRunning":    s.UpdateRunning(ctx, stale, d1.ID, baton.PhaseSwitching, "f--000001"),
		"FinishDeployment": s.FinishDeployment(ctx, stale, d1.ID, baton.StateSucceeded, ""),
		"SetLive":          s.SetLive(ctx, stale, baton.ProductionSlot, "f--000001"),
		"RenewLease":       second(s.RenewLease(ctx, stale, time.Minute)),
		"ReleaseLease":     s.ReleaseLease(ctx, stale),
		"CreateRevision":   second(s.CreateRevision(ctx, stale, baton.Revision{App: "f", Slot: baton.ProductionSlot, Deployment: d1.ID})),
		"StartDeployment":  second(s.StartDeployment(ctx, stale, d2.ID)),
	}
	for name, err := range checks {
		if !errors.Is(err, baton.ErrStaleToken) {
			t.Errorf("%s with a stale token: err = %v, want ErrStaleToken", name, err)
		}
	}
	// The stale writes changed nothing.
	a := must(s.App(ctx, "f")).on(t)
	if a.Slots[0].LiveRevision != "" {
		t.Fatalf("live revision = %q after stale SetLive", a.Slots[0].LiveRevision)
	}
	if got := must(s.Deployment(ctx, d1.ID)).on(t); got.State != baton.StateRunning || got.Phase != baton.PhaseNone {
		t.Fatalf("d1 = %s/%s after stale writes", got.State, got.Phase)
	}
	// The fresh holder can write.
	must(s.StartDeployment(ctx, fresh, d2.ID)).on(t)
	if err := s.UpdateRunning(ctx, fresh, d2.ID, baton.PhaseStarting, "f--000001"); err != nil {
		t.Fatal(err)
	}
	rev := must(s.CreateRevision(ctx, fresh, baton.Revision{App: "f", Slot: baton.ProductionSlot, Deployment: d2.ID})).on(t)
	if err := s.SetLive(ctx, fresh, baton.ProductionSlot, rev.Name); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDeployment(ctx, fresh, d2.ID, baton.StateSucceeded, ""); err != nil {
		t.Fatal(err)
	}
}

func second[T any](_ T, err error) error { return err }

func testEnqueueQueueOrder(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "q")).on(t)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, enqueue(t, s, newDeployment("q", baton.PolicyQueue)).Deployment.ID)
	}
	q := must(s.Deployments(ctx, baton.DeploymentFilter{App: "q", States: []baton.State{baton.StateQueued}, Oldest: true})).on(t)
	if len(q) != 5 {
		t.Fatalf("%d queued, want 5", len(q))
	}
	for i := range q {
		if q[i].ID != ids[i] || q[i].State != baton.StateQueued {
			t.Fatalf("queue[%d] = %s/%s, want %s", i, q[i].ID, q[i].State, ids[i])
		}
	}
	newest := must(s.Deployments(ctx, baton.DeploymentFilter{App: "q", Limit: 2})).on(t)
	if len(newest) != 2 || newest[0].ID != ids[4] {
		t.Fatalf("newest first = %+v", newest)
	}
	_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: newDeployment("nope", baton.PolicyQueue)})
	wantCode(t, err, baton.ENOTFOUND)
}

// testDeploymentsPerApp: PerApp keeps each app's newest (or, with Oldest,
// oldest) deployments, with the other conditions applied first.
func testDeploymentsPerApp(t *testing.T, s baton.Store) {
	ctx := context.Background()
	ids := map[string][]string{}
	for _, app := range []string{"pa", "pb", "pc"} {
		must(s.CreateApp(ctx, app)).on(t)
	}
	// Interleaved, so an app's deployments are not adjacent in seq.
	for i := 0; i < 4; i++ {
		for _, app := range []string{"pa", "pb"} {
			ids[app] = append(ids[app], enqueue(t, s, newDeployment(app, baton.PolicyQueue)).Deployment.ID)
		}
	}
	ids["pc"] = append(ids["pc"], enqueue(t, s, newDeployment("pc", baton.PolicyQueue)).Deployment.ID)
	got := func(f baton.DeploymentFilter) map[string][]string {
		t.Helper()
		out := map[string][]string{}
		for _, d := range must(s.Deployments(ctx, f)).on(t) {
			out[d.App] = append(out[d.App], d.ID)
		}
		return out
	}
	newest := got(baton.DeploymentFilter{PerApp: 2})
	want := map[string][]string{"pa": {ids["pa"][3], ids["pa"][2]}, "pb": {ids["pb"][3], ids["pb"][2]}, "pc": {ids["pc"][0]}}
	if fmt.Sprint(newest) != fmt.Sprint(want) {
		t.Fatalf("newest 2 per app = %v, want %v", newest, want)
	}
	oldest := got(baton.DeploymentFilter{PerApp: 1, Oldest: true, States: []baton.State{baton.StateQueued}})
	want = map[string][]string{"pa": {ids["pa"][0]}, "pb": {ids["pb"][0]}, "pc": {ids["pc"][0]}}
	if fmt.Sprint(oldest) != fmt.Sprint(want) {
		t.Fatalf("oldest queued per app = %v, want %v", oldest, want)
	}
	one := got(baton.DeploymentFilter{App: "pb", PerApp: 3})
	if fmt.Sprint(one) != fmt.Sprint(map[string][]string{"pb": {ids["pb"][3], ids["pb"][2], ids["pb"][1]}}) {
		t.Fatalf("pb's newest 3 = %v", one)
	}
}

func testEnqueueFail(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "ff")).on(t)
	enqueue(t, s, newDeployment("ff", baton.PolicyFail)) // idle app: accepted
	first := must(s.Deployments(ctx, baton.DeploymentFilter{App: "ff"})).on(t)[0]
	start(t, s, first)
	_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: newDeployment("ff", baton.PolicyFail)})
	wantCode(t, err, baton.ECONFLICT)
	var e *baton.Error
	if !errors.As(err, &e) || e.Conflict == nil || e.Conflict.Holder == nil || e.Conflict.Holder.ID != first.ID {
		t.Fatalf("conflict does not name the holder %s: %+v", first.ID, err)
	}
	if n := len(must(s.Deployments(ctx, baton.DeploymentFilter{App: "ff"})).on(t)); n != 1 {
		t.Fatalf("refused request was recorded: %d deployments", n)
	}
}

func testEnqueueQueueFull(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "full")).on(t)
	for i := 0; i < 3; i++ {
		must(s.Enqueue(ctx, baton.EnqueueRequest{Deployment: newDeployment("full", baton.PolicyQueue), MaxQueue: 3})).on(t)
	}
	_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: newDeployment("full", baton.PolicyQueue), MaxQueue: 3})
	wantCode(t, err, baton.EQUEUEFULL)
}

func testEnqueueCancelSupersede(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "cs")).on(t)
	running := enqueue(t, s, newDeployment("cs", baton.PolicyQueue)).Deployment
	start(t, s, running)
	q1 := enqueue(t, s, newDeployment("cs", baton.PolicyQueue)).Deployment
	sup := enqueue(t, s, newDeployment("cs", baton.PolicySupersede))
	if len(sup.Replaced) != 1 || sup.Replaced[0] != q1.ID || sup.CancelRunning != "" {
		t.Fatalf("supersede result = %+v", sup)
	}
	if got := must(s.Deployment(ctx, q1.ID)).on(t); got.State != baton.StateSuperseded || got.FinishedAt == nil {
		t.Fatalf("q1 = %s, want superseded", got.State)
	}
	can := enqueue(t, s, newDeployment("cs", baton.PolicyCancel))
	if len(can.Replaced) != 1 || can.Replaced[0] != sup.Deployment.ID || can.CancelRunning != running.ID {
		t.Fatalf("cancel result = %+v", can)
	}
	if got := must(s.Deployment(ctx, sup.Deployment.ID)).on(t); got.State != baton.StateCancelled {
		t.Fatalf("superseding deployment = %s, want cancelled", got.State)
	}
	_, err := s.CancelQueued(ctx, running.ID, "x")
	wantCode(t, err, baton.ECONFLICT)
	c := must(s.CancelQueued(ctx, can.Deployment.ID, "cancelled by tester")).on(t)
	if c.State != baton.StateCancelled || c.Error != "cancelled by tester" {
		t.Fatalf("cancelled = %+v", c)
	}
}

func testIdempotency(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "idem")).on(t)
	d := newDeployment("idem", baton.PolicyQueue)
	d.IdempotencyKey = "k1"
	first := enqueue(t, s, d)
	d2 := newDeployment("idem", baton.PolicyQueue)
	d2.IdempotencyKey = "k1"
	again := enqueue(t, s, d2)
	if !again.Existing || again.Deployment.ID != first.Deployment.ID {
		t.Fatalf("same key gave %+v, want the first deployment %s", again, first.Deployment.ID)
	}
	d3 := newDeployment("idem", baton.PolicyQueue)
	d3.IdempotencyKey = "k2"
	if other := enqueue(t, s, d3); other.Existing {
		t.Fatal("a different key matched")
	}
	// Outside the window the key no longer matches.
	d4 := newDeployment("idem", baton.PolicyQueue)
	d4.IdempotencyKey = "k1"
	res := must(s.Enqueue(ctx, baton.EnqueueRequest{Deployment: d4, IdempotencyWindow: -time.Second})).on(t)
	if res.Existing {
		t.Fatal("key matched outside its window")
	}
}

// testIdempotencyOtherRequest: a key reused with another request (artifact,
// slot, options) is refused with EUNPROCESSABLE naming the key's
// deployment, and nothing is recorded; the same request from another author
// repeats. An Unchanged answer kept under a key is kept with its request.
func testIdempotencyOtherRequest(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "idem2")).on(t)
	must(s.CreateSlot(ctx, "idem2", "staging")).on(t)
	d := newDeployment("idem2", baton.PolicyQueue)
	d.IdempotencyKey = "run-9"
	first := enqueue(t, s, d)
	for name, change := range map[string]func(*baton.Deployment){
		"artifact": func(o *baton.Deployment) { o.ArtifactDigest = "01" },
		"slot":     func(o *baton.Deployment) { o.Slot = "staging" },
		"options":  func(o *baton.Deployment) { o.Params = `{"weight":50}` },
	} {
		o := newDeployment("idem2", baton.PolicyQueue)
		o.IdempotencyKey = "run-9"
		change(&o)
		_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: o, IdempotencyWindow: time.Hour})
		wantCode(t, err, baton.EUNPROCESSABLE)
		if !strings.Contains(err.Error(), first.Deployment.ID) {
			t.Fatalf("other %s: %v; want it to name %s", name, err, first.Deployment.ID)
		}
		if _, err := s.Deployment(ctx, o.ID); baton.ErrorCode(err) != baton.ENOTFOUND {
			t.Fatalf("other %s: deployment %s recorded (%v)", name, o.ID, err)
		}
	}
	same := newDeployment("idem2", baton.PolicyQueue)
	same.IdempotencyKey, same.Author, same.Message = "run-9", "retrier", "re-run"
	if again := enqueue(t, s, same); !again.Existing || again.Deployment.ID != first.Deployment.ID {
		t.Fatalf("the same request again gave %+v, want %s", again, first.Deployment.ID)
	}

	// An Unchanged answer: the same request repeats it, another is refused.
	must(s.CreateApp(ctx, "idem3")).on(t)
	_, rev := goLive(t, s, "idem3", baton.ProductionSlot)
	check := &baton.LiveCheck{Revision: rev.Name, Weight: 100, Seq: newestSeq(t, s, "idem3")}
	u := newDeployment("idem3", baton.PolicyQueue)
	u.IdempotencyKey = "run-10"
	if res := must(s.Enqueue(ctx, baton.EnqueueRequest{Deployment: u, IdempotencyWindow: time.Hour, IfUnchanged: check})).on(t); !res.Unchanged {
		t.Fatalf("first request: %+v, want Unchanged", res)
	}
	u.ID = baton.NewID("d-")
	if res := must(s.Enqueue(ctx, baton.EnqueueRequest{Deployment: u, IdempotencyWindow: time.Hour})).on(t); !res.Unchanged || !res.Existing {
		t.Fatalf("repeat: %+v, want the Unchanged answer again", res)
	}
	u.ID, u.ArtifactDigest = baton.NewID("d-"), "02"
	_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: u, IdempotencyWindow: time.Hour})
	wantCode(t, err, baton.EUNPROCESSABLE)
}

// testAppOptions: an app's options are kept on the app (App, Apps), apart
// from its settings; ENOTFOUND for an app that does not exist.
func testAppOptions(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "opts")).on(t)
	if a := must(s.App(ctx, "opts")).on(t); a.Options != (baton.AppOptions{}) {
		t.Fatalf("a new app has options %+v", a.Options)
	}
	o := baton.AppOptions{KuduOnConflict: baton.PolicyFail, GitOnConflict: baton.PolicySupersede, RegistryOnConflict: baton.PolicyCancel}
	if err := s.SetAppOptions(ctx, "opts", o); err != nil {
		t.Fatal(err)
	}
	if a := must(s.App(ctx, "opts")).on(t); a.Options != o {
		t.Fatalf("options = %+v, want %+v", a.Options, o)
	}
	for _, a := range must(s.Apps(ctx)).on(t) {
		if a.Name == "opts" && a.Options != o {
			t.Fatalf("Apps: options = %+v, want %+v", a.Options, o)
		}
	}
	if ss := must(s.Settings(ctx, "opts", baton.ProductionSlot)).on(t); len(ss) != 0 {
		t.Fatalf("options became settings: %+v", ss)
	}
	if err := s.SetAppOptions(ctx, "opts", baton.AppOptions{}); err != nil {
		t.Fatal(err)
	}
	if a := must(s.App(ctx, "opts")).on(t); a.Options != (baton.AppOptions{}) {
		t.Fatalf("cleared options = %+v", a.Options)
	}
	wantCode(t, s.SetAppOptions(ctx, "no-such-app", o), baton.ENOTFOUND)
}

func testFailInterrupted(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "i")).on(t)
	d := enqueue(t, s, newDeployment("i", baton.PolicyQueue)).Deployment
	f := start(t, s, d)
	if err := s.UpdateRunning(ctx, f, d.ID, baton.PhaseHealthChecking, ""); err != nil {
		t.Fatal(err)
	}
	queued := enqueue(t, s, newDeployment("i", baton.PolicyQueue)).Deployment
	failed := must(s.FailInterrupted(ctx, nil)).on(t)
	if len(failed) != 1 || failed[0].ID != d.ID {
		t.Fatalf("interrupted = %+v", failed)
	}
	got := must(s.Deployment(ctx, d.ID)).on(t)
	if got.State != baton.StateFailed || got.Error == "" || got.FinishedAt == nil {
		t.Fatalf("after recovery = %+v", got)
	}
	if _, err := s.Lease(ctx, "app:i"); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("lease still held after recovery: %v", err)
	}
	if q := must(s.Deployment(ctx, queued.ID)).on(t); q.State != baton.StateQueued {
		t.Fatalf("queued deployment became %s", q.State)
	}
}

func testLog(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "l")).on(t)
	d := enqueue(t, s, newDeployment("l", baton.PolicyQueue)).Deployment
	if err := s.AppendLog(ctx, d.ID, "one", "two"); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLog(ctx, d.ID, "three"); err != nil {
		t.Fatal(err)
	}
	all := must(s.Log(ctx, d.ID, 0)).on(t)
	if len(all) != 3 || all[0].Text != "one" || all[2].Text != "three" {
		t.Fatalf("log = %+v", all)
	}
	rest := must(s.Log(ctx, d.ID, all[0].ID)).on(t)
	if len(rest) != 2 || rest[0].Text != "two" {
		t.Fatalf("log after first = %+v", rest)
	}
}

func testRevisions(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "r")).on(t)
	d := enqueue(t, s, newDeployment("r", baton.PolicyQueue)).Deployment
	f := start(t, s, d)
	r1 := must(s.CreateRevision(ctx, f, baton.Revision{App: "r", Slot: baton.ProductionSlot, Deployment: d.ID, ArtifactDigest: "ab"})).on(t)
	r2 := must(s.CreateRevision(ctx, f, baton.Revision{App: "r", Slot: baton.ProductionSlot, Deployment: d.ID, ArtifactDigest: "cd", Source: "r--000001"})).on(t)
	if r1.Name != "r--000001" || r2.Name != "r--000002" || r1.Source != "" || r2.Source != "r--000001" {
		t.Fatalf("revisions created: %+v %+v", r1, r2)
	}
	got := must(s.Revision(ctx, "r--000002")).on(t)
	if got.ArtifactDigest != "cd" || got.Deployment != d.ID || got.Source != "r--000001" {
		t.Fatalf("revision = %+v", got)
	}
	if list := must(s.Revisions(ctx, "r")).on(t); len(list) != 2 || list[0].Number != 2 {
		t.Fatalf("revisions = %+v", list)
	}
	// App "": every app's, by app, each app's newest first. ("a" is
	// created last and sorts first.)
	must(s.CreateApp(ctx, "a")).on(t)
	da := enqueue(t, s, newDeployment("a", baton.PolicyQueue)).Deployment
	must(s.CreateRevision(ctx, start(t, s, da), baton.Revision{App: "a", Slot: baton.ProductionSlot, Deployment: da.ID, ArtifactDigest: "ef"})).on(t)
	var names []string
	for _, r := range must(s.Revisions(ctx, "")).on(t) {
		names = append(names, r.Name)
	}
	if want := []string{"a--000001", "r--000002", "r--000001"}; !slices.Equal(names, want) {
		t.Fatalf("every app's revisions: %v, want %v", names, want)
	}
}

func testAudit(t *testing.T, s baton.Store) {
	ctx := context.Background()
	for _, a := range []string{"lock.break", "deploy.cancel"} {
		if err := s.AddAudit(ctx, baton.AuditEntry{Actor: "cli", Action: a, Target: "app:x", Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	got := must(s.Audit(ctx, 10)).on(t)
	if len(got) != 2 || got[0].Action != "deploy.cancel" || got[1].Action != "lock.break" {
		t.Fatalf("audit = %+v", got)
	}
}

func testRouting(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "rt")).on(t)
	must(s.CreateSlot(ctx, "rt", "staging")).on(t)
	d := enqueue(t, s, newDeployment("rt", baton.PolicyQueue)).Deployment
	f := start(t, s, d)
	var names []string
	for i := 0; i < 3; i++ {
		r := must(s.CreateRevision(ctx, f, baton.Revision{App: "rt", Slot: baton.ProductionSlot, Deployment: d.ID,
			Env: map[string]string{"FEATURE": fmt.Sprint(i)}})).on(t)
		if r.Active || r.Weight != 0 {
			t.Fatalf("new revision is active: %+v", r)
		}
		names = append(names, r.Name)
	}
	if err := s.SetRouting(ctx, f, map[string][]baton.RevisionWeight{
		baton.ProductionSlot: {{Revision: names[0], Weight: 80}, {Revision: names[1], Weight: 20}},
	}); err != nil {
		t.Fatal(err)
	}
	got := map[string]baton.Revision{}
	for _, r := range must(s.Revisions(ctx, "rt")).on(t) {
		got[r.Name] = r
	}
	if r := got[names[0]]; !r.Active || r.Weight != 80 || r.Env["FEATURE"] != "0" {
		t.Fatalf("revision 1 = %+v", r)
	}
	if r := got[names[2]]; r.Active || r.Weight != 0 {
		t.Fatalf("unlisted revision = %+v", r)
	}
	if sl, _ := must(s.App(ctx, "rt")).on(t).Slot(baton.ProductionSlot); sl.LiveRevision != names[0] {
		t.Fatalf("live revision = %q, want the heaviest %s", sl.LiveRevision, names[0])
	}
	// A swap moves revisions between slots in one step.
	if err := s.SetRouting(ctx, f, map[string][]baton.RevisionWeight{
		baton.ProductionSlot: {{Revision: names[2], Weight: 100}},
		"staging":            {{Revision: names[0], Weight: 100}},
	}); err != nil {
		t.Fatal(err)
	}
	a := must(s.App(ctx, "rt")).on(t)
	prod, _ := a.Slot(baton.ProductionSlot)
	stg, _ := a.Slot("staging")
	if prod.LiveRevision != names[2] || stg.LiveRevision != names[0] {
		t.Fatalf("after swap: production %q staging %q", prod.LiveRevision, stg.LiveRevision)
	}
	if r := must(s.Revision(ctx, names[0])).on(t); r.Slot != "staging" || !r.Active {
		t.Fatalf("moved revision = %+v", r)
	}
	if r := must(s.Revision(ctx, names[1])).on(t); r.Active {
		t.Fatalf("revision left out of production is still active: %+v", r)
	}
	err := s.SetRouting(ctx, f, map[string][]baton.RevisionWeight{baton.ProductionSlot: {{Revision: "rt--999999", Weight: 100}}})
	wantCode(t, err, baton.ENOTFOUND)
	if r := must(s.Revision(ctx, names[2])).on(t); !r.Active || r.Weight != 100 {
		t.Fatalf("a failed SetRouting changed state: %+v", r)
	}
	if err := s.SetRevisionMode(ctx, "rt", baton.RevisionsMultiple); err != nil {
		t.Fatal(err)
	}
	if a := must(s.App(ctx, "rt")).on(t); a.RevisionMode != baton.RevisionsMultiple {
		t.Fatalf("revision mode = %q", a.RevisionMode)
	}
}

func testSlotsAndSettings(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "st")).on(t)
	must(s.CreateSlot(ctx, "st", "staging")).on(t)
	_, err := s.CreateSlot(ctx, "st", "staging")
	wantCode(t, err, baton.ECONFLICT)
	if err := s.SetAutoSwap(ctx, "st", "staging", baton.ProductionSlot); err != nil {
		t.Fatal(err)
	}
	if sl, _ := must(s.App(ctx, "st")).on(t).Slot("staging"); sl.AutoSwapTo != baton.ProductionSlot {
		t.Fatalf("auto swap = %q", sl.AutoSwapTo)
	}
	d := enqueue(t, s, newDeployment("st", baton.PolicyQueue)).Deployment
	f := start(t, s, d)
	for _, st := range []baton.Setting{
		{App: "st", Slot: "staging", Key: "DB_URL", Value: "postgres://staging", Sticky: true},
		{App: "st", Slot: "staging", Key: "FEATURE", Value: "on"},
		{App: "st", Slot: "staging", Key: "FEATURE", Value: "off", Secret: true},
	} {
		if err := s.PutSetting(ctx, f, st); err != nil {
			t.Fatal(err)
		}
	}
	got := must(s.Settings(ctx, "st", "staging")).on(t)
	if len(got) != 2 || got[0].Key != "DB_URL" || !got[0].Sticky || got[1].Value != "off" || !got[1].Secret {
		t.Fatalf("settings = %+v", got)
	}
	if err := s.DeleteSetting(ctx, f, "st", "staging", "FEATURE"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteSetting(ctx, f, "st", "staging", "FEATURE"), baton.ENOTFOUND)
	if err := s.PutSetting(ctx, baton.Fence{Key: f.Key, Token: f.Token - 1}, baton.Setting{App: "st", Slot: "staging", Key: "X", Value: "1"}); !errors.Is(err, baton.ErrStaleToken) {
		t.Fatalf("stale PutSetting: %v", err)
	}
	if err := s.DeleteSlot(ctx, "st", "staging"); err != nil {
		t.Fatal(err)
	}
	if got := must(s.Settings(ctx, "st", "staging")).on(t); len(got) != 0 {
		t.Fatalf("settings of a deleted slot remain: %+v", got)
	}
	wantCode(t, s.DeleteSlot(ctx, "st", "staging"), baton.ENOTFOUND)
}

func testFreeze(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "fz")).on(t)
	if err := s.SetFrozen(ctx, "fz", &baton.Freeze{Reason: "incident 42", By: "alice"}); err != nil {
		t.Fatal(err)
	}
	a := must(s.App(ctx, "fz")).on(t)
	if a.Frozen == nil || a.Frozen.Reason != "incident 42" || a.Frozen.By != "alice" || a.Frozen.At.IsZero() {
		t.Fatalf("frozen = %+v", a.Frozen)
	}
	_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: newDeployment("fz", baton.PolicyQueue)})
	wantCode(t, err, baton.EFROZEN)
	if !strings.Contains(baton.ErrorMessage(err), "incident 42") || !strings.Contains(baton.ErrorMessage(err), "alice") {
		t.Fatalf("freeze refusal does not quote reason and who: %v", err)
	}
	if err := s.SetFrozen(ctx, "fz", nil); err != nil {
		t.Fatal(err)
	}
	if a := must(s.App(ctx, "fz")).on(t); a.Frozen != nil {
		t.Fatalf("still frozen: %+v", a.Frozen)
	}
	enqueue(t, s, newDeployment("fz", baton.PolicyQueue))
	wantCode(t, s.SetFrozen(ctx, "nope", nil), baton.ENOTFOUND)
}
