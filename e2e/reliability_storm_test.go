package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// stormRequest is one planned deploy request of the storm.
type stormRequest struct {
	app    string
	policy baton.Policy
	key    string // Idempotency-Key
	body   []byte // zipped artifact
	// repeat is the index of an earlier request this one repeats (same key
	// and artifact), -1 if none.
	repeat int
}

// planStorm draws n requests to apps with mixed policies; about one in ten
// repeats an earlier request's Idempotency-Key.
func planStorm(t testing.TB, rng *rand.Rand, n int, apps []string) []stormRequest {
	t.Helper()
	policies := []baton.Policy{baton.PolicyQueue, baton.PolicyQueue, baton.PolicyQueue, baton.PolicyFail, baton.PolicyFail,
		baton.PolicyCancel, baton.PolicySupersede, baton.PolicySupersede}
	plan := make([]stormRequest, n)
	for i := range plan {
		if i > 0 && rng.Intn(10) == 0 {
			j := rng.Intn(i)
			if plan[j].repeat < 0 && plan[j].policy != baton.PolicyFail {
				plan[i] = plan[j]
				plan[i].repeat = j
				continue
			}
		}
		app := apps[rng.Intn(len(apps))]
		body, err := zipDir(appDir(t, fmt.Sprintf("%s-storm-%d", app, i)))
		if err != nil {
			t.Fatal(err)
		}
		plan[i] = stormRequest{app: app, policy: policies[rng.Intn(len(policies))], key: fmt.Sprintf("storm-%d", i), body: body, repeat: -1}
	}
	return plan
}

// TestReliabilityDeployStorm sends a storm of deploy requests with mixed
// conflict policies (queue, fail, cancel, supersede, and repeated
// Idempotency-Keys) from many clients at once to a few apps under load.
// Besides the invariants: only on_conflict=fail is refused, a repeated key
// returns the first deployment, each cancelled or superseded deployment was
// displaced by a later cancel or supersede request, nothing fails, the
// newest deployment of each app is the one that serves, a sampler never
// sees two running deployments of one app, and no request fails through
// the proxy.
func TestReliabilityDeployStorm(t *testing.T) {
	t.Parallel()
	cfg := reliabilityConfig()
	counts := scenarioCounts(t)
	rng := relRand(t)
	b := startRelBaton(t)
	c := b.client()
	ctx := context.Background()
	var apps, hosts []string
	for i := 1; i <= cfg.stormApps; i++ {
		app := fmt.Sprintf("s%d", i)
		apps, hosts = append(apps, app), append(hosts, app+".localhost")
		if _, err := c.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		mustSucceed(t, c, app, appDir(t, app+"-v0"))
	}
	plan := planStorm(t, rng, cfg.stormRequests, apps)
	load := startRelLoad(t, b.proxyAddr, hosts, 2, 20*time.Millisecond)

	// The sampler: at every look, at most one running deployment per app.
	stopSampler := make(chan struct{})
	samplerDone := make(chan struct{})
	var samples atomic.Int64
	// Stopped when the storm's checks are done, or by the cleanup if a
	// check ends the test first: it must not outlive the test.
	stopSampling := sync.OnceFunc(func() { close(stopSampler); <-samplerDone })
	t.Cleanup(stopSampling)
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stopSampler:
				return
			case <-tick.C:
			}
			app := apps[n%len(apps)]
			ds, err := c.Deployments(ctx, app, 1000)
			if err != nil {
				continue
			}
			var running []string
			for _, d := range ds {
				if d.State == baton.StateRunning {
					running = append(running, d.ID)
				}
			}
			if len(running) > 1 {
				t.Errorf("invariant: %s has %d running deployments at once: %v", app, len(running), running)
			}
			samples.Add(1)
		}
	}()

	// The storm: clients take requests in plan order as fast as they can.
	ids := make([]string, len(plan))
	errs := make([]error, len(plan))
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < cfg.stormClients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := b.client()
			for i := range next {
				r := plan[i]
				d, err := cl.Deploy(ctx, r.app, bytes.NewReader(r.body), api.DeployOptions{Policy: r.policy, IdempotencyKey: r.key,
					Message: fmt.Sprintf("storm request %d (%s)", i, r.policy), ContentType: "application/zip"})
				ids[i], errs[i] = d.ID, err
			}
		}()
	}
	for i := range plan {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Logf("storm: %d requests from %d clients to %d apps accepted or refused in %s", len(plan), cfg.stormClients, len(apps), time.Since(start).Round(time.Millisecond))

	byKey := map[string]string{}
	for i, r := range plan {
		err := errs[i]
		switch {
		case err == nil:
			counts.note("storm requests accepted ("+string(r.policy)+")", 1)
		case baton.ErrorCode(err) == baton.ECONFLICT && r.policy == baton.PolicyFail:
			counts.note("storm requests refused with 409 (fail)", 1)
			continue
		default:
			t.Errorf("storm request %d (%s to %s) refused: %v", i, r.policy, r.app, err)
			continue
		}
		if first, ok := byKey[r.key]; ok && first != ids[i] {
			t.Errorf("invariant: Idempotency-Key %s gave two deployments: %s and %s", r.key, first, ids[i])
		} else if ok {
			counts.note("storm repeated keys answered with the first deployment", 1)
		}
		byKey[r.key] = ids[i]
	}
	counts.check()

	checkInvariants(t, b, counts, apps...)
	stopSampling()
	counts.add(func(c *relCounts) { c.InvariantChecks += int(samples.Load()); c.Runs++ })
	counts.note("sampler looks at running deployments", int(samples.Load()))

	for _, app := range apps {
		ds, err := c.Deployments(ctx, app, 1000)
		if err != nil {
			t.Fatal(err)
		}
		checkStormOutcomes(t, app, ds)
		counts.check()
		counts.deployments(ds)
	}
	if _, failed := load.report(t, counts); failed > 0 {
		t.Errorf("%d requests failed through the proxy during the storm; deployments should cost none", failed)
	}
	counts.check()
}

// checkStormOutcomes checks an app's history after a storm: nothing
// failed; every cancelled deployment names the later on_conflict=cancel
// deployment that displaced it; every superseded one never ran and a later
// supersede request exists; the newest deployment succeeded.
func checkStormOutcomes(t testing.TB, app string, ds []baton.Deployment) {
	t.Helper()
	var newest *baton.Deployment
	for i, d := range ds {
		if newest == nil || d.Seq > newest.Seq {
			newest = &ds[i]
		}
		later := func(p baton.Policy) (string, bool) {
			for _, x := range ds {
				if x.Seq > d.Seq && x.Policy == p && (p != baton.PolicyCancel || strings.Contains(d.Error, x.ID)) {
					return x.ID, true
				}
			}
			return "", false
		}
		switch d.State {
		case baton.StateFailed:
			t.Errorf("storm: deployment %s of %s failed: %s", d.ID, app, d.Error)
		case baton.StateCancelled:
			if _, ok := later(baton.PolicyCancel); !ok {
				t.Errorf("storm: deployment %s of %s cancelled (%q) without a later cancel request naming it", d.ID, app, d.Error)
			}
		case baton.StateSuperseded:
			if d.StartedAt != nil {
				t.Errorf("storm: superseded deployment %s of %s had started", d.ID, app)
			}
			if _, ok := later(baton.PolicySupersede); !ok {
				if _, ok := later(baton.PolicyCancel); !ok {
					t.Errorf("storm: deployment %s of %s superseded (%q) without a later supersede request", d.ID, app, d.Error)
				}
			}
		}
	}
	if newest != nil && newest.State != baton.StateSucceeded {
		t.Errorf("storm: the newest deployment of %s, %s, is %s (%q); nothing came after it to displace it", app, newest.ID, newest.State, newest.Error)
	}
}
