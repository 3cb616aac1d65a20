package proxy

import (
	"bufio"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// clientConn is one client connection of the data plane. Its goroutine
// reads a request, routes it, forwards it and copies the response back,
// then reads the next one; its buffers are reused across requests and,
// through connPool, across connections.
type clientConn struct {
	p    *Proxy
	c    net.Conn
	br   *bufio.Reader
	rd   *connReader // under br
	out  wbuf        // to the client
	upw  wbuf        // to the upstream, for request bodies
	req  request
	resp response
	// uhead is the request head sent upstream.
	uhead []byte
	addr  clientAddr
	// local: the connection came through ServeLocal (see acquireOn).
	local bool

	// probing: TCP keep-alive probes are on (keepAliveProbes).
	probing bool

	// linger: the connection ends with request body bytes unread, so it
	// closes gently (see lingerClose).
	linger bool

	// dlMu orders the header-timeout deadline a finished request body
	// sets against the response head having arrived already (headIn).
	dlMu   sync.Mutex
	headIn bool

	// obs is what the request metrics count for the current request.
	obs observation
	// logb is scratch for the access log line.
	logb []byte

	state atomic.Int32
	// fresh: no request has arrived on the connection yet. Shutdown
	// gives such a connection firstRequestGrace to send its first
	// request instead of closing it as idle: the client has just
	// connected, so its request is on the way, and a client does not
	// retry a request that fails on a new connection.
	fresh atomic.Bool
	// up is the upstream connection in use, and tun the tunnel, so that
	// Shutdown can end them from another goroutine.
	up  atomic.Pointer[upConn]
	tun atomic.Pointer[tunnel]
}

// Connection states, for Shutdown: only an idle connection (waiting for a
// request) may be closed under a client's feet.
const (
	stateActive int32 = iota
	stateIdle
	stateClosing
)

// firstRequestGrace is how long a connection accepted before a shutdown
// may take to send its first request (see clientConn.fresh).
const firstRequestGrace = time.Second

// clientReadBuffer sizes the reader per client connection; heads larger
// than it are gathered line by line up to MaxHeaderBytes.
const clientReadBuffer = 4 << 10

var clientConns = sync.Pool{New: func() any {
	rd := newConnReader(nil)
	rd.peerSendsFirst = true
	return &clientConn{
		rd:    rd,
		br:    bufio.NewReaderSize(rd, clientReadBuffer),
		out:   wbuf{b: make([]byte, 0, 4<<10)},
		uhead: make([]byte, 0, 1<<10),
	}
}}

func newClientConn(p *Proxy, c net.Conn) *clientConn {
	cc := clientConns.Get().(*clientConn)
	cc.p, cc.c = p, c
	cc.rd.reset(c)
	cc.br.Reset(cc.rd)
	cc.out.reset(c)
	_, https := c.(*tls.Conn)
	cc.addr = newClientAddr(c.RemoteAddr(), https)
	cc.state.Store(stateActive)
	cc.fresh.Store(true)
	cc.probing = false
	cc.local = false
	return cc
}

// release returns cc's buffers for another connection. Buffers that grew
// large for one odd request are dropped instead. The connection must have
// left the server's set already: Shutdown may touch any member.
func (cc *clientConn) release() {
	cc.rd.reset(nil)
	cc.br.Reset(cc.rd)
	cc.out.reset(nil)
	cc.upw.reset(nil)
	cc.p, cc.c = nil, nil
	cc.addr = clientAddr{}
	if cap(cc.req.raw) > 64<<10 || cap(cc.resp.raw) > 64<<10 || cap(cc.out.b) > 2*flushAt {
		return
	}
	clientConns.Put(cc)
}

// serve runs the connection's request loop until the client closes it, an
// error makes it unusable, or the server shuts down. It reports whether
// cc's buffers may be reused.
func (cc *clientConn) serve() (reusable bool) {
	p := cc.p
	defer func() {
		if v := recover(); v != nil {
			// A bug must cost one connection, not the process.
			p.log.Error("proxy: panic serving connection", "client", cc.c.RemoteAddr().String(), "panic", v)
			reusable = false // buffers may be inconsistent
			if uc := cc.up.Load(); uc != nil {
				uc.c.Close()
			}
		}
		if cc.linger {
			cc.lingerClose()
		}
		cc.c.Close()
	}()
	for {
		// The deadline covers waiting for the request and reading its
		// head: idle clients and slow senders are dropped alike.
		cc.c.SetReadDeadline(time.Now().Add(p.idleTimeout))
		if cc.br.Buffered() > 0 && cc.rd.flush() != nil {
			return true // a pipelined request: the last response goes out first
		}
		cc.state.Store(stateIdle)
		if p.srv.shutting.Load() {
			if !cc.fresh.Load() {
				cc.rd.flush()
				return true
			}
			cc.c.SetReadDeadline(time.Now().Add(firstRequestGrace))
		}
		// Writes the last response (connReader.pending), then waits.
		_, err := cc.br.Peek(1)
		cc.out.b = cc.out.b[:0]
		if err != nil {
			return true
		}
		cc.fresh.Store(false)
		if !cc.state.CompareAndSwap(stateIdle, stateActive) {
			return true // Shutdown closed it while the request arrived
		}
		if !cc.serveRequest() {
			return true
		}
	}
}

// lingerClose ends a connection whose client may still be sending a body
// the proxy did not read. Closing a socket with unread input sends a reset,
// which can destroy the response in flight (the client sees "connection
// reset" instead of, say, a 404). So: send FIN, then read and discard for
// a moment, as net/http does.
func (cc *clientConn) lingerClose() {
	cc.linger = false
	closeWrite(cc.c)
	cc.c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, cc.c, 256<<10)
}

// closeIfIdle closes the connection if it waits for a request; a busy
// one finishes its request and then sees the shutdown.
func (cc *clientConn) closeIfIdle() {
	if cc.fresh.Load() {
		// Its first request is on the way: it gets a moment, then the
		// serve loop ends it (the response says Connection: close).
		cc.c.SetReadDeadline(time.Now().Add(firstRequestGrace))
		return
	}
	if cc.state.CompareAndSwap(stateIdle, stateClosing) {
		cc.c.SetReadDeadline(aLongTimeAgo)
	}
}

// abort ends the connection and its upstream connection at once.
func (cc *clientConn) abort() {
	cc.state.Store(stateClosing)
	cc.c.Close()
	if uc := cc.up.Load(); uc != nil {
		uc.c.Close()
	}
}

// aLongTimeAgo is a deadline in the past, which wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// observation is what the metrics count for one request on the data plane.
type observation struct {
	// st is nil until the request is routed to an app.
	st     *reqStats
	status int
	cause  Cause
	// out counts the response body bytes a problem answer wrote.
	out int64
	// upstream is the time from the request's arrival to the upstream's
	// response head (0: none came).
	upstream time.Duration
}

// serveRequest handles one request, counts it, and reports whether the
// connection may carry another.
func (cc *clientConn) serveRequest() bool {
	start := time.Now()
	cc.obs = observation{}
	out0, upw0 := cc.out.n, cc.upw.n
	keep := cc.handleRequest(start)
	o, r := &cc.obs, &cc.req
	in := int64(0)
	if r.chunked {
		in = cc.upw.n - upw0
	} else if r.length > 0 {
		in = r.length
	}
	if o.st == nil {
		cc.p.countUnrouted(o.status)
	}
	// A request another host's proxy sent to this one's peer listener was
	// counted there, where the client sent it: counted twice, the hosts'
	// metrics would not add up. The access log has it on both.
	counted, logged := o.st != nil && cc.p.countRequests && !cc.local, cc.p.access != nil && o.status != 0
	if !counted && !logged {
		return keep // no clock read for nobody
	}
	out, took := cc.out.n-out0+o.out, time.Since(start)
	if counted {
		o.st.observe(o.status, o.cause, took, o.upstream, in, out)
	}
	if logged {
		cc.logRequest(start, took, in, out)
	}
	return keep
}

// logRequest writes the access log line of the request just served.
func (cc *clientConn) logRequest(start time.Time, took time.Duration, in, out int64) {
	r := &cc.req
	e := accessEntry{start: start, st: cc.obs.st, host: r.host, method: r.method, target: r.target,
		peer: cc.addr.ip, status: cc.obs.status, cause: cc.obs.cause, in: in, out: out, took: took}
	cc.logb = appendAccessLine(cc.logb[:0], &e)
	cc.p.access.add(cc.logb)
}

// handleRequest reads, routes and forwards one request and reports
// whether the connection may carry another. It notes in cc.obs what the
// metrics count.
func (cc *clientConn) handleRequest(start time.Time) bool {
	p, r := cc.p, &cc.req
	var err error
	r.raw, err = readHead(cc.br, r.raw, p.maxHeaderBytes)
	if err != nil {
		if err == errHeadTooLarge {
			r.method, r.target, r.host = nil, nil, nil // not parsed: nothing to log
			cc.writeProblem(headerTooLarge(p.maxHeaderBytes), false)
		}
		// Otherwise the client went away or was too slow: nobody to answer.
		return false
	}
	if pe := r.parse(); pe != nil {
		cc.linger = true // whatever follows the head is unread
		cc.writeProblem(badRequest(pe), false)
		return false
	}
	host, pin, cookie := b2s(r.host), b2s(r.pin), b2s(r.cookie)
	// A problem answered before the body was read ends the connection: the
	// unread body would otherwise be taken for the next request.
	keepOnProblem := r.keepAlive && !r.hasBody()
	cc.linger = r.hasBody() // until the body is known to be read
	if cc.local && p.peerKey != nil && (r.peerKey != nil || p.requirePeerKey.Load()) && subtle.ConstantTimeCompare(r.peerKey, p.peerKey) != 1 {
		// Not another host of the cluster: refused, and the connection
		// ends, so nothing else is tried on it.
		return cc.writeProblem(peerKeyRefused(host), false)
	}

	c, rt, pb := p.acquireOn(cc.local, host, pin, cookie, "")
	if rt != nil {
		cc.obs.st = rt.stats
	}
	if pb != nil {
		return cc.writeProblem(pb, keepOnProblem)
	}
	cc.obs.st = c.b.stats
	res := cc.forward(c, start)
	if res.err != nil && res.resendable && isRefused(res.err) {
		p.refused(rt, c.u, res.err)
		c2, rt2, pb := p.acquireOn(cc.local, host, pin, cookie, c.u.addr)
		switch {
		case rt2 == nil:
			cc.obs.st = nil
			return cc.writeProblem(pb, keepOnProblem)
		case pb == nil:
			c, rt = c2, rt2
			cc.obs.st = c.b.stats
			res = cc.forward(c, start)
		}
	}
	if res.wrote {
		cc.obs.status = cc.resp.status
	}
	if res.err == nil || res.wrote {
		cc.linger = cc.linger && !res.keep
		return res.keep
	}
	return cc.upstreamFailed(rt, c.u, res, keepOnProblem)
}

// upstreamFailed answers a request that got no response.
func (cc *clientConn) upstreamFailed(rt *route, u *upstream, res result, keep bool) bool {
	p, r := cc.p, &cc.req
	if res.clientGone {
		p.log.Debug("proxy: client went away", "host", rt.host, "upstream", u.addr, "err", res.err)
		cc.obs.status, cc.obs.cause = 499, CauseClientGone
		return false
	}
	if res.badBody != nil {
		p.log.Debug("proxy: malformed request body", "host", rt.host, "upstream", u.addr, "err", res.err)
		cc.linger = true // the rest of the body is unread
		cc.writeProblem(badRequest(res.badBody), false)
		return false
	}
	keep = keep && !res.bodyStarted
	attrs := []any{"host", rt.host, "app", rt.app, "slot", rt.slot, "upstream", u.addr,
		"method", string(r.method), "path", string(originForm(r.target)), "err", res.err}
	if res.timeout {
		p.log.Warn("proxy: upstream timed out", attrs...)
		return cc.writeProblem(gatewayTimeout(rt, p.headerTimeout), keep)
	}
	p.log.Error("proxy: upstream failed", attrs...)
	keep = cc.writeProblem(badGateway(rt), keep)
	if isRefused(res.err) {
		cc.obs.cause = CauseUpstreamRefused
	}
	return keep
}

// writeProblem answers with pb and reports whether the connection stays.
func (cc *clientConn) writeProblem(pb *problem, keep bool) bool {
	keep = keep && !cc.p.srv.shutting.Load()
	var w rawResponse
	pb.write(&w)
	b := cc.out.b[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\n"...)
	for k, vs := range w.h {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "Date: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\n"...)
	if !keep {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	if !is(cc.req.method, "head") {
		b = append(b, w.body...)
		cc.obs.out = int64(len(w.body))
	}
	cc.obs.status, cc.obs.cause = w.status, pb.cause
	cc.out.b = b
	return cc.out.flush() == nil && keep
}

// rawResponse collects what problem.write writes, for the data plane to
// frame itself.
type rawResponse struct {
	h      http.Header
	status int
	body   []byte
}

func (w *rawResponse) Header() http.Header {
	if w.h == nil {
		w.h = make(http.Header)
	}
	return w.h
}

func (w *rawResponse) WriteHeader(status int) { w.status = status }

func (w *rawResponse) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, b...)
	return len(b), nil
}

// headerTooLarge answers a request head over the limit.
func headerTooLarge(limit int) *problem {
	return &problem{
		Type:   problemType("header-too-large"),
		Title:  "Request header fields too large",
		Status: http.StatusRequestHeaderFieldsTooLarge,
		Detail: fmt.Sprintf("the request line and header fields exceed %d bytes", limit),
	}
}

// badRequest answers a request the data plane cannot forward safely.
func badRequest(pe *parseError) *problem {
	return &problem{
		Type:   problemType("bad-request"),
		Title:  http.StatusText(pe.status),
		Status: pe.status,
		Detail: "the request cannot be forwarded: " + pe.detail,
		cause:  CauseMalformedRequest,
	}
}

// httpsRequired answers a plain HTTP request sent to a TLS listener.
func httpsRequired() *problem {
	return &problem{
		Type:   problemType("https-required"),
		Title:  "HTTPS required",
		Status: http.StatusBadRequest,
		Detail: "this address serves apps over HTTPS only: send the request with https://",
	}
}
