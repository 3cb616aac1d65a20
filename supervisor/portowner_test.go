//go:build linux

package supervisor

import (
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestListensOn: a port counts as the instance's only when its process or
// one of its descendants holds the listening socket, not when another
// program (here the test itself) does.
func TestListensOn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if ok, err := listensOn(os.Getpid(), port); err != nil || !ok {
		t.Fatalf("the listener's own process: %v %v, want true", ok, err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := func(withSocket bool, args ...string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if withSocket {
			cmd.ExtraFiles = []*os.File{f} // fd 3
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
		return cmd
	}
	other := start(false, "sleep", "30")
	if ok, err := listensOn(other.Process.Pid, port); err != nil || ok {
		t.Fatalf("a process that does not hold the socket: %v %v, want false", ok, err)
	}
	// The shell lets go of the socket; its child, started before, keeps it.
	parent := start(true, "sh", "-c", "sleep 30 & exec 3>&-; echo closed; wait")
	eventually(t, "the shell's child holds the socket and the shell does not", func() bool {
		own, _ := listensOn(parent.Process.Pid, port)
		links, _ := os.ReadDir("/proc/" + strconv.Itoa(parent.Process.Pid) + "/fd")
		shellHolds := false
		for _, l := range links {
			if l.Name() == "3" {
				shellHolds = true
			}
		}
		return own && !shellHolds
	})
}

// TestConfirmOwner: a passed check makes an instance healthy only when the
// port is its own; one that is healthy already is not looked at again.
func TestConfirmOwner(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	in := &instance{g: &Group{}, port: ln.Addr().(*net.TCPAddr).Port, proc: &process{pid: other.Process.Pid}}
	if ok, result := in.confirmOwner("200 OK"); ok || !strings.Contains(result, "another program listens there") {
		t.Fatalf("a port answered by another program: %v %q", ok, result)
	}
	in.proc.pid = os.Getpid()
	if ok, result := in.confirmOwner("200 OK"); !ok || result != "200 OK" {
		t.Fatalf("its own port: %v %q", ok, result)
	}
	in.proc, in.healthy = &process{pid: other.Process.Pid}, true
	if ok, _ := in.confirmOwner("200 OK"); !ok {
		t.Fatal("a healthy instance was looked at again")
	}
}

// TestDiagListeningInodes: the kernel's answer over sock_diag names the
// same listening sockets as /proc/net/tcp and tcp6, and none of a port
// nobody listens on (not even a connection's).
func TestDiagListeningInodes(t *testing.T) {
	var ports []int
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", ":0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v (no IPv6 here?)", addr, err)
			continue
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	// A connected socket whose local port is another listener's port
	// number would be listed by /proc but is not listening: dial out and
	// take the client side's port.
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	connected := c.LocalAddr().(*net.TCPAddr).Port
	for _, port := range append(ports, connected) {
		diag, err := diagListeningInodes(port)
		if err != nil {
			t.Fatalf("port %d: sock_diag: %v", port, err)
		}
		proc, err := procListeningInodes(os.Getpid(), port)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(diag, proc) {
			t.Errorf("port %d: sock_diag says %v, /proc %v", port, diag, proc)
		}
		if want := port != connected; (len(diag) == 1) != want {
			t.Errorf("port %d: %d listening sockets, want %v", port, len(diag), map[bool]string{true: "one", false: "none"}[want])
		}
	}
}

// BenchmarkListeningInodes: the check of an instance's port, asked of the
// kernel for listeners only (sock_diag) and read from /proc/net/tcp, with
// 2,000 open connections in the namespace (a busy host has many more).
func BenchmarkListeningInodes(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		var conns []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil { // closed: the benchmark is over
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	defer func() { ln.Close(); <-accepting }()
	for range 1000 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
	}
	port := ln.Addr().(*net.TCPAddr).Port
	for _, way := range []struct {
		name string
		read func() (map[uint64]bool, error)
	}{
		{"sock_diag", func() (map[uint64]bool, error) { return diagListeningInodes(port) }},
		{"proc", func() (map[uint64]bool, error) { return procListeningInodes(os.Getpid(), port) }},
	} {
		b.Run(way.name, func(b *testing.B) {
			for b.Loop() {
				if inodes, err := way.read(); err != nil || len(inodes) != 1 {
					b.Fatal(inodes, err)
				}
			}
		})
	}
}
