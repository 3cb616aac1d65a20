package proxy

import (
	"math/rand/v2"
	"sync/atomic"
)

// roundRobin hands out instance indexes in turn. It lives in the table, so
// a new table starts again at the first instance; that costs nothing.
type roundRobin struct{ n atomic.Uint64 }

// choice is the outcome of a pick.
type choice struct {
	u *upstream
	b *backend
	// setCookie: the route splits traffic and the request did not carry a
	// cookie for the revision that serves it, so the response sets one.
	setCookie bool
}

// pick chooses the upstream for one attempt: the pinned revision if pin is
// set; else, on a route that splits traffic, the revision in the sticky
// cookie while it still has weight; else a revision by weight. Within the
// revision it takes the next instance in turn that is healthy. It skips
// draining upstreams and the one at exclude (an instance that just refused
// a connection).
//
// Health only ever redirects: when the chosen revision has no healthy
// instance, the healthy revisions share its weight; when nothing healthy
// is left, any instance that is not draining is tried rather than fail.
//
// On a ServeLocal listener (local) only this host's instances serve.
//
// It returns a problem for the client when nothing can serve.
func (rt *route) pick(local bool, pin, cookie, exclude string) (choice, *problem) {
	if rt.forward {
		// The host behind it picks the revision, by pin and cookie too.
		if len(rt.live) == 0 {
			return choice{}, noLiveInstance(rt, "")
		}
		if u, _ := rt.live[0].instance(local, exclude); u != nil {
			return choice{u: u, b: rt.live[0]}, nil
		}
		return choice{}, noLiveInstance(rt, "")
	}
	if pin != "" {
		b := rt.revision(pin)
		if b == nil {
			return choice{}, unknownRevision(rt, pin)
		}
		if u, _ := b.instance(local, exclude); u != nil {
			return choice{u: u, b: b}, nil
		}
		return choice{}, noLiveInstance(rt, b.revision)
	}
	if rt.total == 0 {
		if hasWeight(rt.backends) { // weighted revisions without instances
			return choice{}, noLiveInstance(rt, "")
		}
		return choice{}, noLiveRevision(rt)
	}
	if len(rt.live) == 1 { // the common case: no split, no cookie
		b := rt.live[0]
		if u, _ := b.instance(local, exclude); u != nil {
			return choice{u: u, b: b}, nil
		}
		return choice{}, noLiveInstance(rt, "")
	}

	sticky := ""
	if cookie != "" {
		sticky = stickyRevision(cookie)
		if sticky != "" {
			if b := rt.liveRevision(sticky); b != nil {
				if u, healthy := b.instance(local, exclude); healthy {
					return choice{u: u, b: b}, nil
				}
			}
		}
	}
	c := rt.choose(local, exclude)
	if c.u == nil {
		return choice{}, noLiveInstance(rt, "")
	}
	c.setCookie = c.b.revision != sticky
	return c, nil
}

// choose picks by weight among the live backends that have a healthy
// instance, falling back to any usable instance.
func (rt *route) choose(local bool, exclude string) choice {
	b := rt.weighted()
	u, healthy := b.instance(local, exclude)
	if healthy {
		return choice{u: u, b: b}
	}
	// The chosen revision has no healthy instance: its weight goes to the
	// revisions that have one, in proportion to theirs.
	total := 0
	for _, o := range rt.live {
		if o.hasHealthy(local, exclude) {
			total += o.weight
		}
	}
	if total > 0 {
		n := rand.IntN(total)
		for _, o := range rt.live {
			if !o.hasHealthy(local, exclude) {
				continue
			}
			if n < o.weight {
				if u, healthy := o.instance(local, exclude); healthy {
					return choice{u: u, b: o}
				}
				break // turned unhealthy meanwhile; take anything below
			}
			n -= o.weight
		}
	}
	if u != nil {
		return choice{u: u, b: b}
	}
	for _, o := range rt.live {
		if u, _ := o.instance(local, exclude); u != nil {
			return choice{u: u, b: o}
		}
	}
	return choice{}
}

// weighted chooses a live backend with probability weight/total.
func (rt *route) weighted() *backend {
	if len(rt.live) == 1 {
		return rt.live[0]
	}
	// math/rand/v2's top-level functions use a per-thread generator: no lock,
	// no allocation, good enough to split traffic.
	n := rand.IntN(rt.total)
	for _, b := range rt.live {
		if n < b.weight {
			return b
		}
		n -= b.weight
	}
	return rt.live[len(rt.live)-1]
}

// liveRevision returns the live (weighted) backend serving the named
// revision, or nil.
func (rt *route) liveRevision(name string) *backend {
	for _, b := range rt.live {
		if b.revision == name {
			return b
		}
	}
	return nil
}

// instance returns the backend's next instance in turn that is neither
// draining nor exclude, preferring healthy ones; healthy tells which it
// got. It returns nil when every instance is draining or excluded.
func (b *backend) instance(local bool, exclude string) (u *upstream, healthy bool) {
	ups, rr := b.ups, &b.rr
	if local {
		ups, rr = b.locals, &b.lrr
	}
	n := uint64(len(ups))
	if n == 0 {
		return nil, false
	}
	start := rr.n.Add(1) - 1
	var fallback *upstream
	for i := range n {
		u := ups[(start+i)%n]
		if !usable(u, exclude) {
			continue
		}
		if u.healthy() {
			return u, true
		}
		if fallback == nil {
			fallback = u
		}
	}
	return fallback, false
}

func (b *backend) hasHealthy(local bool, exclude string) bool {
	ups := b.ups
	if local {
		ups = b.locals
	}
	for _, u := range ups {
		if usable(u, exclude) && u.healthy() {
			return true
		}
	}
	return false
}

func usable(u *upstream, exclude string) bool {
	return (exclude == "" || u.addr != exclude) && !u.draining.Load()
}

func hasWeight(bs []*backend) bool {
	for _, b := range bs {
		if b.weight > 0 {
			return true
		}
	}
	return false
}
