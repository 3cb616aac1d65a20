package e2e

// The reliability suite (issue 12): kill -9 of baton at random points, app
// instances crashing in every phase, a full disk during extraction, a storm
// of deploy requests with mixed policies, and a SIGTERM restart under load.
// After each scenario (and each kill) checkInvariants verifies what must
// always hold. The short form runs with every `go test`; the long form with
// -reliability.long or BATON_RELIABILITY=long (`make reliability`). Random
// choices come from a printed seed (-reliability.seed reproduces a run).
// Counts go to the test log and to e2e/reliability-summary.txt.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// killArtifact is a deployable folder of one of several kinds, chosen by
// rng: plain, with a build step, with a release step on a resource shared
// by the apps, with two instances, or one whose app exits at once (the
// deployment fails). failing reports the last kind.
func killArtifact(t testing.TB, rng *rand.Rand, version string) (dir, kind string) {
	t.Helper()
	failingManifest := "[run]\ncommand = \"echo crashing on purpose; exit 3\"\n[health]\npath = \"/healthz\"\ninterval = \"100ms\"\nstart_timeout = \"20s\"\n"
	twoManifest := "[run]\ncommand = \"" + helloBin + "\"\ninstances = 2\n[health]\npath = \"/healthz\"\ninterval = \"100ms\"\nstart_timeout = \"20s\"\n"
	switch r := rng.Intn(100); {
	case r < 45:
		return appDir(t, version), "plain"
	case r < 60:
		return appDir(t, version, withBuild("echo building "+version)), "build"
	case r < 75:
		return appDir(t, version, withRelease("echo releasing "+version, "db:shared")), "release"
	case r < 88:
		return appDir(t, version, withManifest(twoManifest)), "two-instances"
	default:
		return appDir(t, version, withManifest(failingManifest)), "failing"
	}
}

// phaseOfEvent returns the phase a deployment log event announces, or "".
func phaseOfEvent(ev api.Event) baton.Phase {
	if ev.Deployment != nil {
		if ev.Deployment.State.Final() {
			return baton.Phase(ev.Deployment.State)
		}
		return ev.Deployment.Phase
	}
	if i := strings.Index(ev.Data, " phase "); i >= 0 && !strings.Contains(ev.Data, "baton stopped") {
		if f := strings.Fields(ev.Data[i+len(" phase "):]); len(f) > 0 {
			return baton.Phase(f[0])
		}
	}
	return ""
}

// signalBatonAtEvent follows deployment id's live log and sends sig to
// baton at its k-th event (k = 0: at once), or when the log ends if it has
// fewer. It returns where the signal landed: the last phase seen, "queued"
// before any, or "after the deployment ended". The caller restarts baton.
func signalBatonAtEvent(t testing.TB, b *batonProc, c *api.Client, id string, k int, sig syscall.Signal) string {
	t.Helper()
	pid := b.pid()
	signalled := make(chan string, 1)
	var once sync.Once
	send := func(at string) {
		once.Do(func() {
			if err := syscall.Kill(pid, sig); err != nil {
				t.Errorf("signal baton: %v", err)
			}
			signalled <- at
		})
	}
	if k == 0 {
		send("right after the request was accepted")
		return <-signalled
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		last := baton.Phase("queued")
		_, _ = c.Follow(ctx, id, func(ev api.Event) {
			if ph := phaseOfEvent(ev); ph != "" {
				last = ph
			}
			if n++; n >= k {
				send(string(last))
			}
		})
		send("after the deployment ended")
	}()
	at := <-signalled
	cancel()
	<-done
	return at
}

// killInCommand deploys to app an artifact whose build or release command
// (on resource db:shared) runs until the test ends, kill -9s baton while it
// runs and restarts it. It counts the command's processes left after the
// restart as orphans (an invariant: there must be none) and returns the
// deployment's id.
func killInCommand(t *testing.T, b *batonProc, c *api.Client, app string, phase baton.Phase, version string, counts *relCounts) string {
	t.Helper()
	g := newGate(t)
	killAtCleanup(t, string(g))
	hold := fmt.Sprintf("while [ ! -e %s ]; do sleep 0.02; done", g)
	opt := withBuild(hold)
	if phase == baton.PhaseReleasing {
		opt = withRelease(hold, "db:shared")
	}
	d := deploy(t, c, app, appDir(t, version, opt), api.DeployOptions{Message: "kill -9 in " + string(phase)})
	waitPhase(t, c, d.ID, phase)
	eventually(t, 10*time.Second, "the "+string(phase)+" command runs", func() bool { return len(processesWith(string(g))) > 0 })
	b.restart(syscall.SIGKILL)
	counts.add(func(c *relCounts) { c.Runs++; c.BatonKills++ })
	counts.note("kill -9 while a command runs in phase "+string(phase), 1)
	// Recovery kills them before the API answers; allow the kernel a moment.
	deadline := time.Now().Add(5 * time.Second)
	left := processesWith(string(g))
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		left = processesWith(string(g))
	}
	counts.note("build and release processes left running after a restart", len(left))
	if len(left) > 0 {
		t.Errorf("invariant: %d processes of the %s command outlived kill -9 and restart: %+v", len(left), phase, left)
	}
	return d.ID
}

// killDuringUpload starts uploading an artifact to app, kill -9s baton once
// part of it is stored, and returns when the upload has failed. The caller
// restarts baton; the partial upload must not survive the restart.
func killDuringUpload(t testing.TB, b *batonProc, c *api.Client, app string) {
	t.Helper()
	uploads := func() map[string]bool {
		m, _ := filepath.Glob(filepath.Join(b.data, "artifacts", ".upload-*"))
		set := map[string]bool{}
		for _, f := range m {
			set[f] = true
		}
		return set
	}
	before := uploads()
	pr, pw := io.Pipe()
	result := make(chan error, 1)
	go func() {
		_, err := c.Deploy(context.Background(), app, pr, api.DeployOptions{ContentType: "application/zip", Message: "killed upload"})
		pr.CloseWithError(err)
		result <- err
	}()
	chunk := bytes.Repeat([]byte("partial upload "), 4096)
	written := make(chan struct{})
	go func() {
		defer close(written)
		// Then the upload stalls, open, until baton dies.
		for n := 0; n < 64<<20; n += len(chunk) {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
	}()
	stored := func() bool {
		for f := range uploads() {
			if !before[f] {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(30 * time.Second)
	for !stored() {
		select {
		case err := <-result:
			pw.CloseWithError(errors.New("upload ended"))
			<-written
			t.Fatalf("the upload ended before baton stored any of it: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s baton has stored nothing of the upload (artifacts/ holds %v)", uploads())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := b.signal(syscall.SIGKILL); err != nil {
		t.Errorf("kill -9 baton: %v", err)
	}
	if err := <-result; err == nil {
		t.Errorf("upload to a killed baton succeeded")
	}
	pw.CloseWithError(errors.New("baton was killed"))
	<-written
}

// killDuringRestore kill -9s a baton that was just (re)started as soon as
// it has recorded an instance process of the revisions it restores (others
// are then being started). The caller restarts it.
func killDuringRestore(t testing.TB, b *batonProc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(filepath.Join(b.data, "run", "*.pid")); len(m) > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := b.signal(syscall.SIGKILL); err != nil {
		t.Errorf("kill -9 baton: %v", err)
	}
}

// TestReliabilityKill9 deploys N times to two apps (mixed artifacts, some
// queued behind others) and, during a random share of the deployments,
// stops `baton serve` at a random event of the deployment's log: mostly kill
// -9, sometimes SIGTERM, sometimes kill -9 in the middle of an upload. It
// restarts baton each time (sometimes killing it again while it restores
// the live revisions); after each restart the invariants hold. In the end,
// interrupted deployments read failed (interrupted) and the others ended as
// their artifact says.
func TestReliabilityKill9(t *testing.T) {
	t.Parallel()
	cfg := reliabilityConfig()
	counts := scenarioCounts(t)
	rng := relRand(t)
	b := startRelBaton(t)
	c := b.client()
	ctx := context.Background()
	apps := []string{"k1", "k2"}
	for _, app := range apps {
		if _, err := c.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		mustSucceed(t, c, app, appDir(t, app+"-v0"))
	}
	load := startRelLoad(t, b.proxyAddr, []string{"k1.localhost", "k2.localhost"}, 2, 20*time.Millisecond)
	kinds := map[string]string{} // deployment id → artifact kind
	for i := 0; i < cfg.killDeployments && !t.Failed(); i++ {
		app := apps[rng.Intn(len(apps))]
		if i < 2 || rng.Intn(6) == 0 {
			// kill -9 while a build or release command runs: each at least once.
			phase := []baton.Phase{baton.PhaseBuilding, baton.PhaseReleasing}[rng.Intn(2)]
			if i < 2 {
				phase = []baton.Phase{baton.PhaseBuilding, baton.PhaseReleasing}[i]
			}
			kinds[killInCommand(t, b, c, app, phase, fmt.Sprintf("%s-v%d", app, i+1), counts)] = "held-" + string(phase)
			c = b.client()
			checkInvariants(t, b, counts, apps...)
			continue
		}
		dir, kind := killArtifact(t, rng, fmt.Sprintf("%s-v%d", app, i+1))
		d := deploy(t, c, app, dir, api.DeployOptions{Message: fmt.Sprintf("kill run %d (%s)", i, kind)})
		kinds[d.ID] = kind
		if i+1 < cfg.killDeployments && rng.Intn(4) == 0 {
			// A second one waits behind it (or runs beside it on the other app).
			i++
			app2 := apps[rng.Intn(len(apps))]
			dir2, kind2 := killArtifact(t, rng, fmt.Sprintf("%s-v%d", app2, i+1))
			kinds[deploy(t, c, app2, dir2, api.DeployOptions{Message: fmt.Sprintf("kill run %d (%s)", i, kind2)}).ID] = kind2
		}
		if rng.Float64() >= cfg.killRate {
			waitFinal(t, c, d.ID)
			continue
		}
		sig := syscall.SIGKILL
		switch r := rng.Intn(10); {
		case r == 0:
			waitFinal(t, c, d.ID)
			killDuringUpload(t, b, c, apps[rng.Intn(len(apps))])
			counts.note("kill -9 during an upload", 1)
		case r <= 2:
			sig = syscall.SIGTERM
			counts.note("SIGTERM at "+signalBatonAtEvent(t, b, c, d.ID, rng.Intn(18), sig), 1)
		default:
			counts.note("kill -9 at "+signalBatonAtEvent(t, b, c, d.ID, rng.Intn(18), sig), 1)
		}
		counts.add(func(c *relCounts) {
			c.Runs++
			if sig == syscall.SIGKILL {
				c.BatonKills++
			}
		})
		b.restart(sig)
		if rng.Intn(6) == 0 {
			killDuringRestore(t, b)
			b.restart(syscall.SIGKILL)
			counts.add(func(c *relCounts) { c.BatonKills++ })
			counts.note("kill -9 again while the restarted baton starts the live revisions", 1)
		}
		c = b.client()
		checkInvariants(t, b, counts, apps...)
	}
	checkInvariants(t, b, counts, apps...)
	counts.add(func(c *relCounts) { c.Runs++ })

	// Each deployment ended as its artifact says, unless a kill interrupted it.
	for _, app := range apps {
		ds, err := c.Deployments(ctx, app, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			kind, ok := kinds[d.ID]
			interrupted := d.State == baton.StateFailed && strings.HasPrefix(d.Error, baton.ReasonInterrupted)
			switch {
			case !ok:
			case interrupted:
				counts.note("deployments interrupted by a kill", 1)
			case kind == "failing" && d.State != baton.StateFailed:
				t.Errorf("deployment %s of a failing artifact: %s %q", d.ID, d.State, d.Error)
			case kind != "failing" && d.State != baton.StateSucceeded:
				t.Errorf("deployment %s (%s artifact) not interrupted by a kill: %s %q", d.ID, kind, d.State, d.Error)
			}
		}
		counts.check()
		counts.deployments(ds)
	}
	load.report(t, counts)
}
