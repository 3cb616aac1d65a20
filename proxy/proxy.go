// Package proxy routes requests by Host to live instances, weighted, with
// exact draining.
//
// It has two halves. The routing half (table.go, pick.go, upstream.go,
// drain.go) decides which instance address serves a request and counts the
// request so Drain can wait for it. The forwarding half (forward.go) moves
// bytes to that address and back behind the small forwarder interface, so a
// faster data plane can replace httputil.ReverseProxy without touching
// routing or draining.
package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Proxy. The zero value works.
type Config struct {
	// Logger receives upstream errors and drain events; nil discards them.
	Logger *slog.Logger
	// Domain is the parent domain apps are served under ("localhost" when
	// empty); error pages name it.
	Domain string
	// UpstreamHeaderTimeout bounds the wait for an upstream's response
	// headers once the request is sent (60s when zero). Bodies may stream
	// for longer.
	UpstreamHeaderTimeout time.Duration
}

// Proxy is an http.Handler that routes each request by its Host header to
// an instance of the revision(s) live in the matching app slot.
type Proxy struct {
	log           *slog.Logger
	domain        string
	headerTimeout time.Duration
	fwd           forwarder

	// table is read on every request without locks; SetRoutes replaces it.
	table atomic.Pointer[table]

	// mu serializes SetRoutes and Drain's bookkeeping and guards reg.
	mu sync.Mutex
	// reg holds the state of every upstream address a table references or
	// a Drain may still wait for, by address.
	reg map[string]*upstream
}

var _ http.Handler = (*Proxy)(nil)

// maxPicks bounds how often one request picks again after finding its
// upstream draining. Each retry reloads the table, which was replaced
// before the Drain began, so a second pick almost always succeeds.
const maxPicks = 4

// New returns a Proxy with an empty routing table: every host is unknown
// until SetRoutes. It starts no goroutines.
func New(cfg Config) *Proxy {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.UpstreamHeaderTimeout <= 0 {
		cfg.UpstreamHeaderTimeout = 60 * time.Second
	}
	p := &Proxy{
		log:           cfg.Logger,
		domain:        cfg.Domain,
		headerTimeout: cfg.UpstreamHeaderTimeout,
		fwd:           newReverseProxy(cfg.UpstreamHeaderTimeout, cfg.Logger),
		reg:           make(map[string]*upstream),
	}
	p.table.Store(emptyTable())
	return p
}

// ServeHTTP routes r by its Host header and forwards it to an instance.
// Errors are RFC 9457 problems: 404 for an unknown host or pinned
// revision, 503 when nothing is live, 502 when the instance fails, 504 when
// it does not answer in time.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	var pin string
	if v := r.Header["Baton-Revision"]; len(v) > 0 {
		pin = v[0]
	}

	u, rt, pb := p.acquire(host, pin, "")
	if pb != nil {
		pb.write(w)
		return
	}
	err := p.forward(w, r, u)
	if err == nil {
		return
	}
	if isRefused(err) && bodyless(r) {
		// Nothing reached the instance and there is no body to replay, so
		// another instance may take the request: a crashed instance must not
		// become a 502 while a healthy one exists.
		if u.logRefused(time.Now()) {
			p.log.Warn("proxy: upstream refused connection; retrying on another instance",
				"host", rt.host, "app", rt.app, "slot", rt.slot, "upstream", u.addr, "err", err)
		}
		u2, rt2, pb := p.acquire(host, pin, u.addr)
		switch {
		case rt2 == nil: // the host went away meanwhile
			pb.write(w)
			return
		case pb == nil:
			u, rt = u2, rt2
			if err = p.forward(w, r, u); err == nil {
				return
			}
		}
		// Otherwise no other instance exists: answer for the refusal.
	}
	p.upstreamFailed(w, r, rt, u, err)
}

// forward runs one attempt on u and ends its count even when the data
// plane aborts the response with a panic; a lost release would make every
// later Drain of u wait forever.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, u *upstream) error {
	defer u.release()
	return p.fwd.forward(w, r, u.addr)
}

// acquire picks an upstream for host and counts a request on it, picking
// again from the latest table while the one it got is draining. On failure
// it returns the problem to answer with; rt is nil only for an unknown host.
func (p *Proxy) acquire(host, pin, exclude string) (*upstream, *route, *problem) {
	var rt *route
	for range maxPicks {
		t := p.table.Load()
		if rt = t.lookup(host); rt == nil {
			return nil, nil, unknownHost(normalizeHost(host), p.domain)
		}
		u, pb := rt.pick(pin, exclude)
		if pb != nil {
			// Seeing an upstream draining implies seeing the table that
			// replaced it (SetRoutes publishes before anything drains), so
			// a pick that failed on draining upstreams tries the new table.
			if p.table.Load() != t {
				continue
			}
			return nil, rt, pb
		}
		if u.acquire() {
			return u, rt, nil
		}
	}
	return nil, rt, noLiveInstance(rt, pin)
}

// upstreamFailed answers a request whose forward wrote nothing.
func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, rt *route, u *upstream, err error) {
	if r.Context().Err() != nil {
		// The client went away (or the server is shutting down): nobody
		// reads the answer and the upstream did nothing wrong. 499 is
		// nginx's "client closed request", for access logs.
		p.log.Debug("proxy: client went away", "host", rt.host, "upstream", u.addr, "err", err)
		w.WriteHeader(499)
		return
	}
	attrs := []any{"host", rt.host, "app", rt.app, "slot", rt.slot, "upstream", u.addr,
		"method", r.Method, "path", r.URL.Path, "err", err}
	if isTimeout(err) {
		p.log.Warn("proxy: upstream timed out", attrs...)
		gatewayTimeout(rt, p.headerTimeout).write(w)
		return
	}
	p.log.Error("proxy: upstream failed", attrs...)
	badGateway(rt).write(w)
}

// bodyless reports whether r carries no body, so it can be sent again.
func bodyless(r *http.Request) bool {
	return r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
}

// Close closes idle upstream connections. The Proxy stays usable.
func (p *Proxy) Close() error {
	p.fwd.closeIdle()
	return nil
}
