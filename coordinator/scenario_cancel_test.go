package coordinator_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// bigArtifact is a tar.gz of the example app with a large file of zeros
// (tiny compressed, packed by the system tar), whose extraction takes a
// while: it holds a deployment in phase extracting.
func bigArtifact(t testing.TB, v string) string {
	t.Helper()
	dir := appDir(t, v)
	f, err := os.Create(filepath.Join(dir, "zeros"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(200 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := filepath.Join(t.TempDir(), "big.tar.gz")
	if b, err := exec.Command("tar", "-I", "gzip -1", "-C", dir, "-cf", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, b)
	}
	return out
}

// deployFile uploads a .tar.gz artifact.
func (b *batonEnv) deployFile(app, path string, o api.DeployOptions) baton.Deployment {
	b.t.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	o.ContentType = "application/gzip"
	res, err := b.c.Deploy(context.Background(), app, f, o)
	if err != nil {
		b.t.Fatalf("deploy %s: %v", path, err)
	}
	return res.Deployment
}

// releaseWaitsFor is a manifest whose release command, holding the
// resources, waits until g opens.
func releaseWaitsFor(g gate, resources string) func(string) {
	return withManifest(manifest(fmt.Sprintf("[release]\ncommand = 'while [ ! -e %s ]; do sleep 0.02; done'\nresources = [%s]\n", g, resources)))
}

// TestScenarioCancelInEachPhase: cancelling before switching is clean and
// quick in every phase — no process, no revision folder, no temp files,
// no lease — and the previous revision answers throughout.
func TestScenarioCancelInEachPhase(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("hello")
	b.createApp("other")
	b.mustDeploy("hello", appDir(t, "v1"), api.DeployOptions{})

	phases := []struct {
		phase baton.Phase
		start func() baton.Deployment
		after func() // once cancelled: let whatever else holds go
	}{
		{phase: baton.PhaseExtracting, start: func() baton.Deployment {
			return b.deployFile("hello", bigArtifact(t, "v2"), api.DeployOptions{})
		}},
		{phase: baton.PhaseBuilding, start: func() baton.Deployment {
			return b.deploy("hello", appDir(t, "v2", waitsInBuild(newGate(t))), api.DeployOptions{})
		}},
		{phase: baton.PhaseReleasing, start: func() baton.Deployment {
			return b.deploy("hello", appDir(t, "v2", releaseWaitsFor(newGate(t), `"db:hello"`)), api.DeployOptions{})
		}},
		{phase: baton.PhaseStarting, start: func() baton.Deployment {
			return b.deploy("hello", appDir(t, "v2", listensAfter(newGate(t))), api.DeployOptions{})
		}},
		{phase: baton.PhaseHealthChecking, start: func() baton.Deployment {
			return b.deploy("hello", appDir(t, "v2", unhealthy), api.DeployOptions{})
		}},
	}
	// waiting-for-resource: another app's release holds the resource.
	held := newGate(t)
	var holder baton.Deployment
	phases = append(phases, struct {
		phase baton.Phase
		start func() baton.Deployment
		after func()
	}{phase: baton.PhaseWaitingForResource, start: func() baton.Deployment {
		holder = b.deploy("other", appDir(t, "o1", releaseWaitsFor(held, `"db:shared"`)), api.DeployOptions{})
		b.waitPhase(holder.ID, baton.PhaseReleasing)
		return b.deploy("hello", appDir(t, "v2", releaseWaitsFor(newGate(t), `"db:shared"`)), api.DeployOptions{})
	}, after: func() {
		held.open(t)
		b.succeed(holder.ID)
	}})

	for _, ph := range phases {
		t.Run(string(ph.phase), func(t *testing.T) {
			l := b.startLoad(host("hello", ""), 2)
			d := ph.start()
			b.waitPhase(d.ID, ph.phase)
			start := time.Now()
			got, err := b.c.Cancel(ctx, d.ID, "test cancels in "+string(ph.phase))
			took := time.Since(start)
			if err != nil {
				t.Fatalf("cancel in %s: %v", ph.phase, err)
			}
			versions, failures := l.finish()
			if got.State != baton.StateCancelled || !strings.Contains(got.Error, "test cancels in") {
				t.Fatalf("after cancel in %s: %s %q", ph.phase, got.State, got.Error)
			}
			// How long it took is a measurement, not a check: well under a
			// second on a quiet machine.
			t.Logf("cancel in %s took %s", ph.phase, took)
			if len(failures) > 0 || versions["v1"] == 0 || versions["v2"] > 0 {
				t.Fatalf("served during cancel: %v, failures %v", versions, failures)
			}
			if ph.after != nil {
				ph.after()
			}
			b.assertClean(got)
		})
	}
	// The app still deploys afterwards.
	b.mustDeploy("hello", appDir(t, "v3"), api.DeployOptions{})
	b.serves(host("hello", ""), "v3")
}

// TestScenarioPhaseDeadlines: a phase that makes no progress past its
// manifest timeout fails the deployment with a message naming the phase,
// leaves nothing behind, and the queue continues.
func TestScenarioPhaseDeadlines(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	b.createApp("slow")
	b.createApp("holder")
	cases := []struct {
		name  string
		dir   string
		wants []string
	}{
		{"build", appDir(t, "v1", withManifest(manifest("[build]\ncommand = 'sleep 600'\ntimeout = \"1s\"\n"))),
			[]string{"phase building", "deadline of 1s"}},
		{"release", appDir(t, "v1", withManifest(manifest("[release]\ncommand = 'sleep 600'\ntimeout = \"1s\"\n"))),
			[]string{"phase releasing", "deadline of 1s"}},
		{"start", appDir(t, "v1", listensAfter(newGate(t)), withManifest(strings.Replace(manifest(""), "20s", "1s", 1))),
			[]string{"phase starting", "deadline of 1s"}},
		// 8 s, not 1: the instance must be listening (out of phase
		// starting) before the deadline for the failure to name the
		// health check, and on a loaded machine starting alone took
		// over a second.
		{"health", appDir(t, "v1", unhealthy, withManifest(strings.Replace(manifest(""), "20s", "8s", 1))),
			[]string{"did not become healthy within start_timeout 8s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stuck := b.deploy("slow", tc.dir, api.DeployOptions{})
			next := b.deploy("slow", appDir(t, "ok-"+tc.name), api.DeployOptions{})
			d := b.waitFinal(stuck.ID)
			for _, w := range tc.wants {
				if d.State != baton.StateFailed || !strings.Contains(d.Error, w) {
					t.Fatalf("stuck %s: %s %q, want failed mentioning %q", tc.name, d.State, d.Error, w)
				}
			}
			b.succeed(next.ID)
			b.serves(host("slow", ""), "ok-"+tc.name)
			b.assertClean(d)
		})
	}
	t.Run("resource wait", func(t *testing.T) {
		g := newGate(t)
		h := b.deploy("holder", appDir(t, "h1", releaseWaitsFor(g, `"db:x"`)), api.DeployOptions{})
		b.waitPhase(h.ID, baton.PhaseReleasing)
		d := b.waitFinal(b.deploy("slow", appDir(t, "v2", withManifest(manifest("[release]\ncommand = 'true'\nresources = [\"db:x\"]\nresource_wait = \"1s\"\n"))), api.DeployOptions{}).ID)
		if d.State != baton.StateFailed || !strings.Contains(d.Error, "gave up waiting 1s for resource db:x") || !strings.Contains(d.Error, h.ID) {
			t.Fatalf("resource wait: %s %q", d.State, d.Error)
		}
		g.open(t)
		b.succeed(h.ID)
		b.assertClean(d)
	})
}

// TestScenarioUnhealthyRevisionFails: a revision that never passes its
// health check fails its deployment, the previous one serves throughout
// and nothing of the new one is left.
func TestScenarioUnhealthyRevisionFails(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	b.createApp("hello")
	b.mustDeploy("hello", appDir(t, "v2"), api.DeployOptions{})
	l := b.startLoad(host("hello", ""), 2)
	// start_timeout 10 s: the instance must listen before it, or the
	// failure names the starting phase's deadline instead of the health
	// check; with 2 s, a ./test.sh run on a loaded machine got "phase
	// starting made no progress within its deadline of 2s".
	bad := appDir(t, "v3", unhealthy, withManifest(strings.Replace(manifest(""), "20s", "10s", 1)))
	d := b.waitFinal(b.deploy("hello", bad, api.DeployOptions{}).ID)
	versions, failures := l.finish()
	if d.State != baton.StateFailed || !strings.Contains(d.Error, "healthy") {
		t.Fatalf("unhealthy deployment = %s: %q, want failed naming the health check", d.State, d.Error)
	}
	if len(failures) > 0 || versions["v3"] > 0 || versions["v2"] == 0 {
		t.Fatalf("during the failed deploy: versions %v, %d failures %v", versions, len(failures), failures)
	}
	b.assertClean(d)
	// A crashing app fails at once, with its exit.
	crash := appDir(t, "v4")
	writeFile(t, filepath.Join(crash, "baton.toml"), "[run]\ncommand = \"sh -c 'exit 3'\"\n[health]\npath = \"/healthz\"\ninterval = \"50ms\"\nstart_timeout = \"20s\"\n")
	d = b.waitFinal(b.deploy("hello", crash, api.DeployOptions{}).ID)
	if d.State != baton.StateFailed {
		t.Fatalf("crashing app: %s %q", d.State, d.Error)
	}
	b.assertClean(d)
	b.serves(host("hello", ""), "v2")
}
