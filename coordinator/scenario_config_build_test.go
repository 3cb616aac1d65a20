package coordinator_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// TestScenarioSettingsChangeReusesBuild: a settings change restarts the
// app with the new environment on the build output of the live revision
// (no building phase, the build not run); a change of a setting that
// [build] env names builds again, with the setting in the build's
// environment.
func TestScenarioSettingsChangeReusesBuild(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("rb")
	builds := filepath.Join(t.TempDir(), "builds")
	set := func(ss ...baton.Setting) baton.Deployment {
		t.Helper()
		op, err := b.c.SetSettings(ctx, "rb", baton.ProductionSlot, ss, "")
		if err != nil {
			t.Fatal(err)
		}
		return b.succeed(op.ID)
	}
	count := func() int {
		data, _ := os.ReadFile(builds)
		return strings.Count(string(data), "\n")
	}
	set(baton.Setting{Key: "FLAVOR", Value: "a"})
	m := manifest("[build]\ncommand = 'printf \"built-%s\\n\" \"$FLAVOR\" > version.txt; echo \"$FEATURE\" >> " + builds + "'\nenv = [\"FLAVOR\"]\n")
	b.mustDeploy("rb", appDir(t, "v1", withManifest(m)), api.DeployOptions{})
	if a := b.serves(host("rb", ""), "built-a"); count() != 1 {
		t.Fatalf("%d builds after the deploy (%+v)", count(), a)
	}

	op := set(baton.Setting{Key: "FEATURE", Value: "on"})
	a := b.serves(host("rb", ""), "built-a")
	if a.Settings["FEATURE"] != "on" || a.Revision != "rb--000002" || op.Revision != "rb--000002" {
		t.Fatalf("after a settings change: %+v (operation %+v)", a, op)
	}
	log, _ := b.c.Log(ctx, op.ID)
	if count() != 1 || strings.Contains(log, "phase building") || !strings.Contains(log, "reusing the build output of rb--000001") {
		t.Fatalf("a runtime setting built again (%d builds):\n%s", count(), log)
	}

	op = set(baton.Setting{Key: "FLAVOR", Value: "b"})
	b.serves(host("rb", ""), "built-b")
	log, _ = b.c.Log(ctx, op.ID)
	if count() != 2 || !strings.Contains(log, "build-time setting FLAVOR changed") || !strings.Contains(log, "phase building") {
		t.Fatalf("a build-time setting did not build again (%d builds):\n%s", count(), log)
	}
}
