//go:build linux

package supervisor

import (
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
