package supervisor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitTimeout bounds every wait in these tests; a healthy run takes far
// less, even with the race detector on two shared cores.
const waitTimeout = 15 * time.Second

// testConfig is a Config with fast timings for tests.
func testConfig(t testing.TB) Config {
	return Config{
		Logger:            slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		StopGrace:         2 * time.Second,
		RestartBackoffMin: 10 * time.Millisecond,
		RestartBackoffMax: 50 * time.Millisecond,
	}
}

// newSupervisor returns a Supervisor that is closed when the test ends,
// and then checks that no goroutine outlived it.
func newSupervisor(t testing.TB, cfg Config) *Supervisor {
	t.Helper()
	before := runtime.NumGoroutine()
	s := New(cfg)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		s.ports.mu.Lock()
		owned := len(s.ports.owned)
		s.ports.mu.Unlock()
		if owned != 0 {
			t.Errorf("after Close %d ports still owned", owned)
		}
		// Goroutines of finished HTTP requests in the test itself may take a
		// moment to notice their closed connections.
		if !poll(func() bool { return runtime.NumGoroutine() <= before }) {
			buf := make([]byte, 1<<20)
			t.Errorf("goroutine leak: %d before, %d after Close\n%s",
				before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
	})
	return s
}

// appSpec runs the test binary as the app in mode.
func appSpec(t testing.TB, mode string, instances int) Spec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{
		Name:      "hello--000002",
		Dir:       t.TempDir(),
		Command:   "exec " + shellQuote(exe),
		Env:       []string{appModeEnv + "=" + mode, "PATH=" + os.Getenv("PATH")},
		Instances: instances,
		Health:    HealthCheck{Path: "/health", Interval: 20 * time.Millisecond, Timeout: time.Second},
	}
}

// start starts spec and stops the group when the test ends.
func start(t testing.TB, s *Supervisor, spec Spec) *Group {
	t.Helper()
	g, err := s.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return g
}

func waitHealthy(t testing.TB, g *Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := g.WaitHealthy(ctx); err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
}

// eventually polls cond until it holds and fails the test if waitTimeout
// passes first.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !poll(cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// poll checks cond every few milliseconds until it holds (true) or
// waitTimeout passes (false).
func poll(cond func() bool) bool {
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// get fetches http://addr+path with a client that keeps no connections.
func get(addr, path string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// alive reports whether pid is a running (not zombie) process. Orphans are
// reaped by PID 1, which in a container may never do so; a zombie has died.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// syncBuffer is an io.Writer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// healthEvents records OnHealth calls.
type healthEvents struct {
	mu     sync.Mutex
	events []string
}

func (h *healthEvents) record(addr string, healthy bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if healthy {
		h.events = append(h.events, addr+" healthy")
	} else {
		h.events = append(h.events, addr+" unhealthy")
	}
}

func (h *healthEvents) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

// reapN runs ReapOrphans and counts what it killed.
func reapN(s *Supervisor) (int, error) {
	reaped, err := s.ReapOrphans(context.Background())
	return len(reaped), err
}
