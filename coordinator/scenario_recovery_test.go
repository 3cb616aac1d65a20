package coordinator_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/sqlite"
)

// TestScenarioRestartRestoresLive: close baton and open it again on the
// same data directory: the live revision serves again, the history is
// intact, and deployments number on.
func TestScenarioRestartRestoresLive(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	b.createApp("hello", "staging")
	d := b.mustDeploy("hello", appDir(t, "v1"), api.DeployOptions{})
	b.mustDeploy("hello", appDir(t, "s1"), api.DeployOptions{Slot: "staging"})
	b.restart()
	eventually(t, 30*time.Second, "v1 served again after restart", func() bool {
		status, body, err := b.p.get(host("hello", ""))
		return err == nil && status == 200 && strings.Contains(body, `"version":"v1"`)
	})
	b.serves(host("hello", "staging"), "s1")
	if got := b.get(d.ID); got.State != baton.StateSucceeded {
		t.Fatalf("deployment after restart: %+v", got)
	}
	d2 := b.mustDeploy("hello", appDir(t, "v2"), api.DeployOptions{})
	if d2.Revision != "hello--000003" {
		t.Fatalf("revision after restart = %s", d2.Revision)
	}
	b.serves(host("hello", ""), "v2")
}

// TestScenarioCloseMidDeployment: baton closed while a deployment is in a
// phase before switching, then opened on the same data directory: the
// deployment reads failed (interrupted), nothing of it is left or held,
// the previous revision served again, and the queued deployment runs.
func TestScenarioCloseMidDeployment(t *testing.T) {
	t.Parallel()
	setups := map[baton.Phase]func(t *testing.T, v string) string{
		baton.PhaseBuilding: func(t *testing.T, v string) string { return appDir(t, v, waitsInBuild(newGate(t))) },
		baton.PhaseStarting: func(t *testing.T, v string) string { return appDir(t, v, listensAfter(newGate(t))) },
		baton.PhaseHealthChecking: func(t *testing.T, v string) string {
			return appDir(t, v, unhealthy)
		},
	}
	for phase, setup := range setups {
		t.Run(string(phase), func(t *testing.T) {
			t.Parallel()
			b := startBaton(t)
			b.createApp("hello")
			b.mustDeploy("hello", appDir(t, "v1"), api.DeployOptions{})
			d := b.deploy("hello", setup(t, "v2"), api.DeployOptions{})
			queued := b.deploy("hello", appDir(t, "v3"), api.DeployOptions{})
			running := b.waitPhase(d.ID, phase)

			b.close()
			if pids := b.processes(""); len(pids) > 0 {
				t.Fatalf("processes left after close: %v", pids)
			}
			b.open()
			got := b.get(d.ID)
			if got.State != baton.StateFailed || !strings.HasPrefix(got.Error, baton.ReasonInterrupted) {
				t.Fatalf("after close in %s: %s %q, want failed (interrupted)", phase, got.State, got.Error)
			}
			if log, _ := b.c.Log(context.Background(), d.ID); !strings.Contains(log, "interrupted") {
				t.Errorf("log of the interrupted deployment does not say so:\n%s", log)
			}
			b.succeed(queued.ID)
			b.serves(host("hello", ""), "v3")
			if running.Revision != "" {
				got.Revision = running.Revision
			}
			b.assertClean(got)
			eventually(t, 10*time.Second, "v1 instances gone", func() bool { return len(b.processes("hello--000001")) == 0 })
		})
	}
}

// TestScenarioRecoveryOfLeftovers: what a baton that died left in its data
// directory — a deployment still running in the store with its lease, a
// temp folder — is cleaned up at the next start: the deployment fails as
// interrupted, the lease is released, tmp/ is emptied, the live revision
// serves, and the app deploys again.
func TestScenarioRecoveryOfLeftovers(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("hello")
	live := b.mustDeploy("hello", appDir(t, "v1"), api.DeployOptions{})
	b.close()

	// Write what a crash mid-deployment leaves, through the store.
	st, err := sqlite.Open(ctx, filepath.Join(b.data, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Enqueue(ctx, baton.EnqueueRequest{MaxQueue: 10, IdempotencyWindow: time.Hour, Deployment: baton.Deployment{
		ID: baton.NewID("d-"), App: "hello", Slot: baton.ProductionSlot, Kind: baton.KindDeploy, Policy: baton.PolicyQueue,
		ArtifactDigest: live.ArtifactDigest, ArtifactType: live.ArtifactType}})
	if err != nil {
		t.Fatal(err)
	}
	crashed := res.Deployment
	l, err := st.AcquireLease(ctx, baton.AppLeaseKey("hello"), crashed.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := baton.Fence{Key: l.Key, Token: l.Token}
	if _, err := st.StartDeployment(ctx, f, crashed.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateRunning(ctx, f, crashed.ID, baton.PhaseBuilding, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(b.data, "tmp", crashed.ID, "half"), 0o755); err != nil {
		t.Fatal(err)
	}

	b.open()
	got := b.get(crashed.ID)
	if got.State != baton.StateFailed || !strings.HasPrefix(got.Error, baton.ReasonInterrupted) {
		t.Fatalf("leftover running deployment after start: %s %q, want failed (interrupted)", got.State, got.Error)
	}
	b.assertClean(got)
	eventually(t, 30*time.Second, "v1 served again", func() bool {
		status, body, err := b.p.get(host("hello", ""))
		return err == nil && status == 200 && strings.Contains(body, `"version":"v1"`)
	})
	b.mustDeploy("hello", appDir(t, "v2"), api.DeployOptions{})
	b.serves(host("hello", ""), "v2")
}

// TestScenarioRestoreMissingRevisionFolder: a live revision whose folder
// is gone at start is extracted again from the stored artifact and built
// (status shows it restoring meanwhile) and serves. With the artifact gone
// too, status reports restore_failed saying why, and a new deployment
// replaces the revision.
func TestScenarioRestoreMissingRevisionFolder(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("rm")
	g := newGate(t)
	g.open(t)
	build := fmt.Sprintf("[build]\ncommand = 'while [ ! -e %s ]; do sleep 0.02; done; echo v1-built > version.txt'\n", g)
	d := b.mustDeploy("rm", appDir(t, "v1", withManifest(manifest(build))), api.DeployOptions{})
	b.serves(host("rm", ""), "v1-built")

	revDir := b.revisionDir("rm", d.Revision)
	b.close()
	if err := os.RemoveAll(revDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(string(g)); err != nil {
		t.Fatal(err)
	}
	b.open()
	eventually(t, 20*time.Second, "status shows "+d.Revision+" restoring", func() bool {
		st, err := b.c.Status(ctx, "rm")
		return err == nil && len(st.Slots) > 0 && len(st.Slots[0].Revisions) == 1 &&
			st.Slots[0].Revisions[0].State == baton.RevisionRestoring && len(st.Conflicts) == 0
	})
	g.open(t)
	eventually(t, 30*time.Second, "the restored v1 serves", func() bool {
		status, body, err := b.p.get(host("rm", ""))
		return err == nil && status == 200 && strings.Contains(body, `"version":"v1-built"`)
	})
	if st, _ := b.c.Status(ctx, "rm"); st.Slots[0].Revisions[0].State != "" || len(st.Conflicts) != 0 {
		t.Fatalf("status after the restore: %+v, conflicts %+v", st.Slots[0].Revisions[0], st.Conflicts)
	}

	// Files and artifact gone: the restore cannot succeed.
	b.close()
	if err := os.RemoveAll(revDir); err != nil {
		t.Fatal(err)
	}
	arts, _ := filepath.Glob(filepath.Join(b.data, "artifacts", "*"))
	for _, a := range arts {
		if err := os.RemoveAll(a); err != nil {
			t.Fatal(err)
		}
	}
	b.open()
	var conflict baton.Conflict
	eventually(t, 20*time.Second, "conflict restore_failed", func() bool {
		st, err := b.c.Status(ctx, "rm")
		for _, cf := range st.Conflicts {
			if cf.Code == baton.ConflictRestoreFailed {
				conflict = cf
			}
		}
		return err == nil && conflict.Code != ""
	})
	if !strings.Contains(conflict.Message, d.Revision) || !strings.Contains(conflict.Message, "artifact") || !strings.HasPrefix(conflict.Fix, "baton deploy rm ") {
		t.Errorf("conflict %+v does not say why or how to fix it", conflict)
	}
	b.mustDeploy("rm", appDir(t, "v2"), api.DeployOptions{})
	if st, _ := b.c.Status(ctx, "rm"); len(st.Conflicts) != 0 {
		t.Fatalf("conflicts after a new deployment: %+v", st.Conflicts)
	}
	b.serves(host("rm", ""), "v2")
}
