package proxy

import (
	"math/rand/v2"
	"sync/atomic"
)

// roundRobin hands out instance indexes in turn. It lives in the table, so
// a new table starts again at the first instance; that costs nothing.
type roundRobin struct{ n atomic.Uint64 }

// pick chooses the upstream for one attempt: the pinned revision if pin is
// set, otherwise a revision by weight, then an instance of it round-robin.
// It skips draining upstreams and the one at exclude (an instance that just
// refused a connection). When every instance of the chosen revision is
// skipped, another live revision serves rather than fail the request.
//
// It returns a problem for the client when nothing can serve.
func (rt *route) pick(pin, exclude string) (*upstream, *problem) {
	if pin != "" {
		b := rt.revision(pin)
		if b == nil {
			return nil, unknownRevision(rt, pin)
		}
		if u := b.next(exclude); u != nil {
			return u, nil
		}
		return nil, noLiveInstance(rt, b.revision)
	}
	if rt.total == 0 {
		if hasWeight(rt.backends) { // weighted revisions without instances
			return nil, noLiveInstance(rt, "")
		}
		return nil, noLiveRevision(rt)
	}
	b := rt.weighted()
	if u := b.next(exclude); u != nil {
		return u, nil
	}
	for _, other := range rt.live {
		if other == b {
			continue
		}
		if u := other.next(exclude); u != nil {
			return u, nil
		}
	}
	return nil, noLiveInstance(rt, "")
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

// next returns the backend's next instance in turn that is neither draining
// nor exclude, or nil.
func (b *backend) next(exclude string) *upstream {
	n := uint64(len(b.ups))
	if n == 0 {
		return nil
	}
	start := b.rr.n.Add(1) - 1
	for i := range n {
		u := b.ups[(start+i)%n]
		if u.addr != exclude && !u.draining.Load() {
			return u
		}
	}
	return nil
}

func hasWeight(bs []*backend) bool {
	for _, b := range bs {
		if b.weight > 0 {
			return true
		}
	}
	return false
}
