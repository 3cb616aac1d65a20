package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/batonhq/baton"
)

func TestControllers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	for _, c := range []struct{ id, addr string }{{"c2", "10.0.0.2:7070"}, {"c1", "10.0.0.1:7070"}} {
		if err := db.RegisterController(ctx, baton.ControllerInfo{ID: c.id, Addr: c.addr}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := db.Controllers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "c1" || list[0].Addr != "10.0.0.1:7070" || list[1].ID != "c2" {
		t.Fatalf("controllers = %+v", list)
	}
	before := list[0]
	if before.Silence < 0 || before.LastSeen.Before(before.StartedAt) {
		t.Fatalf("fresh controller = %+v", before)
	}
	if err := db.HeartbeatController(ctx, "c1", baton.Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	list, _ = db.Controllers(ctx)
	if after := list[0]; !after.LastSeen.After(before.LastSeen) || !after.StartedAt.Equal(before.StartedAt) {
		t.Fatalf("heartbeat: last seen %v → %v, started %v → %v", before.LastSeen, after.LastSeen, before.StartedAt, after.StartedAt)
	}
	if err := db.DeregisterController(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if err := db.HeartbeatController(ctx, "c2", baton.Heartbeat{}); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("heartbeat of a deregistered controller: %v, want ENOTFOUND", err)
	}
	if list, _ = db.Controllers(ctx); len(list) != 1 {
		t.Fatalf("controllers after deregistering one = %+v", list)
	}
}

// TestDatabaseClock: leases are timed by the database's clock.
func TestDatabaseClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	before, err := db.Clock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l := acquire(t, db, "app:clock")
	after, err := db.Clock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.AcquiredAt.Before(before) || l.AcquiredAt.After(after) || l.ExpiresAt.Sub(l.AcquiredAt) != time.Minute {
		t.Fatalf("lease %v → %v, database clock read %v and %v around it", l.AcquiredAt, l.ExpiresAt, before, after)
	}
}

// TestTwoControllers: two stores on one database — two controllers — see
// one lock and one queue: racing lease requests from both have one winner
// at a time, and fail-policy requests sent to both have one winner.
func TestTwoControllers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := newDatabase(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	stores := []baton.Store{a, b}

	if _, err := a.CreateApp(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	startGun := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGun
			d := baton.Deployment{ID: baton.NewID("d-"), App: "shared", Slot: baton.ProductionSlot, Policy: baton.PolicyFail, ArtifactDigest: "00", ArtifactType: "zip"}
			_, errs[i] = stores[i%2].Enqueue(ctx, baton.EnqueueRequest{Deployment: d})
		}()
	}
	close(startGun)
	wg.Wait()
	accepted := 0
	for _, err := range errs {
		if err == nil {
			accepted++
		} else if baton.ErrorCode(err) != baton.ECONFLICT {
			t.Fatal(err)
		}
	}
	if accepted != 1 {
		t.Fatalf("%d fail-policy requests accepted across two controllers, want 1", accepted)
	}

	// Lease ping-pong: holders on both controllers take turns; while it
	// holds the lease, each writes its token with a fenced write and reads
	// it back — no one else can have written in between.
	var mu sync.Mutex
	var holders, maxHolders, turns int
	errc := make(chan error, n)
	key := baton.AppLeaseKey("shared")
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[i%2]
			for range 10 {
				l, err := s.AcquireLease(ctx, key, "h", time.Minute)
				if baton.ErrorCode(err) == baton.ECONFLICT {
					continue
				}
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				holders++
				maxHolders = max(maxHolders, holders)
				turns++
				mu.Unlock()
				f := baton.Fence{Key: l.Key, Token: l.Token}
				mine := fmt.Sprint(l.Token)
				err = s.PutSetting(ctx, f, baton.Setting{App: "shared", Slot: baton.ProductionSlot, Key: "HOLDER", Value: mine})
				if err == nil {
					var got []baton.Setting
					got, err = s.Settings(ctx, "shared", baton.ProductionSlot)
					if err == nil && (len(got) != 1 || got[0].Value != mine) {
						err = fmt.Errorf("holder %s read back %+v", mine, got)
					}
				}
				mu.Lock()
				holders--
				mu.Unlock()
				if err == nil {
					err = s.ReleaseLease(ctx, f)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if maxHolders != 1 || turns == 0 {
		t.Fatalf("%d simultaneous lease holders across two controllers in %d turns, want 1", maxHolders, turns)
	}
}

// TestPeerKey: every host sharing a database gets the same peer key, also
// when they all ask for it first at once; another database has another.
func TestPeerKey(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	keys := make([]string, 8)
	var wg sync.WaitGroup
	for i := range keys {
		db := openDSN(t, dsn)
		wg.Go(func() {
			k, err := db.PeerKey(context.Background())
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	if len(keys[0]) < 26 {
		t.Fatalf("peer key %q: want at least 128 random bits", keys[0])
	}
	for i, k := range keys {
		if k != keys[0] {
			t.Fatalf("host %d got peer key %q, host 0 %q", i, k, keys[0])
		}
	}
	other, err := open(t).PeerKey(context.Background())
	if err != nil || other == keys[0] {
		t.Fatalf("another database's peer key: %q %v, want one of its own", other, err)
	}
}

// TestPeerKeyFlagOfAnOlderRegistration: a host that sent the peer key,
// killed with -9 (its row stays) and started again with a baton from
// before the key (which registers without knowing the flag), no longer
// counts as sending it: otherwise the other hosts would refuse its
// key-less requests.
func TestPeerKeyFlagOfAnOlderRegistration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := newDatabase(t)
	db := openDSN(t, dsn)
	if err := db.RegisterController(ctx, baton.ControllerInfo{ID: "h1", Addr: "a", SendsPeerKey: true}); err != nil {
		t.Fatal(err)
	}
	sends := func() bool {
		t.Helper()
		cs, err := db.Controllers(ctx)
		if err != nil || len(cs) != 1 {
			t.Fatalf("controllers: %v %v", cs, err)
		}
		return cs[0].SendsPeerKey
	}
	if !sends() {
		t.Fatal("a host that registered sending the key: SendsPeerKey false")
	}
	// The registration of session 8's baton, word for word.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO controllers (id, addr, advertise, peer, started_at, last_seen, instances, draining)
		VALUES ($1, $2, $3, $4, now(), now(), 0, false)
		ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, advertise = excluded.advertise, peer = excluded.peer,
			started_at = excluded.started_at, last_seen = excluded.last_seen, instances = 0, draining = false`, "h1", "a", "", ""); err != nil {
		t.Fatal(err)
	}
	if sends() {
		t.Fatal("an older baton registered on the row: SendsPeerKey still true")
	}
}
