// Package proxy routes requests by Host to live instances, weighted, with
// exact draining, and forwards them.
//
// It has two halves. The routing half (table.go, pick.go, sticky.go,
// health.go, upstream.go, drain.go) decides which instance serves a
// request and counts the request so Drain can wait for it; its lookup is
// lock-free and allocation-free.
//
// The forwarding half comes in two forms that share the routing half:
//
//   - Serve (serve.go, conn.go, roundtrip.go, body.go, tunnel.go) is the
//     data plane of the proxy listener: its own HTTP/1.1 server and
//     client, one goroutine per client connection, pooled upstream
//     connections, no allocation per request, bodies streamed, chunked
//     framing and trailers passed verbatim, 1xx and upgrades relayed. It
//     was chosen by measurement: on a 2-core machine the proxy's cost is
//     mostly syscalls and scheduling, and net/http's server plus
//     Transport spend about twice the syscalls and three goroutine
//     hand-offs per request (see bench/ and the README).
//   - ServeHTTP (forward.go) mounts the proxy in an http.Server through
//     httputil.ReverseProxy: Serve hands it the TLS connections that
//     negotiated HTTP/2 (tls.go), and it serves in-process use.
//
// Certs (certs.go) picks each TLS handshake's certificate by server name:
// static certificates first, then a fallback (baton's ACME manager) whose
// answers it caches per name, lock-free and without allocation.
package proxy

import (
	"errors"
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
	// MaxHeaderBytes bounds a request head (431 beyond it), a response head
	// (502 beyond it) and a chunked body's trailers on the Serve data plane
	// (64 KiB when zero).
	MaxHeaderBytes int
	// IdleTimeout bounds how long a client connection of the Serve data
	// plane may wait for its next request and send its head (2 minutes
	// when zero).
	IdleTimeout time.Duration
	// AccessLog, when set, gets one JSON line per request; its owner
	// opens and closes it (after Shutdown).
	AccessLog *AccessLog
	// NoRequestMetrics turns the request counters off (baton serve
	// --request-metrics=false): RequestStats stays empty of counts; the
	// connection and tunnel gauges remain.
	NoRequestMetrics bool
	// PeerKey, when set, is the secret the hosts of one cluster share
	// through their store: requests this proxy sends to another host's
	// peer listener carry it in the Baton-Peer-Key field, and a listener
	// served with ServeLocal refuses (403) every request that does not.
	// A client's own Baton-Peer-Key never reaches an instance.
	PeerKey string
}

// Proxy is an http.Handler that routes each request by its Host header to
// an instance of the revision(s) live in the matching app slot.
type Proxy struct {
	log           *slog.Logger
	domain        string
	headerTimeout time.Duration
	// maxHeaderBytes and idleTimeout bound client heads and idle keep-alive
	// connections on the Serve data plane.
	maxHeaderBytes int
	idleTimeout    time.Duration
	// watchAfter: see the constant; tests that must not depend on the
	// machine's speed set it longer.
	watchAfter time.Duration
	fwd        forwarder
	// access is the access log, nil when off.
	access *AccessLog
	// countRequests is false when request metrics are off.
	countRequests bool
	// peerKey is Config.PeerKey (nil: peer listeners take any request).
	// A request without a key is refused only while requirePeerKey is set
	// (RequirePeerKey); one with a wrong key always is.
	peerKey        []byte
	requirePeerKey atomic.Bool

	// table is read on every request without locks; SetRoutes replaces it.
	table atomic.Pointer[table]

	// mu serializes SetRoutes and Drain's bookkeeping and guards reg.
	mu sync.Mutex
	// reg holds the state of every upstream address a table references or
	// a Drain may still wait for, by address.
	reg map[string]*upstream
	// unhealthy holds the addresses SetHealthy marked, so the mark reaches
	// upstreams created later for the same address.
	unhealthy map[string]bool
	// stats holds the request counters of every routed app slot and
	// revision (stats.go); guarded by mu, read on the request path only
	// through the table.
	stats    map[statsKey]*reqStats
	statsGen uint64
	// unrouted counts requests that reached no app.
	unrouted unrouted

	// srv is the state of the data plane's listeners (Serve, Shutdown).
	srv server
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
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	p := &Proxy{
		log:            cfg.Logger,
		domain:         cfg.Domain,
		headerTimeout:  cfg.UpstreamHeaderTimeout,
		maxHeaderBytes: cfg.MaxHeaderBytes,
		idleTimeout:    cfg.IdleTimeout,
		watchAfter:     watchAfter,
		fwd:            newReverseProxy(cfg.UpstreamHeaderTimeout, cfg.Logger),
		reg:            make(map[string]*upstream),
		stats:          make(map[statsKey]*reqStats),
		access:         cfg.AccessLog,
		countRequests:  !cfg.NoRequestMetrics,
	}
	if cfg.PeerKey != "" {
		p.peerKey = []byte(cfg.PeerKey)
	}
	p.table.Store(emptyTable())
	return p
}

// RequirePeerKey sets whether a peer listener (ServeLocal) refuses a
// request that carries no peer key, as it always refuses one with a wrong
// key. Hosts turn it on once every live host sends the key: in a cluster
// mid-upgrade, hosts of an older baton send none and must still be served.
// It reports whether that changed anything.
func (p *Proxy) RequirePeerKey(on bool) bool { return p.requirePeerKey.Swap(on) != on }

// PeerKeyRequired reports whether a request without a peer key is refused
// on the peer listener (RequirePeerKey, with a key configured).
func (p *Proxy) PeerKeyRequired() bool { return p.peerKey != nil && p.requirePeerKey.Load() }

// SendsPeerKey reports whether the proxy has a peer key to send to other
// hosts' peer listeners (Config.PeerKey).
func (p *Proxy) SendsPeerKey() bool { return p.peerKey != nil }

// ServeHTTP routes r by its Host header and forwards it to an instance
// through net/http's ReverseProxy. Errors are RFC 9457 problems: 404 for an
// unknown host or pinned revision, 503 when nothing is live, 502 when the
// instance fails, 504 when it does not answer in time.
//
// Serve is the faster data plane for HTTP/1.1, plain or over TLS; ServeHTTP
// is for mounting the proxy in an http.Server (HTTP/2, tests).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	m := meteredWriters.Get().(*meteredWriter)
	m.ResponseWriter = w
	var body *clientBody
	if !bodyless(r) {
		body = &clientBody{ReadCloser: r.Body}
		r.Body = body
	}
	st, cause := p.serveHTTP(m, r)
	if m.status == 0 && cause == CauseClientGone {
		m.status = 499
	}
	var in int64
	if body != nil {
		in = body.n.Load()
	}
	if st == nil {
		p.countUnrouted(m.status)
	}
	counted, logged := st != nil && p.countRequests, p.access != nil && m.status != 0
	if counted || logged {
		took := time.Since(start)
		if counted {
			st.observe(m.status, cause, took, 0, in, m.wrote)
		}
		if logged {
			p.logServeHTTP(r, start, took, st, m.status, cause, in, m.wrote)
		}
	}
	*m = meteredWriter{}
	meteredWriters.Put(m)
}

// serveHTTP is ServeHTTP without the metrics: it returns the counters the
// request belongs to (nil when it reached no app) and why the proxy
// answered for the app, if it did.
func (p *Proxy) serveHTTP(w *meteredWriter, r *http.Request) (*reqStats, Cause) {
	if r.Method == http.MethodConnect {
		// Apps are origins, not tunnels (as on the data plane); this also
		// refuses WebSockets over HTTP/2 (RFC 8441), which are not offered.
		badRequest(&parseError{http.StatusMethodNotAllowed, "CONNECT is not served"}).write(w)
		return nil, CauseNone
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	var pin, cookie string
	if v := r.Header[PinHeader]; len(v) > 0 {
		pin = v[0]
	}
	if v := r.Header["Cookie"]; len(v) > 0 {
		cookie = v[0]
		for _, c := range v[1:] {
			if stickyRevision(c) != "" {
				cookie = c
			}
		}
	}

	c, rt, pb := p.acquire(host, pin, cookie, "")
	if pb != nil {
		pb.write(w)
		if rt == nil {
			return nil, CauseNone
		}
		return rt.stats, pb.cause
	}
	err := p.forward(w, r, c)
	if err == nil {
		return c.b.stats, CauseNone
	}
	if isRefused(err) && bodyless(r) {
		// Nothing reached the instance and there is no body to replay, so
		// another instance may take the request: a crashed instance must not
		// become a 502 while a healthy one exists.
		p.refused(rt, c.u, err)
		c2, rt2, pb := p.acquire(host, pin, cookie, c.u.addr)
		switch {
		case rt2 == nil: // the host went away meanwhile
			pb.write(w)
			return nil, CauseNone
		case pb == nil:
			c, rt = c2, rt2
			if err = p.forward(w, r, c); err == nil {
				return c.b.stats, CauseNone
			}
		}
		// Otherwise no other instance exists: answer for the refusal.
	}
	return c.b.stats, p.upstreamFailed(w, r, rt, c.u, err)
}

// refused notes a refused connection to u: passive health keeps requests
// away from it for a moment, and the log says so once in a while.
func (p *Proxy) refused(rt *route, u *upstream, err error) {
	now := time.Now()
	u.markRefused(now)
	if u.logRefused(now) {
		p.log.Warn("proxy: upstream refused connection; retrying on another instance",
			"host", rt.host, "app", rt.app, "slot", rt.slot, "upstream", u.addr, "err", err)
	}
}

// forward runs one attempt on c.u and ends its count even when the data
// plane aborts the response with a panic; a lost release would make every
// later Drain of u wait forever.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, c choice) error {
	defer c.u.release()
	if c.setCookie {
		w.Header()["Set-Cookie"] = []string{setCookieValue(c.b.revision, r.TLS != nil)}
	} else {
		delete(w.Header(), "Set-Cookie")
	}
	delete(r.Header, PeerKeyHeader) // a client's own never reaches an instance
	if c.u.peer.Load() {
		if c.b.revision != "" { // not a Forward route: the peer serves the revision chosen here
			r.Header[PinHeader] = []string{c.b.revision}
		}
		if p.peerKey != nil {
			r.Header[PeerKeyHeader] = []string{string(p.peerKey)}
		}
	}
	if takesPooledPath(r) {
		return p.forwardPooled(w, r, c.u)
	}
	return p.fwd.forward(w, r, c.u.addr)
}

// acquire picks an upstream for host and counts a request on it, picking
// again from the latest table while the one it got is draining. On failure
// it returns the problem to answer with; rt is nil only for an unknown host.
func (p *Proxy) acquire(host, pin, cookie, exclude string) (choice, *route, *problem) {
	return p.acquireOn(false, host, pin, cookie, exclude)
}

// acquireOn is acquire for a connection of a listener served with
// ServeLocal when local is set: a route that forwards to another host is
// refused there, so requests between hosts never travel on.
func (p *Proxy) acquireOn(local bool, host, pin, cookie, exclude string) (choice, *route, *problem) {
	var rt *route
	for range maxPicks {
		t := p.table.Load()
		if rt = t.lookup(host); rt == nil {
			return choice{}, nil, unknownHost(normalizeHost(host), p.domain)
		}
		if local && rt.forward {
			return choice{}, rt, notRunHere(rt)
		}
		c, pb := rt.pick(local, pin, cookie, exclude)
		if pb != nil {
			// Seeing an upstream draining implies seeing the table that
			// replaced it (SetRoutes publishes before anything drains), so
			// a pick that failed on draining upstreams tries the new table.
			if p.table.Load() != t {
				continue
			}
			return choice{}, rt, pb
		}
		if c.u.acquire() {
			return c, rt, nil
		}
	}
	return choice{}, rt, noLiveInstance(rt, pin)
}

// upstreamFailed answers a request whose forward wrote nothing.
func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, rt *route, u *upstream, err error) Cause {
	if r.Context().Err() != nil {
		// The client went away (or the server is shutting down): nobody
		// reads the answer and the upstream did nothing wrong. 499 is
		// nginx's "client closed request", for access logs.
		p.log.Debug("proxy: client went away", "host", rt.host, "upstream", u.addr, "err", err)
		w.WriteHeader(499)
		return CauseClientGone
	}
	var ce *clientBodyError
	if errors.As(err, &ce) {
		// The client's fault: not logged as the instance's, not a 502.
		p.log.Debug("proxy: malformed request body", "host", rt.host, "upstream", u.addr, "err", err)
		badRequest(&parseError{http.StatusBadRequest, "the request body could not be read: " + ce.err.Error()}).write(w)
		return CauseMalformedRequest
	}
	attrs := []any{"host", rt.host, "app", rt.app, "slot", rt.slot, "upstream", u.addr,
		"method", r.Method, "path", r.URL.Path, "err", err}
	if isTimeout(err) {
		p.log.Warn("proxy: upstream timed out", attrs...)
		gatewayTimeout(rt, p.headerTimeout).write(w)
		return CauseUpstreamTimeout
	}
	p.log.Error("proxy: upstream failed", attrs...)
	badGateway(rt).write(w)
	if isRefused(err) {
		return CauseUpstreamRefused
	}
	return CauseUpstreamFailed
}

// meteredWriter notes the status and body size of a ServeHTTP answer for
// the metrics. Unwrap lets http.ResponseController (which ReverseProxy
// uses to flush and to hijack for upgrades) reach the server's writer.
type meteredWriter struct {
	http.ResponseWriter
	status int
	wrote  int64
}

var meteredWriters = sync.Pool{New: func() any { return new(meteredWriter) }}

func (m *meteredWriter) WriteHeader(code int) {
	if m.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		m.status = code
	}
	m.ResponseWriter.WriteHeader(code)
}

func (m *meteredWriter) Write(b []byte) (int, error) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	n, err := m.ResponseWriter.Write(b)
	m.wrote += int64(n)
	return n, err
}

// Flush flushes the server's writer if it can.
func (m *meteredWriter) Flush() { http.NewResponseController(m.ResponseWriter).Flush() }

func (m *meteredWriter) Unwrap() http.ResponseWriter { return m.ResponseWriter }

// bodyless reports whether r carries no body, so it can be sent again.
func bodyless(r *http.Request) bool {
	return r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
}

// Close closes idle upstream connections. The Proxy stays usable; to stop
// the listeners of Serve, use Shutdown.
func (p *Proxy) Close() error {
	p.fwd.closeIdle()
	p.mu.Lock()
	ups := make([]*upstream, 0, len(p.reg))
	for _, u := range p.reg {
		ups = append(ups, u)
	}
	p.mu.Unlock()
	for _, u := range ups {
		u.pool.closeIdle(false)
	}
	return nil
}
