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

	"golang.org/x/net/http2"
)

// This file puts TLS in front of the data plane. Serve completes the
// handshake of every *tls.Conn itself, on the connection's goroutine. A
// connection that negotiated HTTP/1.1 (or nothing) then runs on the data
// plane like a plain one: only its syscall shortcut (rawio.go) is off,
// since TLS records stand between the socket and the bytes. A connection
// that negotiated h2 is handed to x/net's HTTP/2 server with ServeHTTP as
// the handler, read through h2Conn (h2conn.go). Both paths pick, count, drain and answer problems
// through the same routing half, so draining stays exact for HTTP/2
// streams too: each stream holds its upstream's count until its response
// is copied.

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// ServeTLS is Serve over TLS: it accepts connections on ln, speaks TLS
// with config and offers HTTP/2 and HTTP/1.1 through ALPN (unless
// config.NextProtos says otherwise). HTTP/1.1 connections run on the data
// plane; HTTP/2 ones on x/net's HTTP/2 server with ServeHTTP as the
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
	tc.SetReadDeadline(dl)
	tc.SetWriteDeadline(dl)
	cc.state.Store(stateIdle)
	if p.srv.shutting.Load() {
		tc.Close()
		return false
	}
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
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		cc.keepAliveProbes() // one connection for everything, often long-lived
		p.serveH2(tc)
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
		s.h2 = newH2Server(p)
	}
	h := s.h2
	c := newH2Conn(tc, p.maxHeaderBytes)
	// Added under s.mu: Shutdown, which sets shutting under it, then
	// finds every connection in h.conns.
	h.mu.Lock()
	h.conns[c] = false
	h.mu.Unlock()
	h.serving.Add(1)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer h.serving.Done()
		h.h2.ServeConn(c, &http2.ServeConnOpts{BaseConfig: h.hs, Handler: h})
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
	}()
}

// h2Server serves the connections that negotiated h2 with x/net's HTTP/2
// server, with the Proxy's ServeHTTP as the handler. x/net's rather than
// net/http's copy of the same server because only x/net's serves a
// connection handed to it (ServeConn), here one read through h2Conn,
// which mends where both copies depart from RFC 9113 (h2conn.go);
// net/http speaks h2 only on a *tls.Conn it accepted itself.
type h2Server struct {
	p  *Proxy
	h2 *http2.Server
	// hs is the base configuration of every connection (ConnState, the
	// error log, the header limit) and what starts x/net's graceful
	// shutdown: hs.Shutdown runs the hook ConfigureServer registered. hs
	// itself never serves.
	hs *http.Server

	serving sync.WaitGroup // one per ServeConn call

	mu sync.Mutex
	// conns holds the connections being served, true once their preface
	// arrived; see connState.
	conns map[*h2Conn]bool
	// handlers counts ServeHTTP calls in progress; idle is closed when it
	// reaches zero after shutdown asked for it.
	handlers int
	idle     chan struct{}
}

func newH2Server(p *Proxy) *h2Server {
	h := &h2Server{p: p, conns: make(map[*h2Conn]bool)}
	h.h2 = &http2.Server{
		IdleTimeout:               p.idleTimeout,
		MaxReadFrameSize:          h2MaxFrameSize,
		MaxDecoderHeaderTableSize: h2HeaderTableSize,
	}
	h.hs = &http.Server{
		IdleTimeout:    p.idleTimeout,
		MaxHeaderBytes: p.maxHeaderBytes,
		ConnState:      h.connState,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	// It fails only for a TLSConfig with cipher suites, which hs has not.
	if err := http2.ConfigureServer(h.hs, h.h2); err != nil {
		panic(err)
	}
	return h
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
	h.p.ServeHTTP(w, r)
}

// connState closes a connection whose preface arrives after Shutdown
// began. x/net sends GOAWAY (Shutdown) only to the connections it had
// registered by then, and it registers one only when it starts serving
// it; a connection handed over just before the shutdown could otherwise
// miss it and hold Shutdown until its deadline. Its preface is when the
// server reports it active the first time: no stream has started on it
// yet, so nothing is lost.
func (h *h2Server) connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*h2Conn)
	if !ok || st != http.StateActive {
		return
	}
	h.mu.Lock()
	started, serving := h.conns[c]
	first := serving && !started
	if first {
		h.conns[c] = true
	}
	h.mu.Unlock()
	if first && h.p.srv.shutting.Load() {
		c.Close()
	}
}

// shutdown sends every connection a GOAWAY and waits until their streams
// have finished and they closed, then until every handler returned. When
// ctx ends first it closes the connections and returns ctx's cause.
func (h *h2Server) shutdown(ctx context.Context) error {
	// Connections still without a preface have no stream to finish.
	h.mu.Lock()
	for c, started := range h.conns {
		if !started {
			c.Close()
		}
	}
	h.mu.Unlock()
	h.hs.Shutdown(ctx) // GOAWAY to the rest; it returns at once
	served := make(chan struct{})
	go func() {
		h.serving.Wait()
		close(served)
	}()
	var err error
	select {
	case <-served:
	case <-ctx.Done():
		err = context.Cause(ctx)
		h.mu.Lock()
		for c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
		<-served
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
