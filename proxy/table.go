package proxy

import (
	"strings"
)

// Backend is one revision's share of a route: the instances that run it and
// the percentage of the route's traffic it gets.
type Backend struct {
	// Revision names the revision, e.g. "hello--000003". The Baton-Revision
	// request header pins a request to it.
	Revision string
	// Weight is the revision's share of traffic, 0..100. A backend with
	// weight 0 only gets requests pinned to it.
	Weight int
	// Addrs are the revision's instances on this host as "127.0.0.1:PORT".
	Addrs []string
	// Peers are other hosts' peer listeners (ADVERTISE:PORT) that run
	// instances of the revision, one entry per instance, so they take
	// their share of the requests. A request sent to one carries the
	// revision in the Baton-Revision header, for that host's proxy to
	// serve it from its own instances; listeners served with ServeLocal
	// never send requests on to a peer.
	Peers []string
}

// Route sends the requests for one Host to the revisions live in one slot
// of one app.
type Route struct {
	// Host is the request host without port, e.g. "hello.localhost" or
	// "hello-staging.localhost". SetRoutes lowercases it and strips a port.
	Host string
	// App and Slot name what the host serves; they appear in error pages.
	App, Slot string
	// Backends are the revisions that may serve the host.
	Backends []Backend
	// Forward marks a route to another host's proxy (its peer listener)
	// that runs the app: its one backend takes every request, and the
	// Baton-Revision header and the revision cookie pass through for that
	// proxy to act on. Listeners served with ServeLocal never take it.
	Forward bool
}

// table is one immutable routing table. SetRoutes builds a new one and
// publishes it whole, so the request path reads it without locks.
type table struct {
	routes map[string]*route
	// ups holds every upstream the table references, by address. Drain uses
	// it to decide whether a drained upstream may leave the registry.
	ups map[string]*upstream
}

// route is the request-path form of a Route.
type route struct {
	host, app, slot string
	// forward: see Route.Forward.
	forward bool
	// backends lists every backend in the order given, weight 0 included,
	// so a pin can reach any of them.
	backends []*backend
	// live are the backends with weight > 0 and at least one instance;
	// total is the sum of their weights.
	live  []*backend
	total int
	// stats counts the requests answered before a revision was chosen.
	stats *reqStats
}

// backend is the request-path form of a Backend.
type backend struct {
	revision string
	weight   int
	// ups are the instances and peers that serve it; locals only the
	// instances on this host (what a ServeLocal listener may use).
	ups, locals []*upstream
	rr, lrr     roundRobin
	// stats counts the requests the revision served in this slot.
	stats *reqStats
}

// maxHostLen bounds the host names the lookup lowercases on the stack. DNS
// names are at most 253 bytes; anything longer cannot be routed anyway.
const maxHostLen = 253

// emptyTable is what a new Proxy serves until the first SetRoutes.
func emptyTable() *table {
	return &table{routes: map[string]*route{}, ups: map[string]*upstream{}}
}

// lookup returns the route for a request's Host header (any case, with or
// without port or trailing dot), or nil. It does not allocate.
func (t *table) lookup(hostport string) *route {
	host := trimHost(hostport)
	if !hasUpper(host) {
		return t.routes[host]
	}
	if len(host) > maxHostLen {
		return nil
	}
	// Lowercasing into a stack buffer and indexing with string(buf) keeps
	// mixed-case hosts allocation-free too: the compiler does not copy a
	// []byte converted only for a map index.
	var buf [maxHostLen]byte
	b := buf[:len(host)]
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return t.routes[string(b)]
}

// trimHost strips a port and a trailing dot from a Host header value.
func trimHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i:], ']') < 0 {
		h = h[:i]
	}
	if n := len(h); n > 0 && h[n-1] == '.' {
		h = h[:n-1]
	}
	return h
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// normalizeHost is the canonical key of a host in a table.
func normalizeHost(h string) string {
	return strings.ToLower(trimHost(strings.TrimSpace(h)))
}

// upstreamLocked returns the table's upstream for addr, registering it
// with p (marked as a peer listener if peer) the first time.
func (t *table) upstreamLocked(p *Proxy, addr string, peer bool) *upstream {
	u := t.ups[addr]
	if u == nil {
		u = p.upstreamLocked(addr)
		t.ups[addr] = u
	}
	if peer && !u.peer.Load() {
		u.peer.Store(true)
	}
	return u
}

// revision returns the backend serving the named revision, or nil.
func (rt *route) revision(name string) *backend {
	for _, b := range rt.backends {
		if b.revision == name {
			return b
		}
	}
	return nil
}

// revisionNames lists the route's revisions for error messages.
func (rt *route) revisionNames() []string {
	names := make([]string, 0, len(rt.backends))
	for _, b := range rt.backends {
		names = append(names, b.revision)
	}
	return names
}

// SetRoutes replaces the routing table. It builds a new immutable table and
// publishes it with one atomic store, so requests never wait for it; a
// request that loaded the previous table finishes with it.
//
// Addresses the new table no longer lists stop taking requests at once (a
// request holding the old table picks again from the new one); Drain waits
// for the requests they are still serving. An address that comes back, even
// while an earlier Drain of it runs, starts fresh: not draining, nothing in
// flight.
//
// Hosts are matched case-insensitively, without port; when two routes share
// a host the last one wins. Weights are clamped to 0..100.
func (p *Proxy) SetRoutes(routes []Route) {
	p.mu.Lock()
	defer p.mu.Unlock()

	t := &table{
		routes: make(map[string]*route, len(routes)),
		ups:    make(map[string]*upstream),
	}
	p.statsGen++
	for _, r := range routes {
		host := normalizeHost(r.Host)
		if host == "" {
			p.log.Warn("proxy: route without host ignored", "app", r.App, "slot", r.Slot)
			continue
		}
		if _, dup := t.routes[host]; dup {
			p.log.Warn("proxy: duplicate route for host; the later one wins", "host", host, "app", r.App, "slot", r.Slot)
		}
		rt := &route{host: host, app: r.App, slot: r.Slot, forward: r.Forward, stats: p.statsLocked(r.App, r.Slot, "")}
		for _, b := range r.Backends {
			be := &backend{revision: b.Revision, weight: min(max(b.Weight, 0), 100),
				stats: p.statsLocked(r.App, r.Slot, b.Revision)}
			for _, addr := range b.Addrs {
				u := t.upstreamLocked(p, addr, r.Forward) // a Forward route's one address is a peer listener
				be.ups = append(be.ups, u)
				be.locals = append(be.locals, u)
			}
			for _, addr := range b.Peers {
				be.ups = append(be.ups, t.upstreamLocked(p, addr, true))
			}
			rt.backends = append(rt.backends, be)
			if be.weight > 0 && len(be.ups) > 0 {
				rt.live = append(rt.live, be)
				rt.total += be.weight
			}
		}
		t.routes[host] = rt
	}

	// Publish before sweeping: a request that backs off from a swept
	// upstream must find the new table when it loads again.
	p.table.Store(t)
	p.sweepLocked(t)
	p.sweepStatsLocked()
	p.log.Debug("proxy: routes set", "routes", len(t.routes), "upstreams", len(t.ups))
}
