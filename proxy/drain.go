package proxy

import (
	"context"
	"fmt"
	"time"
)

// Drain marks the upstreams at addrs draining and waits until none of them
// has a request in flight. From the moment it is called no new request is
// forwarded to them: a request that picked one of them from an older table
// picks again from the current one. Callers first publish a table without
// addrs (SetRoutes), then Drain them, then stop the instances.
//
// Upgraded connections (WebSockets) count as in flight until they close.
// Addresses the proxy does not know have nothing in flight. When ctx ends
// first, Drain returns an error that says how many requests were still in
// flight; the upstreams stay draining.
func (p *Proxy) Drain(ctx context.Context, addrs []string) error {
	start := time.Now()
	p.mu.Lock()
	ups := make([]*upstream, 0, len(addrs))
	for _, addr := range addrs {
		if u := p.reg[addr]; u != nil {
			u.draining.Store(true)
			ups = append(ups, u)
		}
	}
	p.mu.Unlock()

	// Waiting in turn takes as long as the slowest upstream: the others are
	// idle by the time their turn comes, or become so while we wait.
	for _, u := range ups {
		if err := u.waitIdle(ctx); err != nil {
			var n int64
			busy := 0
			for _, u := range ups {
				if c := u.inflight.Load(); c > 0 {
					n += c
					busy++
				}
			}
			// Upgraded connections would hold the instance forever; the
			// caller is about to stop it, so end them cleanly now.
			for _, u := range ups {
				u.closeTunnels()
			}
			p.log.Warn("proxy: drain gave up", "upstreams", addrs, "in_flight", n,
				"waited", time.Since(start).Round(time.Millisecond), "err", err)
			return fmt.Errorf("drain: %d %s still in flight on %d of %d upstreams: %w",
				n, plural(n, "request", "requests"), busy, len(ups), err)
		}
	}

	p.forget(ups)
	p.log.Debug("proxy: drained", "upstreams", addrs, "waited", time.Since(start).Round(time.Millisecond))
	return nil
}

// forget drops drained upstreams from the registry unless the current
// table still routes to them (Drain of a live address takes it out of
// rotation until SetRoutes lists it again) or a SetRoutes already replaced
// them with a fresh upstream for a reused address.
func (p *Proxy) forget(ups []*upstream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.table.Load()
	for _, u := range ups {
		if p.reg[u.addr] == u && t.ups[u.addr] != u {
			delete(p.reg, u.addr)
		}
		if t.ups[u.addr] != u {
			u.pool.closeIdle(true)
		}
	}
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
