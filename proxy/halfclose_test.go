package proxy

import (
	"io"
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
// practically certain on the old code.
func TestClientHalfCloseEndsTheConnection(t *testing.T) {
	up := startUpstream(t, "hc")
	p := newTestProxy(t, Config{})
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
