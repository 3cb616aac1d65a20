// Command floorproxy is the floor under every proxy in bench/proxies.sh:
// a TCP relay with no HTTP in it. Each client connection gets its own
// connection to -upstream, and bytes are copied both ways by event loops
// (one per core, epoll, non-blocking sockets, no goroutine per
// connection). No parsing, no routing, no headers added.
//
// What it costs per request is what the kernel's loopback TCP costs any
// proxy: two reads and two writes, and waking the other side. A real
// proxy cannot do less work per request, so its ratio to direct in the
// same run bounds every proxy's on this machine.
//
//	floorproxy -addr 127.0.0.1:8080 -upstream 127.0.0.1:9001
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	upstream := flag.String("upstream", "", "upstream address HOST:PORT")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "event loops (threads)")
	flag.Parse()
	up, err := netip.ParseAddrPort(*upstream)
	if err != nil || !up.Addr().Is4() {
		log.Fatalf("floorproxy: -upstream must be an IPv4 HOST:PORT: %q", *upstream)
	}
	r, err := listen(*addr, up, *loops)
	if err != nil {
		log.Fatalf("floorproxy: %v", err)
	}
	fmt.Println(r.addr) // for scripts that listen on port 0
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}

// relay is the running proxy: its address and its loops.
type relay struct {
	addr  string
	loops []*loop
}

// listen opens one SO_REUSEPORT listening socket per loop on addr (the
// kernel spreads connections over them) and starts the loops. They run
// until the process ends.
func listen(addr string, up netip.AddrPort, loops int) (*relay, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("-addr must be an IPv4 HOST:PORT: %q", addr)
	}
	r := &relay{}
	for i := 0; i < max(loops, 1); i++ {
		lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		if err := syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, soReusePort, 1); err != nil {
			return nil, err
		}
		if err := syscall.Bind(lfd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
			return nil, err
		}
		if err := syscall.Listen(lfd, 1024); err != nil {
			return nil, err
		}
		if ap.Port() == 0 { // the others share the port the first one got
			sa, err := syscall.Getsockname(lfd)
			if err != nil {
				return nil, err
			}
			ap = netip.AddrPortFrom(ap.Addr(), uint16(sa.(*syscall.SockaddrInet4).Port))
		}
		l, err := newLoop(lfd, &syscall.SockaddrInet4{Port: int(up.Port()), Addr: up.Addr().As4()})
		if err != nil {
			return nil, err
		}
		r.loops = append(r.loops, l)
		go l.run()
	}
	r.addr = ap.String()
	return r, nil
}

// soReusePort is SO_REUSEPORT, which package syscall does not name.
const soReusePort = 0xf

// end is one side of a relayed connection.
type end struct {
	fd   int
	peer *end
	// out holds bytes read from peer that fd would not take yet; while
	// it does, peer is not read (back-pressure) and fd waits for EPOLLOUT.
	out []byte
}

// loop is one event loop: a thread, an epoll set, the connections in it.
type loop struct {
	ep, lfd int
	up      *syscall.SockaddrInet4
	ends    map[int]*end
	buf     []byte
}

func newLoop(lfd int, up *syscall.SockaddrInet4) (*loop, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	l := &loop{ep: ep, lfd: lfd, up: up, ends: map[int]*end{}, buf: make([]byte, 64<<10)}
	return l, l.watch(lfd, syscall.EPOLLIN, syscall.EPOLL_CTL_ADD)
}

func (l *loop) watch(fd int, events uint32, op int) error {
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
	return syscall.EpollCtl(l.ep, op, fd, &ev)
}

// run serves the loop's connections on a thread of its own.
func (l *loop) run() {
	runtime.LockOSThread()
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(l.ep, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			log.Fatalf("floorproxy: epoll_wait: %v", err)
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == l.lfd {
				l.accept()
				continue
			}
			e := l.ends[fd]
			if e == nil {
				continue // closed earlier in this batch
			}
			if ev.Events&syscall.EPOLLOUT != 0 && !l.flush(e) {
				continue
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				l.relay(e)
			}
		}
	}
}

// accept takes every waiting connection and pairs it with a new
// connection to the upstream.
func (l *loop) accept() {
	for {
		cfd, _, err := syscall.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: none left
		}
		ufd, err := l.dial()
		if err != nil {
			log.Printf("floorproxy: upstream: %v", err)
			syscall.Close(cfd)
			continue
		}
		c, u := &end{fd: cfd}, &end{fd: ufd}
		c.peer, u.peer = u, c
		for _, e := range []*end{c, u} {
			syscall.SetsockoptInt(e.fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
			l.ends[e.fd] = e
			if err := l.watch(e.fd, syscall.EPOLLIN, syscall.EPOLL_CTL_ADD); err != nil {
				log.Fatalf("floorproxy: epoll_ctl: %v", err)
			}
		}
	}
}

// dial connects to the upstream; on loopback a blocking connect is
// immediate.
func (l *loop) dial() (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := syscall.Connect(fd, l.up); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, syscall.SetNonblock(fd, true)
}

// relay copies what e has to its peer until e would block.
func (l *loop) relay(e *end) {
	for len(e.peer.out) == 0 {
		n, err := syscall.Read(e.fd, l.buf)
		if errors.Is(err, syscall.EAGAIN) {
			return
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if n <= 0 { // end of stream or an error: the pair ends
			l.close(e)
			return
		}
		if !l.write(e.peer, l.buf[:n]) {
			return
		}
	}
}

// write sends b to e, keeping what e does not take for EPOLLOUT. It
// reports whether e may take more.
func (l *loop) write(e *end, b []byte) bool {
	for len(b) > 0 {
		n, err := syscall.Write(e.fd, b)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			e.out = append(e.out[:0], b...)
			l.watch(e.fd, syscall.EPOLLIN|syscall.EPOLLOUT, syscall.EPOLL_CTL_MOD)
			return false
		}
		if err != nil {
			l.close(e)
			return false
		}
		b = b[n:]
	}
	return true
}

// flush sends e's held bytes once it is writable, then resumes reading
// its peer. It reports whether e is still open.
func (l *loop) flush(e *end) bool {
	b := e.out
	e.out = nil
	l.watch(e.fd, syscall.EPOLLIN, syscall.EPOLL_CTL_MOD)
	if !l.write(e, b) {
		return l.ends[e.fd] == e
	}
	l.relay(e.peer)
	return l.ends[e.fd] == e
}

// close ends both sides of a pair.
func (l *loop) close(e *end) {
	for _, x := range []*end{e, e.peer} {
		if l.ends[x.fd] == x {
			delete(l.ends, x.fd)
			syscall.Close(x.fd) // also leaves the epoll set
		}
	}
}
