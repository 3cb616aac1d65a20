package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// upstream is the state of one instance address that outlives table swaps:
// how many requests it is serving and whether it is draining. Tables point
// at upstreams; the Proxy's registry (guarded by Proxy.mu) owns them.
//
// Exact draining rests on a Dekker-style handshake between two goroutines
// that each write one variable and then read the other:
//
//	request: inflight.Add(1); if draining.Load() { back off }
//	Drain:   draining.Store(true); wait until inflight.Load() == 0
//
// Go's atomics are sequentially consistent, so at least one side sees the
// other's write: either Drain counts the request and waits for it, or the
// request sees draining and picks again from the table published before
// Drain began. No request is forwarded to an upstream Drain has let go of.
type upstream struct {
	addr string
	// peer marks another host's peer listener (Backend.Peers): requests
	// sent to it carry their revision in the Baton-Revision header.
	peer     atomic.Bool
	inflight atomic.Int64
	draining atomic.Bool
	// refusedLogged is when a refused connection was last logged (unix
	// nanoseconds), so a crashed instance costs one log line per interval,
	// not one per request.
	refusedLogged atomic.Int64

	// unhealthy is set by SetHealthy; failedUntil (unix nanoseconds) by the
	// data plane when a connection to the instance is refused. Either keeps
	// new requests away while another instance can take them (health.go).
	unhealthy   atomic.Bool
	failedUntil atomic.Int64

	// pool keeps idle connections for the data plane (Serve).
	pool connPool

	mu sync.Mutex
	// idle is closed, and replaced, each time inflight falls to zero while
	// draining, which wakes every Drain waiting on this upstream.
	idle chan struct{}
	// tunnels are the upgraded connections (WebSockets) to this instance;
	// a Drain that runs out of time closes them.
	tunnels map[*tunnel]struct{}
}

func newUpstream(addr string) *upstream {
	return &upstream{addr: addr, idle: make(chan struct{})}
}

// acquire counts a request on u unless u is draining. On false the caller
// must pick another upstream.
func (u *upstream) acquire() bool {
	u.inflight.Add(1)
	if u.draining.Load() {
		u.release()
		return false
	}
	return true
}

// release ends a request counted by acquire.
func (u *upstream) release() {
	if u.inflight.Add(-1) == 0 && u.draining.Load() {
		u.mu.Lock()
		close(u.idle)
		u.idle = make(chan struct{})
		u.mu.Unlock()
	}
}

// refusedLogInterval is how often a refusing upstream is logged.
const refusedLogInterval = 10 * time.Second

// logRefused reports whether the caller should log a refused connection to
// u now; at most one caller per refusedLogInterval gets true.
func (u *upstream) logRefused(now time.Time) bool {
	last := u.refusedLogged.Load()
	return now.UnixNano()-last >= int64(refusedLogInterval) && u.refusedLogged.CompareAndSwap(last, now.UnixNano())
}

// waitIdle waits until u has no request in flight. draining must already be
// set, otherwise no one signals the end of the last request.
func (u *upstream) waitIdle(ctx context.Context) error {
	for {
		// Take the channel before reading the counter: a release that brings
		// it to zero after the read closes this channel or a later one, and
		// a later one means this one was closed already.
		u.mu.Lock()
		idle := u.idle
		u.mu.Unlock()
		if u.inflight.Load() == 0 {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// upstreamLocked returns the live upstream for addr, creating it when the
// registry has none or only a draining one. A draining upstream is never
// revived: the address may belong to a new process now (ports get reused),
// and a Drain still waiting on the old object must keep its meaning.
// p.mu must be held.
func (p *Proxy) upstreamLocked(addr string) *upstream {
	if u := p.reg[addr]; u != nil && !u.draining.Load() {
		return u
	}
	u := newUpstream(addr)
	u.unhealthy.Store(p.unhealthy[addr])
	p.reg[addr] = u
	return u
}

// sweepLocked drops upstreams that the current table does not reference.
// Each is marked draining first, so a request that still holds an older
// table backs off from it; those with nothing in flight then leave the
// registry, the rest stay until a Drain or a later sweep sees them idle.
// p.mu must be held.
func (p *Proxy) sweepLocked(t *table) {
	for addr, u := range p.reg {
		if t.ups[addr] == u {
			continue
		}
		u.draining.Store(true)
		if u.inflight.Load() == 0 {
			delete(p.reg, addr)
			u.pool.closeIdle(true)
		}
	}
	// Health marks follow addresses the table routes to; a port that
	// leaves the table may come back as another process.
	for addr := range p.unhealthy {
		if _, ok := t.ups[addr]; !ok {
			delete(p.unhealthy, addr)
		}
	}
}

// InFlight reports how many requests the upstream at addr is serving now
// (0 for an address the proxy does not know).
func (p *Proxy) InFlight(addr string) int64 {
	p.mu.Lock()
	u := p.reg[addr]
	p.mu.Unlock()
	if u == nil {
		return 0
	}
	return u.inflight.Load()
}
