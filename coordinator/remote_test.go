package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/proxy"
	"github.com/batonhq/baton/sqlite"
)

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
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "baton.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
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
