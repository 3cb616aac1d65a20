package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/proxy"
	"github.com/batonhq/baton/sqlite"
)

// openSQLite opens a SQLite store in a temporary folder for tb.
func openSQLite(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "baton.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// revisionsCounted is a store that counts the reads of an app's revisions.
type revisionsCounted struct {
	baton.Store
	reads atomic.Int64
}

func (s *revisionsCounted) Revisions(ctx context.Context, app string) ([]baton.Revision, error) {
	s.reads.Add(1)
	return s.Store.Revisions(ctx, app)
}

// TestRemoteRoutingReadOncePerGeneration: a host refreshing what other
// hosts own reads an app's routing again only when its routing generation
// moved or the app is another one of the same name; routing of apps that
// are gone is dropped.
func TestRemoteRoutingReadOncePerGeneration(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	store := &revisionsCounted{Store: db}
	c := &Coordinator{cfg: Config{Store: store}}
	a, err := db.CreateApp(ctx, "spread")
	if err != nil {
		t.Fatal(err)
	}
	g := &c.remoteRouting
	read := func(a baton.App, want int64) {
		t.Helper()
		if _, err := g.of(ctx, c, a); err != nil {
			t.Fatal(err)
		}
		if n := store.reads.Load(); n != want {
			t.Fatalf("app %s at generation %d: %d reads of its revisions in all, want %d", a.Name, a.RoutingGeneration, n, want)
		}
	}
	read(a, 1)
	read(a, 1) // same generation: kept
	a.RoutingGeneration++
	read(a, 2)
	read(a, 2)
	again := a
	again.CreatedAt = a.CreatedAt.Add(time.Second) // deleted and created again
	read(again, 3)

	g.forget(map[string]bool{"other": true})
	read(again, 4)
}

// BenchmarkRemoteRouting: the routing a refresh needs of 1,000 apps spread
// over hosts, none of which changed since the last refresh (kept), against
// reading each app's routing from the store (read, as every refresh did).
func BenchmarkRemoteRouting(b *testing.B) {
	ctx := context.Background()
	db := openSQLite(b)
	c := &Coordinator{cfg: Config{Store: db}}
	var apps []baton.App
	for i := range 1000 {
		a, err := db.CreateApp(ctx, fmt.Sprintf("app%04d", i))
		if err != nil {
			b.Fatal(err)
		}
		apps = append(apps, a)
	}
	for _, bc := range []struct {
		name string
		of   func(baton.App) (map[string][]baton.RevisionWeight, error)
	}{
		{"kept", func(a baton.App) (map[string][]baton.RevisionWeight, error) { return c.remoteRouting.of(ctx, c, a) }},
		{"read", func(a baton.App) (map[string][]baton.RevisionWeight, error) { return c.routingOf(ctx, a) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				for _, a := range apps {
					if _, err := bc.of(a); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// TestPeerKeyRequiredOnceEveryHostSendsIt: a host's peer listener asks for
// the cluster's key only while no live host of an older baton, which sends
// none, is left; without a key of its own it never asks.
func TestPeerKeyRequiredOnceEveryHostSendsIt(t *testing.T) {
	p := proxy.New(proxy.Config{PeerKey: "k"})
	c := &Coordinator{cfg: Config{Proxy: p}, log: slog.New(slog.DiscardHandler)}
	for _, step := range []struct {
		keyless []string
		want    bool
	}{
		{[]string{"host-old"}, false}, // mid-upgrade
		{nil, true},                   // every live host sends it
		{nil, true},
		{[]string{"host-old"}, false}, // an older host joined again
	} {
		c.requirePeerKey(step.keyless)
		if got := p.PeerKeyRequired(); got != step.want {
			t.Fatalf("keyless hosts %v: key required %v, want %v", step.keyless, got, step.want)
		}
	}
	q := proxy.New(proxy.Config{})
	c.cfg.Proxy = q
	if c.requirePeerKey(nil); q.PeerKeyRequired() {
		t.Fatal("a proxy without a peer key asks for one")
	}
}

// placementsSlowOnce answers Placements with host-4 still starting, then,
// on the next call, only when its context is done: the deadline of a
// start comes while the store is being read.
type placementsSlowOnce struct {
	baton.Store
	calls atomic.Int64
}

func (s *placementsSlowOnce) Placements(ctx context.Context, f baton.PlacementFilter) ([]baton.Placement, error) {
	if s.calls.Add(1) == 1 {
		return []baton.Placement{
			{App: f.App, Slot: f.Slot, Revision: f.Revision, Host: "host-2", Instances: 1, State: baton.PlacementHealthy},
			{App: f.App, Slot: f.Slot, Revision: f.Revision, Host: "host-4", Instances: 1, State: baton.PlacementStarting},
		}, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestAwaitSharesNamesTheLateHostAtItsDeadline: a start whose deadline
// comes while the store is read still names the host that did not report
// its instances healthy, as when it comes between two reads.
func TestAwaitSharesNamesTheLateHostAtItsDeadline(t *testing.T) {
	c := &Coordinator{cfg: Config{Store: &placementsSlowOnce{}}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	pl := &placement{app: "spread", slot: baton.ProductionSlot, rev: "spread--000003", hosts: map[string]int{"host-2": 1, "host-4": 1}}
	err := c.awaitShares(ctx, pl)
	var uh unhealthy
	if !errors.As(err, &uh) || !strings.Contains(err.Error(), "host(s) host-4 did not report") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("awaitShares at its deadline: %v, want host-4 named as late", err)
	}
}
