package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// TestFailoverServesLiveRevision: two controllers on PostgreSQL; a
// deploys v1 and is killed with nothing queued behind. b adopts the app
// and serves v1 within its adoption time (three lease TTLs and a tick),
// with no deployment in between: b unpacks the revision from the artifact
// in the database, since it never had its files.
func TestFailoverServesLiveRevision(t *testing.T) {
	t.Parallel()
	a, b := twoControllers(t)
	ctx := context.Background()
	if _, err := a.client().CreateApp(ctx, "fv"); err != nil {
		t.Fatal(err)
	}
	built := mustSucceed(t, a.client(), "fv", appDir(t, "v1", withBuild("echo built > built.txt")))
	if _, err := os.Stat(filepath.Join(b.data, "apps", "fv", "revisions", built.Revision)); !os.IsNotExist(err) {
		t.Fatalf("b has the revision's files before the failover (%v): nothing to show", err)
	}
	a.stop(syscall.SIGKILL)
	killed := time.Now()
	restarted := false
	t.Cleanup(func() {
		// A restart of a stops the instances it left (should the test fail
		// before it restarts a itself).
		if !restarted {
			a.start()
		}
	})
	// Adoption after 3 TTLs of silence (5s each), seen at b's next tick;
	// starting v1 takes start_timeout at most.
	p := newProxyClient(b.proxyAddr)
	eventually(t, 45*time.Second, "b serves v1", func() bool {
		status, body, err := p.get("fv.localhost", "/")
		return err == nil && status == 200 && version(body) == "v1"
	})
	t.Logf("b serves v1 %s after a was killed", time.Since(killed).Round(time.Millisecond))
	c := b.client()
	st, err := c.Status(ctx, "fv")
	if err != nil || st.Controller != "ctl-b" || len(st.Conflicts) != 0 {
		t.Fatalf("status after failover: controller %q, conflicts %+v, %v", st.Controller, st.Conflicts, err)
	}
	// Only v1's deployment. A rebalance b queues itself (a scale by
	// "baton": a's share of the app's instances is on a lost host) may
	// follow the adoption; it deploys nothing.
	ds, _ := c.Deployments(ctx, "fv", 10)
	var others []string
	for _, d := range ds {
		switch {
		case d.ID == built.ID:
		case d.Kind == baton.KindScale && d.Author == "baton":
			t.Logf("after the adoption: %s %s %s (%s)", d.ID, d.Kind, d.State, d.Message)
		default:
			others = append(others, fmt.Sprintf("%s %s %s by %q (%q): %s", d.ID, d.Kind, d.State, d.Author, d.Message, d.Error))
		}
	}
	if len(others) > 0 {
		t.Fatalf("a deployment came in between, want only v1's:\n%s", strings.Join(others, "\n"))
	}
	if _, err := os.Stat(filepath.Join(b.data, "apps", "fv", "revisions", built.Revision, "built.txt")); err != nil {
		t.Errorf("the restored revision was not built again: %v", err)
	}
	// a's restart stops the instances it left.
	a.start()
	restarted = true
	eventually(t, 20*time.Second, "a's orphaned v1 instances stopped", func() bool {
		for _, rp := range revisionProcessesAll() {
			if rp.rev == built.Revision && strings.HasPrefix(rp.home, a.data) {
				return false
			}
		}
		return true
	})
}

// TestRestoreMissingRevisionFolder: on one controller, the live
// revision's folder is removed while baton is down. At start it is unpacked
// again from the stored artifact and built (status shows the revision as
// restoring meanwhile) and serves. With the artifact gone too, the restore
// cannot succeed: status reports conflict restore_failed saying why, and a
// new deployment replaces the revision.
func TestRestoreMissingRevisionFolder(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "rm"); err != nil {
		t.Fatal(err)
	}
	g := newGate(t)
	g.open(t)
	build := fmt.Sprintf("while [ ! -e %s ]; do sleep 0.02; done; echo v1-built > version.txt", g)
	d := mustSucceed(t, c, "rm", appDir(t, "v1", withBuild(build)))
	p := newProxyClient(b.proxyAddr)
	if a := ask(t, p, "rm.localhost"); a.Version != "v1-built" {
		t.Fatalf("serves %+v", a)
	}

	revDir := filepath.Join(b.data, "apps", "rm", "revisions", d.Revision)
	b.stop(syscall.SIGTERM)
	if err := os.RemoveAll(revDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(string(g)); err != nil {
		t.Fatal(err)
	}
	killAtCleanup(t, string(g))
	b.start()
	c = b.client()
	eventually(t, 20*time.Second, "status shows "+d.Revision+" restoring", func() bool {
		st, err := c.Status(ctx, "rm")
		return err == nil && len(st.Slots) > 0 && len(st.Slots[0].Revisions) == 1 &&
			st.Slots[0].Revisions[0].State == baton.RevisionRestoring && len(st.Conflicts) == 0
	})
	g.open(t)
	eventually(t, 30*time.Second, "the restored v1 serves", func() bool {
		status, body, err := p.get("rm.localhost", "/")
		return err == nil && status == 200 && version(body) == "v1-built"
	})
	if st, _ := c.Status(ctx, "rm"); st.Slots[0].Revisions[0].State != "" || len(st.Conflicts) != 0 {
		t.Fatalf("status after the restore: %+v, conflicts %+v", st.Slots[0].Revisions[0], st.Conflicts)
	}

	// Files and artifact gone: the restore cannot succeed.
	b.stop(syscall.SIGTERM)
	if err := os.RemoveAll(revDir); err != nil {
		t.Fatal(err)
	}
	arts, _ := filepath.Glob(filepath.Join(b.data, "artifacts", "*"))
	for _, a := range arts {
		if err := os.RemoveAll(a); err != nil {
			t.Fatal(err)
		}
	}
	b.start()
	c = b.client()
	var conflict baton.Conflict
	eventually(t, 20*time.Second, "conflict restore_failed", func() bool {
		st, err := c.Status(ctx, "rm")
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
	out, code := runCLI(t, b, "status", "rm", "--check")
	if code != 2 || !strings.Contains(out, "restore_failed") || !strings.Contains(out, "restore-failed") {
		t.Errorf("status --check: exit %d\n%s", code, out)
	}
	mustSucceed(t, c, "rm", appDir(t, "v2"))
	if st, _ := c.Status(ctx, "rm"); len(st.Conflicts) != 0 {
		t.Fatalf("conflicts after a new deployment: %+v", st.Conflicts)
	}
	if a := ask(t, p, "rm.localhost"); a.Version != "v2" {
		t.Fatalf("serves %+v", a)
	}
}
