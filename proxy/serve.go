package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// server is the state of the data plane's listeners and connections.
type server struct {
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*clientConn]struct{}
	// empty is closed when conns becomes empty after shutting is set.
	empty    chan struct{}
	shutting atomic.Bool
	wg       sync.WaitGroup // one per connection goroutine, per Serve and for h2
	// h2 serves the TLS connections that negotiated HTTP/2 (tls.go); it
	// starts with the first of them.
	h2 *h2Server
}

// Listen opens a listening socket for Serve on addr. Unlike net.Listen's,
// its connections go without TCP keep-alive probes, which cost four
// setsockopt calls per accepted connection, a tenth of the proxy's CPU
// when every request comes on a new connection: an idle client
// connection ends by the idle timeout anyway. Connections that may stay
// quiet for long turn probes on when they become so: WebSocket and other
// tunnels, responses of unknown length (Server-Sent Events, long polls)
// and HTTP/2 connections. On Linux a connection is accepted once its
// first bytes are in (see deferAccept).
func Listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1, Control: deferAccept}
	return lc.Listen(context.Background(), "tcp", addr)
}

// keepAliveProbes turns TCP keep-alive probes on for the client
// connection (Go's defaults: the first after 15 s of quiet), once, so that
// a client gone without a word does not hold a long-lived connection and
// its upstream forever.
func (cc *clientConn) keepAliveProbes() {
	if cc.probing {
		return
	}
	cc.probing = true
	c := cc.c
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true})
	}
}

// Serve accepts HTTP/1.x connections on ln and proxies their requests
// with the proxy's own data plane until Shutdown; it then returns
// http.ErrServerClosed. It is the fast path: one goroutine per client
// connection forwards requests over pooled upstream connections with
// no per-request goroutines or allocations, while streaming bodies,
// trailers, 1xx responses and upgrades (WebSockets) pass through.
//
// Several listeners may be served at once; each Serve call owns its
// listener and closes it. After Shutdown, Serve returns
// http.ErrServerClosed at once. A listener that returns *tls.Conn (see
// ServeTLS) gets each handshake done on the connection's goroutine; then
// HTTP/1.1 runs on this data plane and h2 on the proxy's HTTP/2 server,
// each stream through ServeHTTP (tls.go, h2server.go).
func (p *Proxy) Serve(ln net.Listener) error { return p.serve(ln, false) }

// ServeLocal is Serve for a host's peer listener, where other hosts'
// proxies send the requests for apps this host runs: it serves the same
// table, but never a Forward route, so no request travels on from it.
func (p *Proxy) ServeLocal(ln net.Listener) error { return p.serve(ln, true) }

func (p *Proxy) serve(ln net.Listener, local bool) error {
	s := &p.srv
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*clientConn]struct{})
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	w := workers{next: make(chan *clientConn)}
	// Closed before the deferred s.wg.Done, so idle workers end; only
	// this loop sends on it.
	defer close(w.next)
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and go on, as
			// net/http does, rather than stop serving every app.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.log.Warn("proxy: accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		cc := newClientConn(p, c)
		cc.local = local
		s.mu.Lock()
		if s.shutting.Load() {
			s.mu.Unlock()
			c.Close()
			return http.ErrServerClosed
		}
		s.conns[cc] = struct{}{}
		s.mu.Unlock()
		// An idle connection goroutine takes it if one waits, else a new
		// one starts (counted while this Serve holds its own count).
		select {
		case w.next <- cc:
		default:
			s.wg.Add(1)
			go s.work(cc, &w)
		}
	}
}

// maxIdleWorkers bounds the connection goroutines that wait for the next
// connection after serving one: enough to take a busy listener's new
// connections, few enough that a burst of thousands leaves no crowd of
// goroutines (and their stacks) behind.
const maxIdleWorkers = 128

// workers are the idle connection goroutines of one Serve call. Reusing
// one costs a channel handoff where a new goroutine cost its creation, a
// fresh stack grown again and its exit: 3-4 µs of the ~60 µs of CPU a
// request cost when every request comes on a new connection (three runs
// of 40,000-80,000 requests each way, alternated).
type workers struct {
	// next hands a connection to an idle worker; unbuffered, a send
	// succeeds only to one waiting. Serve closes it when it returns.
	next chan *clientConn
	idle atomic.Int32
}

// work serves cc, then the connections the accept loop hands it while it
// waits, until Serve returns or enough others wait already.
func (s *server) work(cc *clientConn, w *workers) {
	defer s.wg.Done()
	for {
		s.serveConn(cc)
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		var ok bool
		if cc, ok = <-w.next; !ok {
			return
		}
		w.idle.Add(-1)
	}
}

// serveConn runs one client connection to its end (its TLS handshake
// first) and recycles its buffers.
func (s *server) serveConn(cc *clientConn) {
	if tc, ok := cc.c.(*tls.Conn); ok && !cc.handshake(tc) {
		s.remove(cc)
		cc.release()
		return
	}
	reusable := cc.serve()
	s.remove(cc)
	if reusable {
		cc.release()
	}
}

func (s *server) remove(cc *clientConn) {
	s.mu.Lock()
	delete(s.conns, cc)
	if s.shutting.Load() && len(s.conns) == 0 && s.empty != nil {
		close(s.empty)
		s.empty = nil
	}
	s.mu.Unlock()
}

// Shutdown stops Serve: it closes the listeners, closes idle client
// connections, ends upgraded connections (WebSockets get a "going away"
// close frame), sends HTTP/2 connections a GOAWAY, and waits for requests
// in progress to finish. When ctx ends first it closes every remaining
// connection and returns ctx's error. It returns once every connection
// goroutine and handler has ended. The routing side (SetRoutes, Drain,
// ServeHTTP) keeps working.
func (p *Proxy) Shutdown(ctx context.Context) error {
	s := &p.srv
	s.mu.Lock()
	s.shutting.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	var h2done chan error
	if s.h2 != nil {
		h2done = make(chan error, 1)
		go func(h *h2Server) { h2done <- h.shutdown(ctx) }(s.h2) // waited for below
	}
	empty := make(chan struct{})
	if len(s.conns) == 0 {
		close(empty)
	} else {
		s.empty = empty
	}
	// Under s.mu: a connection leaves the set before its buffers are
	// recycled, so every member is safe to touch here.
	for cc := range s.conns {
		cc.closeIfIdle()
		if t := cc.tun.Load(); t != nil {
			t.shut()
		}
	}
	s.mu.Unlock()

	var err error
	select {
	case <-empty:
	case <-ctx.Done():
		err = context.Cause(ctx)
		s.mu.Lock()
		for cc := range s.conns {
			cc.abort()
		}
		s.mu.Unlock()
	}
	if h2done != nil {
		if h2err := <-h2done; err == nil {
			err = h2err
		}
	}
	s.wg.Wait()
	return err
}
