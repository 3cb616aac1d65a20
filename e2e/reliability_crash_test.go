package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// crashTarget says whose instances a crash case kills.
type crashTarget string

const (
	killOld  crashTarget = "live revision"
	killNew  crashTarget = "new revision"
	killBoth crashTarget = "both revisions"
)

// crashCase holds a deployment of app "crash" in one phase.
type crashCase struct {
	phase baton.Phase
	// hold prepares the artifact (and whatever holds the phase) and
	// returns it with the function that lets the deployment continue. t is
	// the subtest; files live as long as the whole test (a restarted
	// instance reads its gates again).
	hold func(t *testing.T, version string) (dir string, release func())
	// newStarted is true when the new revision's instances run in the phase.
	newStarted bool
	// exact is false for phases that cannot be held: the kill lands in
	// that phase or just after.
	exact bool
}

// crashCases returns the phases of a deployment with how to hold each.
// App "holder" holds the shared resource db:crash in its release. Gates and
// artifacts belong to parent.
func crashCases(parent *testing.T, c *api.Client, b *batonProc) []crashCase {
	nop := func() {}
	gated := func(opt func(gate) func(string)) func(*testing.T, string) (string, func()) {
		return func(t *testing.T, v string) (string, func()) {
			g := newGate(parent)
			return relAppDir(parent, v, opt(g)), func() { g.open(t) }
		}
	}
	releaseGate := func(g gate) func(string) {
		return withRelease(fmt.Sprintf("while [ ! -e %s ]; do sleep 0.02; done", g), "db:crash")
	}
	return []crashCase{
		{phase: baton.PhaseExtracting, hold: func(t *testing.T, v string) (string, func()) {
			size := int64(64 << 20)
			if reliabilityConfig().long {
				size = 128 << 20
			}
			return relBigArtifact(parent, v, size), nop
		}},
		{phase: baton.PhaseBuilding, exact: true, hold: gated(buildWaitsFor)},
		{phase: baton.PhaseReleasing, exact: true, hold: gated(releaseGate)},
		{phase: baton.PhaseWaitingForResource, exact: true, hold: func(t *testing.T, v string) (string, func()) {
			// The holder app takes db:crash in its release and waits.
			g := newGate(parent)
			h := deploy(t, c, "holder", relAppDir(parent, "holder-"+v, releaseGate(g)), api.DeployOptions{})
			waitPhase(t, c, h.ID, baton.PhaseReleasing)
			return relAppDir(parent, v, withRelease("echo migrating", "db:crash")), func() {
				g.open(t)
				if d := waitFinal(t, c, h.ID); d.State != baton.StateSucceeded {
					t.Errorf("holder deployment: %s %s", d.State, d.Error)
				}
			}
		}},
		{phase: baton.PhaseStarting, exact: true, newStarted: true, hold: gated(func(g gate) func(string) { return withListenGate(string(g)) })},
		{phase: baton.PhaseHealthChecking, exact: true, newStarted: true, hold: gated(withHealthGate)},
		{phase: baton.PhaseSwitching, newStarted: true, hold: func(t *testing.T, v string) (string, func()) {
			return relAppDir(parent, v), nop
		}},
		{phase: baton.PhaseDraining, exact: true, newStarted: true, hold: func(t *testing.T, v string) (string, func()) {
			// An in-flight request to the live revision holds its drain.
			g, mark := newGate(parent), newGate(parent)
			p := newProxyClient(b.proxyAddr)
			p.http.Timeout = 3 * time.Minute
			held := make(chan struct{})
			go func() {
				defer close(held)
				p.get("crash.localhost", fmt.Sprintf("/hold?gate=%s&mark=%s", g, mark))
			}()
			eventually(t, 30*time.Second, "a request in flight to the live revision", func() bool { return fileExists(string(mark)) })
			return relAppDir(parent, v), func() { g.open(t); <-held }
		}},
	}
}

// TestReliabilityInstanceCrash holds a deployment in every phase and kill
// -9s app instances there: those of the live revision, of the new one, or
// both. A live revision's instances are restarted and keep the app
// serving; a new revision whose instances die before it goes live fails
// its deployment at once and the old one keeps serving; after the switch,
// the new revision's instances are restarted. Then the invariants hold.
func TestReliabilityInstanceCrash(t *testing.T) {
	t.Parallel()
	cfg := reliabilityConfig()
	counts := scenarioCounts(t)
	rng := relRand(t)
	b := startRelBaton(t)
	c := b.client()
	ctx := context.Background()
	for _, app := range []string{"crash", "holder"} {
		if _, err := c.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	mustSucceed(t, c, "crash", relAppDir(t, "v0"))
	load := startRelLoad(t, b.proxyAddr, []string{"crash.localhost"}, 2, 20*time.Millisecond)
	n := 0
	for round := 0; round < cfg.crashRounds && !t.Failed(); round++ {
		for _, cc := range crashCases(t, c, b) {
			if t.Failed() {
				break
			}
			target := killOld
			if cc.newStarted {
				target = []crashTarget{killOld, killNew, killBoth}[rng.Intn(3)]
			}
			n++
			t.Run(fmt.Sprintf("%d-%s-%s", round, cc.phase, strings.ReplaceAll(string(target), " ", "-")), func(t *testing.T) {
				crashInPhase(t, b, c, cc, target, fmt.Sprintf("v%d", n), counts)
			})
		}
		// And the live revision, with nothing deploying.
		t.Run(fmt.Sprintf("%d-live", round), func(t *testing.T) {
			leaders := instanceLeaders(t, c, "crash")
			for rev := range leaders {
				counts.add(func(c *relCounts) { c.InstanceKills += killRevision(t, b, rev) })
			}
			counts.add(func(c *relCounts) { c.Runs++ })
			counts.note("crashes while idle", 1)
			checkInvariants(t, b, counts, "crash", "holder")
		})
	}
	for _, app := range []string{"crash", "holder"} {
		ds, _ := c.Deployments(ctx, app, 1000)
		counts.deployments(ds)
	}
	load.report(t, counts)
}

// crashLanding is where a crash case's kill landed: the deployment as it
// was (its phase just after the kill) and how many new instances died.
type crashLanding struct {
	d         baton.Deployment
	killedNew int
}

// crashInPhase runs one crash case: deploy, hold the phase, kill, release,
// check the outcome and the invariants.
func crashInPhase(t *testing.T, b *batonProc, c *api.Client, cc crashCase, target crashTarget, version string, counts *relCounts) {
	ctx := context.Background()
	leaders := instanceLeaders(t, c, "crash")
	var old string
	for rev := range leaders {
		old = rev
	}
	dir, release := cc.hold(t, version)
	d := deploy(t, c, "crash", dir, api.DeployOptions{Message: "crash in " + string(cc.phase)})

	// Kill as the phase begins: for held phases any moment in it would do.
	landed := make(chan crashLanding, 1)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var once sync.Once
	followed := make(chan struct{})
	defer func() { cancel(); <-followed }()
	go func() {
		defer close(followed)
		c.Follow(fctx, d.ID, func(ev api.Event) {
			if phaseOfEvent(ev) != cc.phase {
				return
			}
			once.Do(func() {
				cur, _ := c.Deployment(ctx, d.ID)
				killedOld, killedNew := 0, 0
				if target != killNew {
					killedOld = killRevision(t, b, old)
				}
				if target != killOld && cur.Revision != "" {
					// In phase starting the instances are being spawned.
					deadline := time.Now().Add(10 * time.Second)
					for len(revisionProcesses(b.data)[cur.Revision]) < 2 && time.Now().Before(deadline) {
						time.Sleep(20 * time.Millisecond)
					}
					killedNew = killRevision(t, b, cur.Revision)
				}
				counts.add(func(c *relCounts) { c.InstanceKills += killedOld + killedNew })
				after, _ := c.Deployment(ctx, d.ID)
				// Unless its new instances died (it then fails), a held
				// deployment stays in its phase.
				if cc.exact && killedNew == 0 && after.Phase != cc.phase {
					t.Errorf("deployment left held phase %s for %s before the kill ended", cc.phase, after.Phase)
				}
				cur.Phase = after.Phase
				landed <- crashLanding{d: cur, killedNew: killedNew}
			})
		})
	}()
	var l crashLanding
	select {
	case l = <-landed:
	case <-time.After(3 * time.Minute):
		t.Fatalf("deployment %s never reached phase %s", d.ID, cc.phase)
	}
	cancel()
	release()
	got := waitFinal(t, c, d.ID)
	at := l.d
	counts.add(func(c *relCounts) { c.Runs++ })
	if at.Phase == cc.phase {
		counts.note(fmt.Sprintf("crashes of the %s in phase %s", target, cc.phase), 1)
	} else {
		counts.note(fmt.Sprintf("crashes of the %s aimed at phase %s, landed in %s", target, cc.phase, at.Phase), 1)
	}

	// The new revision's instances died before it went live: the
	// deployment fails at once, naming the exit.
	diedBeforeLive := l.killedNew > 0 && (at.Phase == baton.PhaseStarting || at.Phase == baton.PhaseHealthChecking)
	switch {
	case diedBeforeLive:
		if got.State != baton.StateFailed || !strings.Contains(got.Error, "exited before becoming healthy") {
			t.Errorf("new instances killed in %s: deployment %s %q, want failed naming the exit", at.Phase, got.State, got.Error)
		}
	case got.State != baton.StateSucceeded:
		log, _ := c.Log(ctx, got.ID)
		t.Errorf("%s killed in phase %s: deployment %s %q, want succeeded\n%s", target, at.Phase, got.State, got.Error, log)
	}
	counts.check()
	checkInvariants(t, b, counts, "crash", "holder")
}

// killRevision kill -9s every process of a revision of b (found like
// processesOf, but only in b's data directory) and returns how many.
func killRevision(t testing.TB, b *batonProc, rev string) int {
	t.Helper()
	ps := revisionProcesses(b.data)[rev]
	for _, p := range ps {
		if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			t.Errorf("kill %d of %s: %v", p.pid, rev, err)
		}
	}
	return len(ps)
}
