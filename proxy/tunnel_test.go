package proxy

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startWebSocketEcho starts an instance that accepts WebSocket upgrades
// and echoes every frame back, unmasked, prefixed with its name. It is the
// least of RFC 6455 that tests need, so they depend on no library.
func startWebSocketEcho(t testing.TB, name string) string {
	t.Helper()
	s := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "websocket only", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(sum[:])+"\r\n\r\n")
		for {
			op, payload, err := readFrame(brw.Reader)
			if err != nil {
				return
			}
			if op == 0x8 { // close: answer it and end
				writeFrame(c, 0x8, payload, false)
				return
			}
			writeFrame(c, op, append([]byte(name+":"), payload...), false)
		}
	})
	return addrOf(s)
}

// writeFrame writes one final frame; clients mask, servers do not.
func writeFrame(w io.Writer, op byte, payload []byte, mask bool) error {
	b := []byte{0x80 | op}
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if mask {
		key := []byte{1, 2, 3, 4}
		b = append(b, key...)
		for i, c := range payload {
			b = append(b, c^key[i%4])
		}
	} else {
		b = append(b, payload...)
	}
	_, err := w.Write(b)
	return err
}

// readFrame reads one frame and unmasks it.
func readFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var x [2]byte
		if _, err = io.ReadFull(br, x[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		if _, err = io.ReadFull(br, x[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(x[:])
	}
	var key [4]byte
	if h[1]&0x80 != 0 {
		if _, err = io.ReadFull(br, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return h[0] & 0x0f, payload, nil
}

// dialWebSocket opens a WebSocket through the proxy at base.
func dialWebSocket(t testing.TB, base, host string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, br := rawConn(t, base)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: "+host+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("upgrade: %d %v", resp.StatusCode, resp.Header)
	}
	return c, br
}

func echo(t testing.TB, c net.Conn, br *bufio.Reader, msg string) string {
	t.Helper()
	if err := writeFrame(c, 0x1, []byte(msg), true); err != nil {
		t.Fatal(err)
	}
	op, payload, err := readFrame(br)
	if err != nil || op != 0x1 {
		t.Fatalf("echo of %q: op %d %v", msg, op, err)
	}
	return string(payload)
}

// TestWebSocketSurvivesSwitchUntilDrained: an open WebSocket keeps working
// after its route moved to a new revision, holds the old instance's drain
// until it closes, and when the drain gives up it is closed cleanly with
// a "going away" close frame.
func TestWebSocketSurvivesSwitchUntilDrained(t *testing.T) {
	oldAddr, newAddr := startWebSocketEcho(t, "old"), startWebSocketEcho(t, "new")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("ws.localhost", "ws", "ws--000001", oldAddr)})
	base := startServe(t, p)

	closing, closingBr := dialWebSocket(t, base, "ws.localhost")
	kept, keptBr := dialWebSocket(t, base, "ws.localhost")
	if got := echo(t, kept, keptBr, "a"); got != "old:a" {
		t.Fatalf("echo %q", got)
	}
	big := strings.Repeat("x", 100<<10) // larger than every buffer
	if got := echo(t, kept, keptBr, big); got != "old:"+big {
		t.Fatalf("large echo: %d bytes", len(got))
	}
	if n := p.InFlight(oldAddr); n != 2 {
		t.Fatalf("InFlight = %d with two WebSockets open, want 2", n)
	}

	p.SetRoutes([]Route{route1("ws.localhost", "ws", "ws--000002", newAddr)})
	if got := echo(t, kept, keptBr, "b"); got != "old:b" {
		t.Fatalf("after the switch, echo %q", got)
	}
	fresh, freshBr := dialWebSocket(t, base, "ws.localhost")
	if got := echo(t, fresh, freshBr, "c"); got != "new:c" {
		t.Fatalf("a new WebSocket after the switch: %q", got)
	}

	// A WebSocket the client closes releases its count.
	writeFrame(closing, 0x8, []byte{0x03, 0xe8}, true)
	if op, _, err := readFrame(closingBr); err != nil || op != 0x8 {
		t.Fatalf("close handshake: op %d %v", op, err)
	}
	closing.Close() // as a client does once the server closed
	waitFor(t, "the closed WebSocket to leave the count", func() bool { return p.InFlight(oldAddr) == 1 })

	// The drain waits for the open one, then gives up and closes it.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := p.Drain(ctx, []string{oldAddr})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain = %v, want it to wait for the open WebSocket until its deadline", err)
	}
	op, payload, err := readFrame(keptBr)
	if err != nil || op != 0x8 || len(payload) < 2 || binary.BigEndian.Uint16(payload) != 1001 {
		t.Fatalf("after the drain gave up: op %d payload %v err %v, want close frame 1001", op, payload, err)
	}
	if _, err := keptBr.ReadByte(); err != io.EOF {
		t.Errorf("after the close frame: %v, want EOF", err)
	}
	kept.Close()
	waitFor(t, "the old instance's count to reach 0", func() bool { return p.InFlight(oldAddr) == 0 })
	if got := echo(t, fresh, freshBr, "d"); got != "new:d" {
		t.Errorf("the new revision's WebSocket after the drain: %q", got)
	}
}

// TestUpgradeNotAcceptedIsAnOrdinaryResponse: an instance may refuse an
// upgrade; the answer passes like any other.
func TestUpgradeNotAcceptedIsAnOrdinaryResponse(t *testing.T) {
	p := newTestProxy(t, Config{})
	up := startUpstream(t, "plain")
	p.SetRoutes([]Route{route1("nows.localhost", "nows", "nows--000001", addrOf(up))})
	base := startServe(t, p)
	c, br := rawConn(t, base)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: nows.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "plain" {
		t.Errorf("%d %q", resp.StatusCode, b)
	}
}

// TestKeepAliveProbesOnlyOnLongLivedConnections: connections from Listen
// go without TCP keep-alive probes (four syscalls fewer per connection),
// until they become a tunnel or an open-ended stream, which may go quiet
// for long and whose client may vanish without closing.
func TestKeepAliveProbesOnlyOnLongLivedConnections(t *testing.T) {
	sse := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // streams until the client leaves
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{
		route1("up.localhost", "up", "up--000001", addrOf(startUpstream(t, "up"))),
		route1("ws.localhost", "ws", "ws--000001", startWebSocketEcho(t, "ws")),
		route1("sse.localhost", "sse", "sse--000001", addrOf(sse)),
	})
	base := startServe(t, p)

	plain, br := rawConn(t, base)
	io.WriteString(plain, "GET / HTTP/1.1\r\nHost: up.localhost\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := serverKeepAlive(t, p, plain); got != 0 {
		t.Errorf("plain keep-alive connection: SO_KEEPALIVE = %d, want 0", got)
	}

	ws, wbr := dialWebSocket(t, base, "ws.localhost")
	if got := serverKeepAlive(t, p, ws); got != 1 {
		t.Errorf("WebSocket: SO_KEEPALIVE = %d, want 1", got)
	}
	if got := echo(t, ws, wbr, "hi"); got != "ws:hi" {
		t.Errorf("echo = %q", got)
	}

	stream, sbr := rawConn(t, base)
	io.WriteString(stream, "GET /events HTTP/1.1\r\nHost: sse.localhost\r\n\r\n")
	resp, err = http.ReadResponse(sbr, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Not resp.Body.Close: that would read the endless stream; the
	// connection's cleanup ends it.
	if resp.StatusCode != 200 {
		t.Fatalf("SSE: %d", resp.StatusCode)
	}
	if got := serverKeepAlive(t, p, stream); got != 1 {
		t.Errorf("Server-Sent Events: SO_KEEPALIVE = %d, want 1", got)
	}
}

// serverKeepAlive reads SO_KEEPALIVE of the proxy's end of client.
func serverKeepAlive(t *testing.T, p *Proxy, client net.Conn) int {
	t.Helper()
	p.srv.mu.Lock()
	var sc net.Conn
	for cc := range p.srv.conns {
		if cc.c.RemoteAddr().String() == client.LocalAddr().String() {
			sc = cc.c
		}
	}
	p.srv.mu.Unlock()
	if sc == nil {
		t.Fatalf("the proxy has no connection from %s", client.LocalAddr())
	}
	rc, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v := -1
	rc.Control(func(fd uintptr) {
		v, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
