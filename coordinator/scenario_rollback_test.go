package coordinator_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// TestScenarioRollback: after v1, v2, v3, a rollback without a target
// puts v2 back with no failed request under load; a rollback to v1 after
// v1's folder was pruned unpacks it again and serves it; while the app is
// frozen a rollback runs and a deploy is refused; bad targets are refused
// at once, naming the revisions that can be rolled back to.
func TestScenarioRollback(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("rb")
	var revs []string
	for _, v := range []string{"v1", "v2", "v3"} {
		revs = append(revs, b.mustDeploy("rb", appDir(t, v), api.DeployOptions{}).Revision)
	}
	b.serves(host("rb", ""), "v3")

	load := b.startLoad(host("rb", ""), 4)
	d, err := b.c.Rollback(ctx, "rb", "", baton.RollbackParams{}, "", "alice")
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if d = b.succeed(d.ID); d.Kind != baton.KindRollback || d.Revision != revs[1] {
		t.Fatalf("rollback = %s to %s, want a rollback to %s", d.Kind, d.Revision, revs[1])
	}
	eventually(t, 10*time.Second, "v2 answers under load", func() bool { return load.count("v2") > 20 })
	if _, failures := load.finish(); len(failures) > 0 {
		t.Fatalf("%d requests failed across the rollback: %v", len(failures), failures[:min(3, len(failures))])
	}
	if got := b.routing("rb"); len(got) != 1 || got[revs[1]] != 100 {
		t.Fatalf("routing after rollback: %v, want %s at 100", got, revs[1])
	}
	eventually(t, 10*time.Second, "v3 stopped", func() bool { return len(b.processes(revs[2])) == 0 })

	// v1's folder is gone (pruned, a new disk): it is unpacked again.
	if err := os.RemoveAll(filepath.Join(b.data, "apps", "rb", "revisions", revs[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.Freeze(ctx, "rb", "incident 7", false); err != nil {
		t.Fatal(err)
	}
	d, err = b.c.Rollback(ctx, "rb", "", baton.RollbackParams{To: revs[0]}, "", "")
	if err != nil {
		t.Fatalf("rollback to %s while frozen: %v", revs[0], err)
	}
	b.succeed(d.ID)
	b.serves(host("rb", ""), "v1")
	if _, err := b.deployErr("rb", appDir(t, "v4"), api.DeployOptions{}); baton.ErrorCode(err) != baton.EFROZEN {
		t.Fatalf("deploy while frozen: %v, want it refused", err)
	}

	for name, to := range map[string]string{
		"another app's revision": "other--000001",
		"the serving revision":   revs[0],
		"an unknown deployment":  "d-nothing",
	} {
		_, err := b.c.Rollback(ctx, "rb", "", baton.RollbackParams{To: to}, "", "")
		if baton.ErrorCode(err) != baton.EUNPROCESSABLE || !strings.Contains(baton.ErrorMessage(err), revs[1]) {
			t.Errorf("rollback to %s (%s): %v, want 422 naming %s as a revision to roll back to", to, name, err, revs[1])
		}
	}
	// By deployment id, with the slot's settings of now: a new revision
	// of v2's code.
	if _, err := b.c.Unfreeze(ctx, "rb"); err != nil {
		t.Fatal(err)
	}
	var v2dep string
	for _, h := range b.history("rb") {
		if h.Kind == baton.KindDeploy && h.Revision == revs[1] {
			v2dep = h.ID
		}
	}
	d, err = b.c.Rollback(ctx, "rb", "", baton.RollbackParams{To: v2dep, CurrentSettings: true}, "", "")
	if err != nil {
		t.Fatalf("rollback to deployment %s: %v", v2dep, err)
	}
	d = b.succeed(d.ID)
	if d.Revision == revs[1] || !strings.HasPrefix(d.Revision, "rb--") {
		t.Fatalf("rollback with current settings made %s, want a new revision of %s's code", d.Revision, revs[1])
	}
	b.serves(host("rb", ""), "v2")
	b.noLocks()
}
