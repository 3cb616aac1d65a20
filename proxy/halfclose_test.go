package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestClientHalfCloseEndsTheConnection is the regression test of a lost
// wake-up: a client that sends its requests and closes its half of the
// connection must get every answer and then the proxy's close at once.
// The raw-read shortcut (rawio.go) armed the poller after the client's
// end of stream had arrived, forgot it, and waited for the idle timeout.
// The race was lost about every other time; 30 rounds make a miss
// practically certain on the old code. The client is watched only while
// an upstream is slow (see the next test): on a loaded machine any answer
// can be, so this test does not let the proxy watch.
func TestClientHalfCloseEndsTheConnection(t *testing.T) {
	up := startUpstream(t, "hc")
	p := newTestProxy(t, Config{})
	p.watchAfter = time.Hour
	p.SetRoutes([]Route{route1("hc.localhost", "hc", "hc--000001", addrOf(up))})
	base := startServe(t, p)
	req := "GET / HTTP/1.1\r\nHost: hc.localhost\r\n\r\n"
	for round := range 30 {
		c, _ := rawConn(t, base)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, strings.Repeat(req, 1+round%3))
		closeWrite(c)
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("round %d: the proxy kept the half-closed connection open: %v", round, err)
		}
		if n := strings.Count(string(b), "HTTP/1.1 200 OK"); n != 1+round%3 {
			t.Fatalf("round %d: %d answers, want %d", round, n, 1+round%3)
		}
		c.Close()
	}
}

// TestClientHalfCloseWhileUpstreamIsSlowCancels: a client's end of stream
// while the proxy waits for a slow upstream counts as the client leaving
// (net/http and nginx do the same): the upstream request is cancelled and
// the connection ends without an answer.
func TestClientHalfCloseWhileUpstreamIsSlowCancels(t *testing.T) {
	up, started, cancelled := startStallingUpstream(t)
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("slow.localhost", "slow", "slow--000001", addrOf(up))})
	c, _ := rawConn(t, startServe(t, p))
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: slow.localhost\r\n\r\n")
	<-started
	closeWrite(c)
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the proxy kept the connection open: %v", err)
	}
	if len(b) != 0 {
		t.Fatalf("answer to a client that left: %q", b)
	}
	select {
	case <-cancelled:
	case <-time.After(30 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
}

// TestShutdownServesFirstRequestOfNewConnection: a connection accepted
// just before a shutdown (a restart in place hands the listener over at
// any moment) gets its first request answered, with Connection: close,
// instead of being closed as idle: clients do not retry a request that
// fails on a new connection.
func TestShutdownServesFirstRequestOfNewConnection(t *testing.T) {
	up := startUpstream(t, "sd")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("sd.localhost", "sd", "sd--000001", addrOf(up))})
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	c, br := rawConn(t, "http://"+ln.Addr().String())
	waitFor(t, "the connection accepted", func() bool {
		p.srv.mu.Lock()
		defer p.srv.mu.Unlock()
		return len(p.srv.conns) == 1
	})
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	waitFor(t, "the shutdown begun", p.srv.shutting.Load)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: sd.localhost\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the first request on a connection accepted before the shutdown: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "sd" || !resp.Close {
		t.Fatalf("answer %d %q (close %v), want 200 sd with Connection: close", resp.StatusCode, body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
}
