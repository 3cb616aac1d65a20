package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/postgres"
	"github.com/jackc/pgx/v5"
)

// wakeTimeout bounds how long a notification may take to arrive.
const wakeTimeout = 5 * time.Second

func listen(t *testing.T, db *postgres.DB, channels ...string) *postgres.Listener {
	t.Helper()
	l, err := db.Listen(context.Background(), channels...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// next waits for the listener's next notification, failing the test after
// wakeTimeout.
func next(t *testing.T, l *postgres.Listener) postgres.Notification {
	t.Helper()
	select {
	case n, ok := <-l.C:
		if !ok {
			t.Fatal("listener closed")
		}
		return n
	case <-time.After(wakeTimeout):
		t.Fatalf("no notification within %v", wakeTimeout)
	}
	panic("unreachable")
}

func expect(t *testing.T, l *postgres.Listener, channel, payload string) {
	t.Helper()
	if n := next(t, l); n.Channel != channel || n.Payload != payload {
		t.Fatalf("notification = %+v, want %s %q", n, channel, payload)
	}
}

// TestListenWakesLeaseWaiter: a controller waiting for an app's lease is
// woken by the release itself, not by polling.
func TestListenWakesLeaseWaiter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	holder, err := db.AcquireLease(ctx, "app:busy", "holder", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t, db, postgres.ChannelLeaseReleased)
	refused := make(chan struct{})
	acquired := make(chan error, 1)
	go func() {
		// The waiter: refused, then blocked on the listener until woken.
		if _, err := db.AcquireLease(ctx, "app:busy", "waiter", time.Minute); baton.ErrorCode(err) != baton.ECONFLICT {
			acquired <- fmt.Errorf("first attempt: %v, want ECONFLICT", err)
			return
		}
		close(refused)
		for n := range l.C {
			if n.Payload == "app:busy" {
				_, err := db.AcquireLease(ctx, "app:busy", "waiter", time.Minute)
				acquired <- err
				return
			}
		}
	}()
	select {
	case <-refused:
	case err := <-acquired:
		t.Fatal(err)
	}
	released := time.Now()
	if err := db.ReleaseLease(ctx, baton.Fence{Key: holder.Key, Token: holder.Token}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acquired:
		if err != nil {
			t.Fatalf("woken waiter could not take the lease: %v", err)
		}
		t.Logf("waiter took the lease %v after the release", time.Since(released))
	case <-time.After(wakeTimeout):
		t.Fatalf("waiter not woken within %v of the release", wakeTimeout)
	}
}

// TestNotifications: which changes notify, with what payload; failed or
// refused changes notify nothing (checked by ordering: the notification
// that arrives next is the one from the change after them).
func TestNotifications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	l := listen(t, db, postgres.ChannelLeaseReleased, postgres.ChannelDeploymentQueued)
	leased := postgres.ChannelLeaseReleased
	queued := postgres.ChannelDeploymentQueued

	a := acquire(t, db, "app:a")
	if err := db.ReleaseLease(ctx, baton.Fence{Key: a.Key, Token: a.Token + 1}); err == nil {
		t.Fatal("stale release succeeded")
	}
	b := acquire(t, db, "app:b")
	if err := db.ReleaseLease(ctx, baton.Fence{Key: b.Key, Token: b.Token}); err != nil {
		t.Fatal(err)
	}
	expect(t, l, leased, "app:b")

	if _, err := db.BreakLease(ctx, "app:a"); err != nil {
		t.Fatal(err)
	}
	expect(t, l, leased, "app:a")

	if _, err := db.CreateApp(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	d := baton.Deployment{ID: baton.NewID("d-"), App: "web", Slot: baton.ProductionSlot, Policy: baton.PolicyFail, ArtifactDigest: "00", ArtifactType: "zip"}
	if _, err := db.Enqueue(ctx, baton.EnqueueRequest{Deployment: d}); err != nil {
		t.Fatal(err)
	}
	expect(t, l, queued, "web")
	refused := d
	refused.ID = baton.NewID("d-")
	if _, err := db.Enqueue(ctx, baton.EnqueueRequest{Deployment: refused}); baton.ErrorCode(err) != baton.ECONFLICT {
		t.Fatalf("second fail-policy deployment: %v, want ECONFLICT", err)
	}
	lease, err := db.AcquireLease(ctx, baton.AppLeaseKey("web"), d.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.StartDeployment(ctx, baton.Fence{Key: lease.Key, Token: lease.Token}, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FailInterrupted(ctx, nil); err != nil {
		t.Fatal(err)
	}
	expect(t, l, leased, "app:web")

	acquire(t, db, baton.AppLeaseKey("web"))
	if err := db.DeleteApp(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	expect(t, l, leased, "app:web")
}

// TestListenerStops: a listener ends with its context, with Close, and
// with the store, closing its channel each time.
func TestListenerStops(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	byCtx, err := db.Listen(ctx, postgres.ChannelLeaseReleased)
	if err != nil {
		t.Fatal(err)
	}
	byClose := listen(t, db, postgres.ChannelLeaseReleased)
	byStore := listen(t, db, postgres.ChannelLeaseReleased)

	cancel()
	waitClosed(t, byCtx)
	byClose.Close()
	waitClosed(t, byClose)
	db.Close() // returns only when the listener goroutines have ended
	select {
	case _, ok := <-byStore.C:
		if ok {
			t.Fatal("notification after the store closed")
		}
	default:
		t.Fatal("listener still open after the store closed")
	}
	if _, err := db.Listen(context.Background(), postgres.ChannelLeaseReleased); err == nil {
		t.Fatal("Listen on a closed store succeeded")
	}
}

func acquire(t *testing.T, db *postgres.DB, key string) baton.Lease {
	t.Helper()
	l, err := db.AcquireLease(context.Background(), key, "tester", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func waitClosed(t *testing.T, l *postgres.Listener) {
	t.Helper()
	select {
	case _, ok := <-l.C:
		if ok {
			t.Fatal("unexpected notification")
		}
	case <-time.After(wakeTimeout):
		t.Fatal("listener did not stop")
	}
}

// TestListenerReconnects: when its connection is killed, the listener
// reconnects, says that anything may have changed (empty payload), and
// goes on delivering.
func TestListenerReconnects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := newDatabase(t)
	db := openDSN(t, dsn)
	l := listen(t, db, postgres.ChannelLeaseReleased)

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listening backends (%v), want 1", killed, err)
	}
	expect(t, l, postgres.ChannelLeaseReleased, "")

	lease := acquire(t, db, "app:after")
	if err := db.ReleaseLease(ctx, baton.Fence{Key: lease.Key, Token: lease.Token}); err != nil {
		t.Fatal(err)
	}
	expect(t, l, postgres.ChannelLeaseReleased, "app:after")
}

// TestPlacementsNotify: SetPlacements and ReportPlacement tell every
// host's proxy, on ChannelRouting, that the app's routing changed; a
// report on a placement that is gone notifies nothing (checked by
// ordering, as in TestNotifications).
func TestPlacementsNotify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	if _, err := db.CreateApp(ctx, "placed"); err != nil {
		t.Fatal(err)
	}
	l := listen(t, db, postgres.ChannelRouting)
	p := baton.Placement{App: "placed", Slot: baton.ProductionSlot, Revision: "placed--000001", Host: "h1", Instances: 1, State: baton.PlacementStarting}
	if err := db.SetPlacements(ctx, p.App, p.Slot, p.Revision, []baton.Placement{p}); err != nil {
		t.Fatal(err)
	}
	expect(t, l, postgres.ChannelRouting, "placed")

	gone := p
	gone.Host = "h2"
	if err := db.ReportPlacement(ctx, gone); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("report on a host without a placement: %v, want ENOTFOUND", err)
	}
	p.State = baton.PlacementHealthy
	if err := db.ReportPlacement(ctx, p); err != nil {
		t.Fatal(err)
	}
	expect(t, l, postgres.ChannelRouting, "placed")

	if err := db.SetPlacements(ctx, p.App, p.Slot, p.Revision, nil); err != nil {
		t.Fatal(err)
	}
	expect(t, l, postgres.ChannelRouting, "placed")
}
