package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// This file puts TLS in front of the data plane. Serve completes the
// handshake of every *tls.Conn itself, on the connection's goroutine. A
// connection that negotiated HTTP/1.1 (or nothing) then runs on the data
// plane like a plain one: only its syscall shortcut (rawio.go) is off,
// since TLS records stand between the socket and the bytes. A connection
// that negotiated h2 goes to baton's HTTP/2 server (h2server.go), whose
// streams run ServeHTTP. Both paths pick, count, drain and answer
// problems through the same routing half, so draining stays exact for
// HTTP/2 streams too: each stream holds its upstream's count until its
// response is copied.

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// ServeTLS is Serve over TLS: it accepts connections on ln, speaks TLS
// with config and offers HTTP/2 and HTTP/1.1 through ALPN (unless
// config.NextProtos says otherwise). HTTP/1.1 connections run on the data
// plane; HTTP/2 ones on the proxy's HTTP/2 server, each stream through
// ServeHTTP. Shutdown ends both: HTTP/2 clients get a GOAWAY and their
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
