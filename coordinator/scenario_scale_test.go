package coordinator_test

import (
	"context"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// TestScenarioScale: scaling production from the default 1 instance to 3
// starts them and replaces the running one with no failed request under
// load, and a scale back to 2 leaves two; a scale of 0 instances is
// refused at once and queues nothing; a scale of a slot where nothing runs
// is recorded, and the slot's next deployment starts that many.
func TestScenarioScale(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("sc", "staging")
	rev := b.mustDeploy("sc", appDir(t, "v1"), api.DeployOptions{}).Revision
	eventually(t, 10*time.Second, "1 instance of v1", func() bool { return b.instances() == 1 })

	load := b.startLoad(host("sc", ""), 4)
	d, err := b.c.Scale(ctx, "sc", api.ScaleOptions{ScaleRequest: api.ScaleRequest{Instances: 3}})
	if err != nil {
		t.Fatalf("scale to 3: %v", err)
	}
	if d = b.succeed(d.ID); d.Kind != baton.KindScale {
		t.Fatalf("scale = %s, want %s", d.Kind, baton.KindScale)
	}
	if got := b.routing("sc"); len(got) != 1 || got[rev] != 100 {
		t.Fatalf("routing after the scale: %v, want %s at 100", got, rev)
	}
	eventually(t, 10*time.Second, "3 instances of v1", func() bool { return b.instances() == 3 })
	eventually(t, 10*time.Second, "v1 answers under load", func() bool { return load.count("v1") > 20 })
	if _, failures := load.finish(); len(failures) > 0 {
		t.Fatalf("%d requests failed across the scale: %v", len(failures), failures[:min(3, len(failures))])
	}

	d, err = b.c.Scale(ctx, "sc", api.ScaleOptions{ScaleRequest: api.ScaleRequest{Instances: 2}})
	if err != nil {
		t.Fatalf("scale to 2: %v", err)
	}
	b.succeed(d.ID)
	eventually(t, 10*time.Second, "2 instances of v1", func() bool { return b.instances() == 2 })
	b.serves(host("sc", ""), "v1")

	before := len(b.history("sc"))
	if _, err := b.c.Scale(ctx, "sc", api.ScaleOptions{ScaleRequest: api.ScaleRequest{Instances: 0}}); baton.ErrorCode(err) != baton.EINVALID {
		t.Fatalf("scale to 0: %v, want %s", err, baton.EINVALID)
	}
	if after := len(b.history("sc")); after != before {
		t.Fatalf("a refused scale queued an operation: %d operations, then %d", before, after)
	}

	// Nothing runs in staging: the scale is kept for its next deployment.
	d, err = b.c.Scale(ctx, "sc", api.ScaleOptions{ScaleRequest: api.ScaleRequest{Slot: "staging", Instances: 3}})
	if err != nil {
		t.Fatalf("scale staging: %v", err)
	}
	b.succeed(d.ID)
	staged := b.mustDeploy("sc", appDir(t, "v2"), api.DeployOptions{Slot: "staging"}).Revision
	eventually(t, 10*time.Second, "3 instances of v2 in staging beside production's 2", func() bool {
		return b.instances() == 5 && len(b.processes(staged)) >= 3
	})
	b.serves(host("sc", "staging"), "v2")
}
