package proxy

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// A connection reaches Accept only with its first bytes, so the
// connection's goroutine never waits for its request.
func TestListenDefersAcceptUntilBytesArrive(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tl := ln.(*net.TCPListener)
	rc, err := tl.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT)
	})
	if gerr != nil || v <= 0 {
		t.Fatalf("TCP_DEFER_ACCEPT on the listener = %d, %v; want it on", v, gerr)
	}

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Connected, but silent: not handed over (the kernel's own timeout is
	// a second, well past this window).
	tl.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if sc, err := tl.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
		if sc != nil {
			sc.Close()
		}
		t.Fatalf("Accept of a connection that sent nothing = %v; want it held back", err)
	}

	if _, err := c.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	tl.SetDeadline(time.Now().Add(10 * time.Second))
	sc, err := tl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	// The bytes are there without waiting.
	src, _ := sc.(*net.TCPConn).SyscallConn()
	var n int
	var rerr error
	buf := make([]byte, 64)
	src.Control(func(fd uintptr) { n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT) })
	if rerr != nil || string(buf[:n]) != "GET / HTTP/1.1\r\n" {
		t.Fatalf("first read right after Accept = %q, %v; want the request line at once", buf[:max(n, 0)], rerr)
	}
}
