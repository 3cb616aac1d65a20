package proxy

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestPoolClosesStaleConnectionsUnderAFreshOne: the idle connections
// returned before the most recent one close once idle for
// upstreamIdleTimeout, though the most recent one is still fresh (and
// keeps being reused); when it is stale too, all close and get gives nil.
func TestPoolClosesStaleConnectionsUnderAFreshOne(t *testing.T) {
	timeout := int64(upstreamIdleTimeout)
	conn := func() (*upConn, net.Conn) {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		return &upConn{c: a}, b
	}
	closed := func(peer net.Conn) bool {
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := peer.Read(make([]byte, 1))
		return err == io.EOF
	}

	var p connPool
	old1, peer1 := conn()
	old2, peer2 := conn()
	fresh, freshPeer := conn()
	p.put(old1, 0)
	p.put(old2, 1)
	p.put(fresh, timeout)
	if got := p.get(timeout + 1); got != fresh || !got.reused {
		t.Fatalf("get returned %p (reused %v), want the fresh connection %p", got, got != nil && got.reused, fresh)
	}
	if !closed(peer1) || !closed(peer2) {
		t.Fatal("connections idle for upstreamIdleTimeout stayed open under a fresh one")
	}
	if len(p.idle) != 0 {
		t.Fatalf("%d connections left idle, want none", len(p.idle))
	}

	p.put(fresh, timeout+1)
	if got := p.get(2*timeout + 1); got != nil {
		t.Fatalf("get returned %p, all idle connections being stale", got)
	}
	if !closed(freshPeer) {
		t.Fatal("a stale connection stayed open")
	}
}
