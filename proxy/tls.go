package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// This file puts TLS in front of the data plane. Serve completes the
// handshake of every *tls.Conn itself, on the connection's goroutine. A
// connection that negotiated HTTP/1.1 (or nothing) then runs on the data
// plane like a plain one: only its syscall shortcut (rawio.go) is off,
// since TLS records stand between the socket and the bytes. A connection
// that negotiated h2 is handed to net/http's HTTP/2 server with ServeHTTP
// as the handler, read through h2Conn (h2conn.go), which mends where that
// server departs from RFC 9113. Both paths pick, count, drain and answer
// problems through the same routing half, so draining stays exact for
// HTTP/2 streams too: each stream holds its upstream's count until its
// response is copied.

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// ServeTLS is Serve over TLS: it accepts connections on ln, speaks TLS
// with config and offers HTTP/2 and HTTP/1.1 through ALPN (unless
// config.NextProtos says otherwise). HTTP/1.1 connections run on the data
// plane; HTTP/2 ones on net/http's HTTP/2 server with ServeHTTP as the
// handler. Shutdown ends both: HTTP/2 clients get a GOAWAY and their
// streams in progress finish. WebSockets work over HTTP/1.1; over HTTP/2
// (RFC 8441) they are not offered. Upstreams are always spoken to in
// plain HTTP/1.1. ServeTLS closes ln when it returns.
func (p *Proxy) ServeTLS(ln net.Listener, config *tls.Config) error {
	if config == nil || (len(config.Certificates) == 0 && config.GetCertificate == nil && config.GetConfigForClient == nil) {
		ln.Close()
		return errors.New("proxy: ServeTLS needs a tls.Config with a certificate")
	}
	cfg := config.Clone()
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return p.Serve(tls.NewListener(ln, cfg))
}

// handshake completes the TLS handshake of cc's connection tc. It reports
// whether cc goes on as an HTTP/1.1 connection of the data plane;
// otherwise tc is closed, or belongs to the HTTP/2 server now.
func (cc *clientConn) handshake(tc *tls.Conn) (h1 bool) {
	p := cc.p
	// Deadlines first, then idle: Shutdown may then interrupt the
	// handshake (closeIfIdle) as it does a wait for the next request.
	dl := time.Now().Add(min(tlsHandshakeTimeout, p.idleTimeout))
	if p.srv.shutting.Load() {
		// Accepted just before the shutdown: a moment for the handshake
		// and the first request (see clientConn.fresh).
		dl = time.Now().Add(firstRequestGrace)
	}
	tc.SetReadDeadline(dl)
	tc.SetWriteDeadline(dl)
	cc.state.Store(stateIdle)
	err := tc.HandshakeContext(context.Background())
	if !cc.state.CompareAndSwap(stateIdle, stateActive) {
		tc.Close() // Shutdown closed it meanwhile
		return false
	}
	if err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader) {
			cc.answerPlainHTTP(rh.Conn)
		}
		p.log.Debug("proxy: TLS handshake failed", "client", tc.RemoteAddr().String(), "err", err)
		tc.Close()
		return false
	}
	tc.SetDeadline(time.Time{}) // the data plane and the HTTP/2 server set their own
	switch tc.ConnectionState().NegotiatedProtocol {
	case "h2":
		cc.keepAliveProbes() // one connection for everything, often long-lived
		p.serveH2(tc)
		return false
	case ACMETLSALPNProto:
		// An ACME server checked a TLS-ALPN-01 challenge certificate in
		// the handshake; nothing follows (RFC 8737, section 3).
		tc.Close()
		return false
	}
	return true
}

// looksLikeHTTP reports whether the first bytes a client sent to the TLS
// listener are a plain HTTP request (as net/http checks).
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// answerPlainHTTP answers a plain HTTP request sent to the TLS listener
// with a problem saying to use https, on the raw connection c.
func (cc *clientConn) answerPlainHTTP(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	cc.out.reset(c)
	cc.req.method = nil // not a HEAD: the problem has a body
	cc.writeProblem(httpsRequired(), false)
	// The request is unread: closing now would send a reset that can
	// destroy the answer (see lingerClose).
	closeWrite(c)
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, c, 64<<10)
}

// serveH2 hands tc, which negotiated h2, to the HTTP/2 server, starting
// that server with the first such connection.
func (p *Proxy) serveH2(tc *tls.Conn) {
	s := &p.srv
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		tc.Close()
		return
	}
	if s.h2 == nil {
		s.h2 = newH2Server(p, tc.LocalAddr())
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.h2.run()
		}()
	}
	h := s.h2
	s.mu.Unlock()
	if !h.ln.push(newH2Conn(tc, p.maxHeaderBytes)) {
		tc.Close() // Shutdown closed the server meanwhile
	}
}

// h2Server is net/http's server speaking HTTP/2 on the connections that
// negotiated it, with the Proxy's ServeHTTP as the handler. It gets them
// as *h2Conn, not as *tls.Conn, and so takes them for HTTP/2 without TLS
// (h2c with prior knowledge: they did start with the preface); ServeHTTP
// gives their requests back their TLS state. (x/net's server, which
// serves a net.Conn handed to it with its TLS state, departs from the RFC
// in the same two places, and x/net deprecates it for this one.)
type h2Server struct {
	p  *Proxy
	hs *http.Server
	ln *connQueue

	mu sync.Mutex
	// fresh holds the connections that have not sent their preface yet;
	// see connState.
	fresh map[net.Conn]struct{}
	// handlers counts ServeHTTP calls in progress; idle is closed when it
	// reaches zero after wait asked for it.
	handlers int
	idle     chan struct{}
	// open counts the connections the HTTP/2 server holds, for Stats.
	open int
}

func newH2Server(p *Proxy, addr net.Addr) *h2Server {
	h := &h2Server{p: p, ln: newConnQueue(addr), fresh: make(map[net.Conn]struct{})}
	h.hs = &http.Server{
		Handler:        h,
		IdleTimeout:    p.idleTimeout,
		MaxHeaderBytes: p.maxHeaderBytes,
		ConnState:      h.connState,
		ConnContext:    withTLSState,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		Protocols:      new(http.Protocols),
		HTTP2: &http.HTTP2Config{
			MaxReadFrameSize:          h2MaxFrameSize,
			MaxDecoderHeaderTableSize: h2HeaderTableSize,
		},
	}
	h.hs.Protocols.SetUnencryptedHTTP2(true)
	return h
}

// tlsStateKey is the context key of an h2 connection's TLS state.
type tlsStateKey struct{}

// withTLSState is the HTTP/2 server's ConnContext: it keeps the TLS
// state of c (an *h2Conn) for ServeHTTP.
func withTLSState(ctx context.Context, c net.Conn) context.Context {
	if hc, ok := c.(*h2Conn); ok {
		ctx = context.WithValue(ctx, tlsStateKey{}, hc.tlsState)
	}
	return ctx
}

// run serves until shutdown closes the queue.
func (h *h2Server) run() {
	if err := h.hs.Serve(h.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		h.p.log.Error("proxy: HTTP/2 server stopped", "err", err)
	}
}

func (h *h2Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.handlers++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.handlers--
		if h.handlers == 0 && h.idle != nil {
			close(h.idle)
			h.idle = nil
		}
		h.mu.Unlock()
	}()
	if r.TLS == nil {
		r.TLS, _ = r.Context().Value(tlsStateKey{}).(*tls.ConnectionState)
	}
	h.p.ServeHTTP(w, r)
}

// openConns is how many connections the HTTP/2 server holds now.
func (h *h2Server) openConns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.open
}

// connState closes a connection whose preface arrives after Shutdown
// began. net/http sends GOAWAY (Shutdown) only to the connections the
// HTTP/2 server had registered by then, and it registers one only when it
// starts serving it; a connection handed over just before the shutdown
// could otherwise miss it and hold Shutdown until its deadline. Its
// preface is when the HTTP/2 server reports it active the first time: no
// stream has started on it yet, so nothing is lost.
func (h *h2Server) connState(c net.Conn, st http.ConnState) {
	h.mu.Lock()
	_, first := h.fresh[c]
	switch st {
	case http.StateNew:
		h.fresh[c] = struct{}{}
		h.open++
	case http.StateClosed, http.StateHijacked:
		delete(h.fresh, c)
		h.open--
	default:
		delete(h.fresh, c)
	}
	h.mu.Unlock()
	if first && st == http.StateActive && h.p.srv.shutting.Load() {
		c.Close()
	}
}

// shutdown sends every connection a GOAWAY and waits until their streams
// have finished and they closed, then until every handler returned. When
// ctx ends first it closes the connections and returns ctx's cause.
func (h *h2Server) shutdown(ctx context.Context) error {
	err := h.hs.Shutdown(ctx)
	if err != nil {
		h.hs.Close()
		err = context.Cause(ctx)
	}
	// Handlers of closed connections see their requests cancelled and
	// return promptly; until then they hold their upstreams' counts.
	h.mu.Lock()
	var idle chan struct{}
	if h.handlers > 0 {
		idle = make(chan struct{})
		h.idle = idle
	}
	h.mu.Unlock()
	if idle != nil {
		<-idle
	}
	return err
}

// connQueue is the HTTP/2 server's listener: Serve hands it connections.
type connQueue struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

var _ net.Listener = (*connQueue)(nil)

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to the server; it reports false when the queue is closed.
func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.conns <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }
