package coordinator_test

import (
	"context"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// TestScenarioAppOptionsAreNotSettings: `apps set --kudu-on-conflict`
// keeps the option on the app — no operation, no revision, nothing in the
// app's environment — and the old way, a setting, is refused naming the
// command.
func TestScenarioAppOptionsAreNotSettings(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("opt")
	d := b.mustDeploy("opt", appDir(t, "v1"), api.DeployOptions{})
	fail := "fail"
	a, err := b.c.UpdateApp(ctx, "opt", api.AppChange{KuduOnConflict: &fail})
	if err != nil || a.Options.KuduOnConflict != baton.PolicyFail {
		t.Fatalf("apps set: %+v %v", a.Options, err)
	}
	if h := b.history("opt"); len(h) != 1 {
		t.Fatalf("setting an option ran operations: %+v", h)
	}
	if ans := b.serves(host("opt", ""), "v1"); ans.Revision != d.Revision || ans.Settings["kudu_on_conflict"] != "" {
		t.Fatalf("the app sees %+v", ans)
	}
	_, err = b.c.SetSettings(ctx, "opt", baton.ProductionSlot, []baton.Setting{{Key: "kudu_on_conflict", Value: "fail"}}, "")
	if baton.ErrorCode(err) != baton.EINVALID || !strings.Contains(err.Error(), "baton apps set opt --kudu-on-conflict") {
		t.Fatalf("kudu_on_conflict as a setting: %v", err)
	}
	bad := "sometimes"
	if _, err := b.c.UpdateApp(ctx, "opt", api.AppChange{GitOnConflict: &bad}); baton.ErrorCode(err) != baton.EINVALID {
		t.Fatalf("a bad policy: %v", err)
	}
}
