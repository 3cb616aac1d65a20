package proxy

import (
	"time"
)

// SetHealthy records whether the instance at addr passes its health
// checks. An unhealthy instance gets no new requests while another
// instance of its route can take them: first another instance of the same
// revision, else the healthy revisions share its revision's weight. When
// nothing in the route is healthy, requests still go to the instances
// rather than fail, since a health check can be wrong and a 503 is sure.
//
// The mark belongs to the address and survives SetRoutes for as long as
// the table routes to it; it may be set before the address is routed.
// Requests already in flight are not affected. The request path reads the
// mark with one atomic load: no lock, no allocation.
func (p *Proxy) SetHealthy(addr string, healthy bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unhealthy == nil {
		p.unhealthy = make(map[string]bool)
	}
	if healthy {
		delete(p.unhealthy, addr)
	} else {
		p.unhealthy[addr] = true
	}
	if u := p.reg[addr]; u != nil {
		if u.unhealthy.Swap(!healthy) != !healthy {
			p.log.Info("proxy: instance health changed", "upstream", addr, "healthy", healthy)
		}
	}
}

// refusedBackoff is how long an instance that refused a connection is
// treated as unhealthy: long enough that a crashed instance does not cost
// every request a failed dial, short enough that a restarted one is used
// again soon even when no health check reports it.
const refusedBackoff = time.Second

// markRefused records a refused connection to u (passive health).
func (u *upstream) markRefused(now time.Time) {
	u.failedUntil.Store(now.Add(refusedBackoff).UnixNano())
}

// healthy reports whether u may get requests while healthier instances
// exist.
func (u *upstream) healthy() bool {
	if u.unhealthy.Load() {
		return false
	}
	if until := u.failedUntil.Load(); until != 0 {
		// Only instances that recently refused pay for reading the clock.
		if time.Now().UnixNano() < until {
			return false
		}
		u.failedUntil.CompareAndSwap(until, 0)
	}
	return true
}
