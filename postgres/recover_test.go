package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/postgres"
)

// TestFailExpired: a deployment whose controller stopped renewing is
// failed as interrupted once its lease has expired, and its queue can go
// on; a deployment whose lease is alive (another controller's) is not
// touched.
func TestFailExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	l := listen(t, db, postgres.ChannelLeaseReleased)
	startUnder := func(app string, ttl time.Duration) (baton.Deployment, baton.Fence) {
		t.Helper()
		if _, err := db.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		d := baton.Deployment{ID: baton.NewID("d-"), App: app, Slot: baton.ProductionSlot, Policy: baton.PolicyQueue, ArtifactDigest: "00", ArtifactType: "zip"}
		if _, err := db.Enqueue(ctx, baton.EnqueueRequest{Deployment: d}); err != nil {
			t.Fatal(err)
		}
		lease, err := db.AcquireLease(ctx, baton.AppLeaseKey(app), d.ID, ttl)
		if err != nil {
			t.Fatal(err)
		}
		f := baton.Fence{Key: lease.Key, Token: lease.Token}
		if _, err := db.StartDeployment(ctx, f, d.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateRunning(ctx, f, d.ID, baton.PhaseBuilding, ""); err != nil {
			t.Fatal(err)
		}
		return d, f
	}
	// A microsecond lease has expired by the database's next transaction.
	dead, deadFence := startUnder("crashed", time.Microsecond)
	alive, _ := startUnder("healthy", time.Minute)

	failed, err := db.FailExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].ID != dead.ID || failed[0].State != baton.StateFailed ||
		!strings.HasPrefix(failed[0].Error, baton.ReasonInterrupted+": ") || !strings.HasSuffix(failed[0].Error, "building") {
		t.Fatalf("FailExpired = %+v, want %s failed as interrupted in phase building", failed, dead.ID)
	}
	expect(t, l, postgres.ChannelLeaseReleased, deadFence.Key)
	if _, err := db.Lease(ctx, deadFence.Key); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("expired lease still recorded: %v", err)
	}
	if err := db.UpdateRunning(ctx, deadFence, dead.ID, baton.PhaseStarting, ""); !errors.Is(err, baton.ErrStaleToken) {
		t.Fatalf("the dead controller's next write: %v, want ErrStaleToken", err)
	}
	if d, _ := db.Deployment(ctx, alive.ID); d.State != baton.StateRunning {
		t.Fatalf("deployment under a live lease became %s", d.State)
	}
	if again, err := db.FailExpired(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second FailExpired = %+v, %v; want nothing", again, err)
	}
}
