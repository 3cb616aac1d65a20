package proxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// tunnel is an upgraded connection (WebSocket or any other Upgrade)
// between a client and an instance. It counts as one request in flight on
// the instance until it closes, so Drain waits for it; a Drain that runs
// out of time, or Shutdown, ends it with shut.
type tunnel struct {
	up        net.Conn
	websocket bool
	// goingAway is set by shut: the proxy, not a peer, ends the tunnel.
	goingAway atomic.Bool
}

// tunnelLinger bounds how long one direction of a tunnel may stay open
// after the other has ended: peers close both ways promptly, and one that
// does not must not hold the connection (and a drain) forever.
const tunnelLinger = 5 * time.Second

// wsGoingAway is a WebSocket close frame with status 1001 "going away",
// unmasked as frames from a server are (RFC 6455 5.5.1, 7.4.1).
var wsGoingAway = []byte{0x88, 0x02, 0x03, 0xe9}

// shut ends the tunnel from the proxy's side: the upstream connection is
// closed, and the goroutine copying towards the client then tells the
// client (a WebSocket close frame when it can) and closes.
func (t *tunnel) shut() {
	if t.goingAway.CompareAndSwap(false, true) {
		t.up.Close()
	}
}

func (u *upstream) addTunnel(t *tunnel) {
	u.mu.Lock()
	if u.tunnels == nil {
		u.tunnels = make(map[*tunnel]struct{})
	}
	u.tunnels[t] = struct{}{}
	u.mu.Unlock()
}

func (u *upstream) removeTunnel(t *tunnel) {
	u.mu.Lock()
	delete(u.tunnels, t)
	u.mu.Unlock()
}

// closeTunnels shuts every tunnel to u.
func (u *upstream) closeTunnels() {
	u.mu.Lock()
	ts := make([]*tunnel, 0, len(u.tunnels))
	for t := range u.tunnels {
		ts = append(ts, t)
	}
	u.mu.Unlock()
	for _, t := range ts {
		t.shut()
	}
}

// tunnel relays bytes both ways after a 101 response until both sides are
// done. It writes the 101 head itself.
func (cc *clientConn) tunnel(u *upstream, uc *upConn, resp *response) {
	t := &tunnel{up: uc.c, websocket: hasToken(cc.req.upgrade, "websocket")}
	u.addTunnel(t)
	cc.tun.Store(t)
	defer func() {
		cc.tun.Store(nil)
		u.removeTunnel(t)
		uc.close()
	}()
	if cc.p.srv.shutting.Load() || u.draining.Load() {
		t.goingAway.Store(true) // raced with Shutdown or a Drain that gave up
	}

	cc.out.b = appendSwitchingProtocols(cc.out.b, resp)
	// Bytes the upstream sent right after its 101 belong to the tunnel.
	if n := uc.br.Buffered(); n > 0 {
		b, _ := uc.br.Peek(n)
		cc.out.write(b)
		uc.br.Discard(n)
	}
	cc.keepAliveProbes() // a tunnel may go quiet for hours
	if cc.out.flush() != nil {
		return
	}
	cc.c.SetReadDeadline(time.Time{})
	uc.c.SetReadDeadline(time.Time{})

	var wg sync.WaitGroup
	wg.Go(func() { // client → upstream
		if n := cc.br.Buffered(); n > 0 {
			b, _ := cc.br.Peek(n)
			uc.c.Write(b)
			cc.br.Discard(n)
		}
		io.Copy(uc.c, cc.c) // splice(2) on Linux
		closeWrite(uc.c)
		uc.c.SetReadDeadline(time.Now().Add(tunnelLinger))
	})

	// upstream → client, watching WebSocket frame boundaries so that a
	// tunnel the proxy ends can still close with a proper close frame.
	var frames wsFrames
	buf := copyBufs.Get().(*[64 << 10]byte)
	var goingAway bool
	for {
		if t.goingAway.Load() {
			goingAway = true // set before the read that fails, when shut
		}
		n, err := uc.c.Read(buf[:])
		if n > 0 {
			if t.websocket {
				frames.feed(buf[:n])
			}
			if _, werr := cc.c.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			goingAway = goingAway || t.goingAway.Load()
			break
		}
	}
	copyBufs.Put(buf)
	if goingAway && t.websocket && frames.atBoundary() {
		cc.c.SetWriteDeadline(time.Now().Add(tunnelLinger))
		cc.c.Write(wsGoingAway)
	}
	closeWrite(cc.c)
	cc.c.SetReadDeadline(time.Now().Add(tunnelLinger))
	wg.Wait()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
}

// wsFrames follows the frame boundaries of a WebSocket byte stream (RFC
// 6455 5.2) without keeping any payload.
type wsFrames struct {
	hdr  [14]byte
	nhdr int    // header bytes seen of the current frame
	left uint64 // payload bytes left of the current frame
}

func (f *wsFrames) feed(p []byte) {
	for len(p) > 0 {
		if f.nhdr == 0 && f.left > 0 {
			k := uint64(len(p))
			if k > f.left {
				k = f.left
			}
			f.left -= k
			p = p[k:]
			continue
		}
		f.hdr[f.nhdr] = p[0]
		f.nhdr++
		p = p[1:]
		if need := f.headerLen(); need > 0 && f.nhdr == need {
			f.left = f.payloadLen()
			f.nhdr = 0
		}
	}
}

// headerLen is the full header length once enough is known, else 0.
func (f *wsFrames) headerLen() int {
	if f.nhdr < 2 {
		return 0
	}
	n := 2
	switch f.hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if f.hdr[1]&0x80 != 0 {
		n += 4 // masking key
	}
	return n
}

func (f *wsFrames) payloadLen() uint64 {
	switch l := f.hdr[1] & 0x7f; l {
	case 126:
		return uint64(f.hdr[2])<<8 | uint64(f.hdr[3])
	case 127:
		var n uint64
		for _, b := range f.hdr[2:10] {
			n = n<<8 | uint64(b)
		}
		return n
	default:
		return uint64(l)
	}
}

// atBoundary reports whether the stream is between frames.
func (f *wsFrames) atBoundary() bool { return f.nhdr == 0 && f.left == 0 }
