package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// haproxy is HAProxy (Debian's haproxy package) running as a child of the
// test in front of some baton proxies, with health checks.
type haproxy struct {
	addr   string // where clients send requests
	socket string // its admin socket
	cmd    *exec.Cmd
	exited chan struct{}
	out    lockedBuffer
}

// lockedBuffer collects a child's output from both its pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startHAProxy runs HAProxy on a free port of 127.0.0.1, balancing round
// robin over the proxies at servers (by name), each checked every 100 ms
// with GET / for checkHost (down after 2 failures, up after 1 success;
// an answer may take up to 2 s, a refused connection fails at once);
// a request whose connection to a server fails is retried on another.
// It is stopped at test end.
func startHAProxy(t *testing.T, checkHost string, servers map[string]string) *haproxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy is not installed: apt-get install -y haproxy (./test.sh installs it)")
	}
	dir := t.TempDir()
	h := &haproxy{addr: freeAddr(t), socket: filepath.Join(dir, "admin.sock"), exited: make(chan struct{})}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
    maxconn 1024
    stats socket %s mode 600 level admin
defaults
    mode http
    timeout connect 1s
    # A check waits this long for its answer (without it, as long as the
    # check interval: on a loaded machine every server went down at once).
    # A host that is gone refuses the connection: that fails at once.
    timeout check 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response
frontend hosts
    bind %s
    default_backend hosts
backend hosts
    balance roundrobin
    # Which host answered: the tests' failure messages name it.
    http-response set-header X-Server %%s
    option httpchk
    http-check send meth GET uri / ver HTTP/1.1 hdr Host %s
    http-check expect status 200
    default-server inter 100ms fall 2 rise 1
`, h.socket, h.addr, checkHost)
	for name, addr := range servers {
		fmt.Fprintf(&cfg, "    server %s %s check\n", name, addr)
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(bin, "-db", "-f", path)
	h.cmd.Stdout, h.cmd.Stderr = &h.out, &h.out
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.cmd.Wait(); close(h.exited) }()
	t.Cleanup(func() {
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(10 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.exited
		}
		if t.Failed() {
			t.Logf("haproxy output:\n%s", h.out.String())
		}
	})
	eventually(t, 10*time.Second, "haproxy reports every server up", func() bool {
		select {
		case <-h.exited:
			t.Fatalf("haproxy exited at start:\n%s", h.out.String())
		default:
		}
		st, err := h.states()
		if err != nil || len(st) != len(servers) {
			return false
		}
		for _, s := range st {
			if s != "UP" {
				return false
			}
		}
		return true
	})
	return h
}

// states returns each server's status as HAProxy's admin socket says
// ("UP", "DOWN", …), by server name.
func (h *haproxy) states() (map[string]string, error) {
	c, err := net.DialTimeout("unix", h.socket, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("show stat\n")); err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		// pxname,svname,…,status is the 18th field.
		if len(f) > 17 && f[0] == "hosts" && f[1] != "FRONTEND" && f[1] != "BACKEND" {
			out[f[1]] = strings.Fields(f[17] + " ")[0]
		}
	}
	return out, sc.Err()
}

// killBehind kills b (SIGKILL) while l runs through h, and returns once
// HAProxy marked b's server down: how long that took, and what l got
// until then (l is finished; the caller starts another load for after).
func (h *haproxy) killBehind(t *testing.T, b *batonProc, server string, l *load) (time.Duration, map[string]int, []string) {
	t.Helper()
	killed := time.Now()
	b.stop(syscall.SIGKILL)
	eventually(t, 10*time.Second, "haproxy marks "+server+" down", func() bool {
		st, err := h.states()
		return err == nil && st[server] == "DOWN"
	})
	down := time.Since(killed)
	got, failed := l.finish()
	return down, got, failed
}
