package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
)

// connReader is the io.Reader under a connection's bufio.Reader. It can
// carry bytes to write first (a request to an upstream, a response to a
// client) and then wait for the answer without the read that Go's net
// package always tries first and that, right after a write to an
// upstream, can only fail with EAGAIN. On this kind of machine a syscall
// is the largest cost of a proxied request; on the upstream side this
// saves one per request (the client side keeps its read: see below).
//
// The write happens inside the raw read callback, after Go's poller has
// been armed for reading, so an answer that arrives at once is not missed.
// Arming the poller also forgets readiness reported before it: bytes or an
// end of stream that arrived earlier would never wake the wait. An
// upstream sends nothing before it has the request (and a pooled
// connection it closed answers the write with a reset, which does wake
// the poller), so upstream readers wait at once. A client may send first
// (a pipelined request, or its half of the connection closed while it
// reads the response), so client readers, made with peerSendsFirst, try
// one read after the write before they wait.
type connReader struct {
	c  net.Conn
	rc syscall.RawConn // nil when c is not a plain socket: no shortcut then
	// peerSendsFirst: the peer may have sent bytes before the pending
	// write (see above).
	peerSendsFirst bool
	// pending is written before the next read; the callback clears it.
	pending []byte

	// state of the read callback, kept here so that the callback, a method
	// value bound once, does not allocate per call.
	cb, tryCb, peekCb func(fd uintptr) bool
	p                 []byte
	n                 int
	err               error
	wrote             bool
	blocked           bool
	peek              [1]byte
}

func newConnReader(c net.Conn) *connReader {
	r := &connReader{}
	r.cb, r.tryCb, r.peekCb = r.callback, r.tryCallback, r.peekCallback
	r.reset(c)
	return r
}

// tryRead reads what has arrived without waiting; wouldBlock reports that
// nothing had. Copy loops use it to send what they gathered only when the
// next read would wait, and otherwise to send it together with what they
// read next, in one write.
func (r *connReader) tryRead(p []byte) (n int, wouldBlock bool, err error) {
	if r.rc == nil || len(r.pending) > 0 {
		return 0, true, nil
	}
	r.p, r.n, r.err, r.blocked = p, 0, nil, false
	rerr := r.rc.Read(r.tryCb)
	r.p = nil
	switch {
	case rerr != nil:
		return 0, false, rerr
	case r.blocked:
		return 0, true, nil
	case r.err != nil:
		return r.n, false, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", r.err)}
	case r.n == 0:
		return 0, false, io.EOF
	}
	return r.n, false, nil
}

// alive reports whether an idle connection is still open: nothing to
// read and no end of stream. An upstream that closed it, or sent bytes
// nobody asked for, makes it unusable.
func (r *connReader) alive() bool {
	if r.rc == nil {
		return true
	}
	r.blocked, r.n = false, -1
	if err := r.rc.Read(r.peekCb); err != nil {
		return false
	}
	return r.blocked
}

func (r *connReader) peekCallback(fd uintptr) bool {
	for {
		n, _, err := syscall.Recvfrom(int(fd), r.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		r.blocked = err == syscall.EAGAIN
		r.n = n
		return true
	}
}

func (r *connReader) tryCallback(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), r.p)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			r.blocked = true
		} else {
			r.n, r.err = max(n, 0), err
		}
		return true
	}
}

func (r *connReader) reset(c net.Conn) {
	r.c, r.rc, r.pending, r.p = c, nil, nil, nil
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			r.rc = rc
		}
	}
}

// flush writes pending bytes with an ordinary write.
func (r *connReader) flush() error {
	if len(r.pending) == 0 {
		return nil
	}
	_, err := r.c.Write(r.pending)
	r.pending = nil
	return err
}

// Read writes pending bytes, then reads.
func (r *connReader) Read(p []byte) (int, error) {
	if len(r.pending) == 0 || r.rc == nil {
		if err := r.flush(); err != nil {
			return 0, err
		}
		return r.c.Read(p)
	}
	r.p, r.n, r.err, r.wrote, r.blocked = p, 0, nil, false, false
	rerr := r.rc.Read(r.cb)
	r.p = nil
	if r.blocked {
		// The socket buffer is full (a large response to a slow reader):
		// let the net package wait for room, then read as usual.
		if err := r.flush(); err != nil {
			return 0, err
		}
		return r.c.Read(p)
	}
	if rerr != nil {
		// A deadline that had passed already (Shutdown closing an idle
		// connection) fails before the callback: the pending bytes, a
		// response the client waits for, must still go out.
		if !r.wrote {
			r.flush()
		}
		return 0, rerr
	}
	if r.err != nil {
		return r.n, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", r.err)}
	}
	if r.n == 0 {
		return 0, io.EOF
	}
	return r.n, nil
}

// callback runs with the socket armed for reading: first the write, then
// (after the poller reports data) the read.
func (r *connReader) callback(fd uintptr) bool {
	if !r.wrote {
		for len(r.pending) > 0 {
			k, err := syscall.Write(int(fd), r.pending)
			if k > 0 {
				r.pending = r.pending[k:]
			}
			if err == syscall.EINTR {
				continue
			}
			if err != nil || k <= 0 {
				r.blocked = true // EAGAIN or an error: flush deals with both
				return true
			}
		}
		r.pending = nil
		r.wrote = true
		if !r.peerSendsFirst {
			return false // wait until the answer is readable
		}
	}
	for {
		n, err := syscall.Read(int(fd), r.p)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return false
		}
		r.n, r.err = max(n, 0), err
		return true
	}
}
