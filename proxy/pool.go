package proxy

import (
	"bufio"
	"context"
	"net"
	"sync"
	"time"
)

// upConn is one keep-alive connection to an upstream instance.
type upConn struct {
	c  net.Conn
	br *bufio.Reader
	rd *connReader // under br
	// idleSince is when it went back to the pool (unix nanoseconds).
	idleSince int64
	// reused is set when it comes from the pool: a failure before any
	// response byte may then be the upstream having closed it while idle,
	// and the request may be sent again on a fresh connection.
	reused bool
}

// upstreamReadBuffer sizes the buffered reader per upstream connection:
// a response head and a small body fit, larger bodies bypass it.
const upstreamReadBuffer = 8 << 10

// readers pairs a bufio.Reader with the connReader under it, for reuse.
type readers struct {
	br *bufio.Reader
	rd *connReader
}

var upReaders = sync.Pool{New: func() any {
	rd := newConnReader(nil)
	return &readers{br: bufio.NewReaderSize(rd, upstreamReadBuffer), rd: rd}
}}

// close closes the connection and recycles its reader.
func (uc *upConn) close() {
	uc.c.Close()
	if uc.br != nil {
		uc.rd.reset(nil)
		uc.br.Reset(uc.rd)
		upReaders.Put(&readers{br: uc.br, rd: uc.rd})
		uc.br, uc.rd = nil, nil
	}
}

// connPool keeps an upstream's idle connections, most recently used first:
// a warm connection is more likely still open, and the extra ones at the
// bottom age out.
type connPool struct {
	mu     sync.Mutex
	idle   []*upConn
	closed bool
}

const (
	// maxIdlePerUpstream bounds the idle connections kept per instance;
	// more concurrent requests than this open and close connections.
	maxIdlePerUpstream = 256
	// upstreamIdleTimeout closes connections idle this long; Go servers
	// without an IdleTimeout would keep them forever.
	upstreamIdleTimeout = 90 * time.Second
	dialTimeout         = 10 * time.Second
)

// get returns the most recently used idle connection, or nil. The idle
// connections are a stack in the order they came back, so those idle for
// upstreamIdleTimeout or longer lie at its bottom: get closes them all,
// not only when the top one is stale too, or a steady trickle of requests
// on the top one would keep the rest of a burst's connections open
// forever.
func (p *connPool) get(now int64) *upConn {
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && now-p.idle[n].idleSince >= int64(upstreamIdleTimeout) {
		n++
	}
	stale := p.idle[:n]
	p.idle = p.idle[n:]
	var uc *upConn
	if top := len(p.idle) - 1; top >= 0 {
		uc = p.idle[top]
		p.idle[top] = nil
		p.idle = p.idle[:top]
	}
	p.mu.Unlock()
	for i, o := range stale { // no longer in p.idle: only get holds them
		o.close()
		stale[i] = nil
	}
	if uc != nil {
		uc.reused = true
	}
	return uc
}

// put returns a healthy connection for reuse.
func (p *connPool) put(uc *upConn, now int64) {
	uc.idleSince = now
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdlePerUpstream {
		p.mu.Unlock()
		uc.close()
		return
	}
	p.idle = append(p.idle, uc)
	p.mu.Unlock()
}

// closeIdle closes the idle connections; with shut, connections returned
// later are closed too (the upstream has left the registry).
func (p *connPool) closeIdle(shut bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if shut {
		p.closed = true
	}
	p.mu.Unlock()
	for _, uc := range idle {
		uc.close()
	}
}

var dialer = &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}

// dial opens a new connection to addr.
func dial(ctx context.Context, addr string) (*upConn, error) {
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	rs := upReaders.Get().(*readers)
	rs.rd.reset(c)
	rs.br.Reset(rs.rd)
	return &upConn{c: c, br: rs.br, rd: rs.rd}, nil
}
