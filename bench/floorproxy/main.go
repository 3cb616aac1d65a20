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
	"sync"
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
	bound, stop, err := listen(*addr, up, *loops)
	if err != nil {
		log.Fatalf("floorproxy: %v", err)
	}
	fmt.Println(bound) // for scripts that listen on port 0
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	stop()
}

// listen opens one SO_REUSEPORT listening socket per loop on addr (the
// kernel spreads connections over them), starts the loops and returns
// the address bound. stop ends the loops, closing every socket, and
// returns once they have.
func listen(addr string, up netip.AddrPort, loops int) (bound string, stop func(), err error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return "", nil, fmt.Errorf("-addr must be an IPv4 HOST:PORT: %q", addr)
	}
	// Closing the pipe's write end wakes every loop (its read end turns
	// readable) to end.
	var quit [2]int
	if err := syscall.Pipe2(quit[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		return "", nil, err
	}
	var wg sync.WaitGroup
	stop = func() {
		syscall.Close(quit[1])
		wg.Wait()
		syscall.Close(quit[0])
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	for i := 0; i < max(loops, 1); i++ {
		lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return "", nil, err
		}
		l, err := newLoop(lfd, quit[0], &syscall.SockaddrInet4{Port: int(up.Port()), Addr: up.Addr().As4()})
		if err != nil {
			syscall.Close(lfd)
			return "", nil, err
		}
		if ap, err = l.listen(ap); err != nil {
			l.shut()
			return "", nil, err
		}
		wg.Go(l.run)
	}
	return ap.String(), stop, nil
}

// listen binds the loop's socket to ap and listens. Port 0 picks one; the
// returned address has the port every further loop then shares.
func (l *loop) listen(ap netip.AddrPort) (netip.AddrPort, error) {
	syscall.SetsockoptInt(l.lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.SetsockoptInt(l.lfd, syscall.SOL_SOCKET, soReusePort, 1); err != nil {
		return ap, err
	}
	if err := syscall.Bind(l.lfd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		return ap, err
	}
	if err := syscall.Listen(l.lfd, 1024); err != nil {
		return ap, err
	}
	sa, err := syscall.Getsockname(l.lfd)
	if err != nil {
		return ap, err
	}
	return netip.AddrPortFrom(ap.Addr(), uint16(sa.(*syscall.SockaddrInet4).Port)), nil
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
	quit    int // readable when the loop must end
	up      *syscall.SockaddrInet4
	ends    map[int]*end
	buf     []byte
}

func newLoop(lfd, quit int, up *syscall.SockaddrInet4) (*loop, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	l := &loop{ep: ep, lfd: lfd, quit: quit, up: up, ends: map[int]*end{}, buf: make([]byte, 64<<10)}
	for _, fd := range []int{lfd, quit} {
		if err := l.watch(fd, syscall.EPOLLIN, syscall.EPOLL_CTL_ADD); err != nil {
			syscall.Close(ep)
			return nil, err
		}
	}
	return l, nil
}

// shut closes the loop's sockets and its epoll set.
func (l *loop) shut() {
	for fd := range l.ends {
		syscall.Close(fd)
	}
	syscall.Close(l.lfd)
	syscall.Close(l.ep)
}

func (l *loop) watch(fd int, events uint32, op int) error {
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
	return syscall.EpollCtl(l.ep, op, fd, &ev)
}

// run serves the loop's connections on a thread of its own until the
// quit pipe turns readable.
func (l *loop) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer l.shut()
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
			if fd == l.quit {
				return
			}
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
			l.closePair(e)
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
			l.rearm(e)
			return false
		}
		if err != nil {
			l.closePair(e)
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
	if !l.write(e, b) {
		return l.ends[e.fd] == e
	}
	l.rearm(e)
	l.relay(e.peer)
	return l.ends[e.fd] == e
}

// rearm sets what the loop waits for after e's held bytes changed: e is
// watched for room while it holds bytes, and its peer is not read
// meanwhile (a level-triggered EPOLLIN on it would wake the loop in vain
// for as long as e's reader does not read).
func (l *loop) rearm(e *end) {
	for _, x := range []*end{e, e.peer} {
		var ev uint32
		if len(x.peer.out) == 0 {
			ev |= syscall.EPOLLIN
		}
		if len(x.out) > 0 {
			ev |= syscall.EPOLLOUT
		}
		l.watch(x.fd, ev, syscall.EPOLL_CTL_MOD)
	}
}

// closePair ends both sides of a pair.
func (l *loop) closePair(e *end) {
	for _, x := range []*end{e, e.peer} {
		if l.ends[x.fd] == x {
			delete(l.ends, x.fd)
			syscall.Close(x.fd) // also leaves the epoll set
		}
	}
}
