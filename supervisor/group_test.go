package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

func TestStartTwoInstances(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	var out syncBuffer
	spec := appSpec(t, "ok", 2)
	spec.Output = &out
	g := start(t, s, spec)
	waitHealthy(t, g)

	addrs := g.Addrs()
	if len(addrs) != 2 || addrs[0] == addrs[1] {
		t.Fatalf("Addrs = %v, want 2 distinct", addrs)
	}
	for _, addr := range addrs {
		status, body, err := get(addr, "/")
		port := strings.TrimPrefix(addr, "127.0.0.1:")
		if err != nil || status != 200 || body != "hello from "+port+"\n" {
			t.Errorf("GET %s/ = %d %q %v", addr, status, body, err)
		}
	}
	for i, st := range g.Status() {
		if st.Index != i+1 || st.Addr != addrs[i] || st.PID <= 0 || !st.Healthy || st.LastCheck != "ok" || st.StartedAt.IsZero() {
			t.Errorf("Status[%d] = %+v", i, st)
		}
	}
	for i, addr := range addrs {
		port := strings.TrimPrefix(addr, "127.0.0.1:")
		for _, want := range []string{
			fmt.Sprintf("[%d] app ok starting on port %s\n", i+1, port),
			fmt.Sprintf("[%d] app ok stderr line\n", i+1),
		} {
			eventually(t, "output line "+want, func() bool { return strings.Contains(out.String(), want) })
		}
	}
	for _, line := range strings.SplitAfter(out.String(), "\n") {
		if line != "" && !regexp.MustCompile(`^\[[12]\] .*\n$`).MatchString(line) {
			t.Errorf("output line without prefix: %q", line)
		}
	}

	// Concurrent Stops all wait for the end and succeed.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := g.Stop(context.Background()); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
	}
	wg.Wait()
	for _, st := range g.Status() {
		if st.PID != 0 || st.Healthy {
			t.Errorf("after Stop: %+v", st)
		}
	}
	if err := g.WaitHealthy(context.Background()); !errors.Is(err, ErrStopped) {
		t.Errorf("WaitHealthy after Stop = %v, want ErrStopped", err)
	}
}

// startListenLate starts one instance of the test app that listens only
// once open is called (mode listen-late); interval is its health check's.
func startListenLate(t *testing.T, interval time.Duration) (g *Group, open func()) {
	t.Helper()
	s := newSupervisor(t, testConfig(t))
	spec := appSpec(t, "listen-late", 1)
	spec.Health.Interval = interval
	gate := filepath.Join(t.TempDir(), "gate")
	spec.Env = append(spec.Env, appFileEnv+"="+gate)
	return start(t, s, spec), func() {
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// wantPortTaken waits for g's start to fail with ErrPortTaken, its error
// saying why.
func wantPortTaken(t *testing.T, g *Group, why string) {
	t.Helper()
	err := g.WaitHealthy(context.Background())
	if !errors.Is(err, ErrExited) || !errors.Is(err, ErrPortTaken) {
		t.Fatalf("WaitHealthy = %v, want ErrExited and ErrPortTaken", err)
	}
	for _, want := range []string{why, "address already in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestWaitHealthyNamesATakenPort: an instance that exits before going live
// because another program bound its port first (here the test, between
// the supervisor's probe and the app) fails the start with ErrPortTaken,
// which tells the caller a start on other ports may succeed; the error
// quotes the app's own complaint.
func TestWaitHealthyNamesATakenPort(t *testing.T) {
	g, open := startListenLate(t, 20*time.Millisecond)
	l, err := net.Listen("tcp", g.Addrs()[0])
	if err != nil {
		t.Fatalf("take the instance's port first: %v", err)
	}
	defer l.Close()
	open()
	wantPortTaken(t, g, "another program listens there now")
}

// TestWaitHealthyNamesAPortHeldForAMoment: another program may hold an
// instance's port only while the app binds it and leave no listener
// behind (another baton's probe of the same port: a whole test run failed
// a deployment on it). The app's own "address already in use" then says
// the port was taken: ErrPortTaken, and the caller starts again on other
// ports. Here a socket bound without listening holds the port; nothing
// listens there when the app exits.
func TestWaitHealthyNamesAPortHeldForAMoment(t *testing.T) {
	g, open := startListenLate(t, 20*time.Millisecond)
	port, err := strconv.Atoi(g.Addrs()[0][strings.LastIndexByte(g.Addrs()[0], ':')+1:])
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("hold the instance's port first: %v", err)
	}
	open()
	wantPortTaken(t, g, "the app could not bind it")
}

// TestStartingInstanceNeedNotWaitAnInterval: an instance that fails its
// first check and listens a moment later is healthy long before its check
// interval (here an hour) comes round: a starting instance is checked
// again after a few milliseconds, then less and less often.
func TestStartingInstanceNeedNotWaitAnInterval(t *testing.T) {
	g, open := startListenLate(t, time.Hour)
	eventually(t, "the first check, failed", func() bool {
		return g.Status()[0].LastCheck == "connection refused"
	})
	open()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := g.WaitHealthy(ctx); err != nil {
		t.Fatalf("WaitHealthy = %v, want healthy well within the hour's interval", err)
	}
}

func TestStartingRecheck(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct{ elapsed, interval, want time.Duration }{
		{0, 500 * ms, 5 * ms},
		{100 * ms, 500 * ms, 5 * ms},
		{101 * ms, 500 * ms, 101 * ms},
		{300 * ms, 500 * ms, 300 * ms},
		{2 * time.Second, 500 * ms, 500 * ms},
		{0, 2 * ms, 2 * ms},
	} {
		if got := StartingRecheck(c.elapsed, c.interval); got != c.want {
			t.Errorf("StartingRecheck(%s, %s) = %s, want %s", c.elapsed, c.interval, got, c.want)
		}
	}
}

func TestWaitHealthyReturnsWhenInstanceExits(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	g := start(t, s, appSpec(t, "exit", 2))

	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	err := g.WaitHealthy(ctx)
	if ctx.Err() != nil {
		t.Fatal("WaitHealthy waited for the deadline")
	}
	if !errors.Is(err, ErrExited) || errors.Is(err, ErrPortTaken) {
		t.Fatalf("WaitHealthy = %v, want ErrExited (and not ErrPortTaken)", err)
	}
	for _, want := range []string{"hello--000002: instance ", "exit status 3", "fatal: config missing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	// Not live: no restart.
	eventually(t, "both instances down", func() bool {
		for _, st := range g.Status() {
			if st.PID != 0 || st.LastError != "exit status 3" {
				return false
			}
		}
		return true
	})
	for _, st := range g.Status() {
		if st.Restarts != 0 {
			t.Errorf("restarted before SetLive: %+v", st)
		}
	}
}

func TestWaitHealthyDeadlineNamesCheckResult(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	g := start(t, s, appSpec(t, "fail", 1))
	eventually(t, "a failed check", func() bool { return g.Status()[0].LastCheck == "status 500" })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := g.WaitHealthy(ctx)
	if !errors.Is(err, ErrUnhealthy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitHealthy = %v, want ErrUnhealthy and DeadlineExceeded", err)
	}
	want := fmt.Sprintf("instance 1 (%s): status 500", g.Addrs()[0])
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestWaitHealthyConnectionRefused(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	spec := appSpec(t, "ok", 1)
	spec.Command = "exec sleep 1000" // never listens
	g := start(t, s, spec)
	eventually(t, "a refused check", func() bool { return g.Status()[0].LastCheck == "connection refused" })

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.WaitHealthy(ctx); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("WaitHealthy = %v, want connection refused", err)
	}
}

func TestSlowStartBecomesHealthy(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	ready := filepath.Join(t.TempDir(), "ready")
	spec := appSpec(t, "slowstart", 1)
	spec.Env = append(spec.Env, appFileEnv+"="+ready)
	g := start(t, s, spec)
	eventually(t, "a 503 check", func() bool { return g.Status()[0].LastCheck == "status 503" })

	if err := os.WriteFile(ready, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, g)
}

func TestCrashedInstanceRestartsOnSamePort(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	var events healthEvents
	spec := appSpec(t, "crash-after", 1)
	spec.OnHealth = events.record
	g := start(t, s, spec)
	waitHealthy(t, g)
	g.SetLive()
	before := g.Status()[0]
	addr := before.Addr

	_, _, _ = get(addr, "/crash") // the app dies mid-request
	eventually(t, "restart and health", func() bool {
		st := g.Status()[0]
		return st.Restarts == 1 && st.Healthy
	})
	after := g.Status()[0]
	if after.Addr != addr || after.PID == before.PID || after.LastError != "exit status 2" || !after.StartedAt.After(before.StartedAt) {
		t.Errorf("after restart: %+v, before: %+v", after, before)
	}
	if status, _, err := get(addr, "/"); err != nil || status != 200 {
		t.Errorf("GET after restart = %d %v", status, err)
	}
	want := []string{addr + " unhealthy", addr + " healthy"}
	eventually(t, "OnHealth events", func() bool { return slices.Equal(events.list(), want) })
	if err := g.WaitHealthy(context.Background()); err != nil {
		t.Errorf("WaitHealthy after restart: %v", err)
	}
}

func TestCrashLoopDetected(t *testing.T) {
	cfg := testConfig(t)
	cfg.RestartBackoffMin, cfg.RestartBackoffMax = time.Millisecond, 20*time.Millisecond
	cfg.CrashLoopRestarts, cfg.CrashLoopWindow = 3, time.Minute
	s := newSupervisor(t, cfg)
	var events healthEvents
	spec := appSpec(t, "healthy-then-exit", 1)
	spec.OnHealth = events.record
	g := start(t, s, spec)
	g.SetLive()

	eventually(t, "crash loop", func() bool { return g.Status()[0].CrashLooping })
	st := g.Status()[0]
	if st.Restarts < 3 || st.LastError != "exit status 1" {
		t.Errorf("crash looping with %+v", st)
	}
	// Still restarted while crash looping.
	eventually(t, "another restart", func() bool { return g.Status()[0].Restarts > st.Restarts })
	if len(events.list()) == 0 {
		t.Error("OnHealth never called")
	}
}

func TestInstanceDownAtSetLiveIsRestarted(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	g := start(t, s, appSpec(t, "exit", 1))
	if err := g.WaitHealthy(context.Background()); !errors.Is(err, ErrExited) {
		t.Fatalf("WaitHealthy = %v", err)
	}
	g.SetLive()
	eventually(t, "restart", func() bool { return g.Status()[0].Restarts >= 1 })
}

func TestStopKillsAfterGrace(t *testing.T) {
	cfg := testConfig(t)
	cfg.StopGrace = 300 * time.Millisecond
	s := newSupervisor(t, cfg)
	g := start(t, s, appSpec(t, "ignore-term", 1))
	waitHealthy(t, g) // serving means SIGTERM is already ignored
	pid := g.Status()[0].PID

	began := time.Now()
	if err := g.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(began); took < cfg.StopGrace {
		t.Errorf("Stop took %s, less than the grace %s", took, cfg.StopGrace)
	}
	if alive(pid) {
		t.Errorf("pid %d survived Stop", pid)
	}
	if st := g.Status()[0]; st.PID != 0 {
		t.Errorf("after Stop: %+v", st)
	}
}

// TestStopLetsAppShutDownBehindShell: an app started by a command that
// does not exec it (the shell stays its parent, as dash leaves it for
// "cd dir && ./app" or a plain "./app") gets its graceful shutdown after
// SIGTERM: the shell's exit must not bring the group's SIGKILL early.
func TestStopLetsAppShutDownBehindShell(t *testing.T) {
	cfg := testConfig(t)
	cfg.StopGrace = 20 * time.Second
	s := newSupervisor(t, cfg)
	spec := appSpec(t, "slow-term", 1)
	done := filepath.Join(t.TempDir(), "shut-down")
	spec.Command = "cd . && " + strings.TrimPrefix(spec.Command, "exec ")
	spec.Env = append(spec.Env, appFileEnv+"="+done)
	g := start(t, s, spec)
	waitHealthy(t, g)

	if err := g.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(done); err != nil {
		t.Fatalf("the app was killed before its shutdown finished (Stop returned, no %s): %v", done, err)
	}
}

func TestStopContextCutsGraceShort(t *testing.T) {
	cfg := testConfig(t)
	cfg.StopGrace = time.Hour
	s := newSupervisor(t, cfg)
	g := start(t, s, appSpec(t, "ignore-term", 1))
	waitHealthy(t, g)
	pid := g.Status()[0].PID

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if alive(pid) {
		t.Errorf("pid %d survived Stop", pid)
	}
}

func TestStopKillsChildrenOfShell(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	var out syncBuffer
	spec := appSpec(t, "ok", 1)
	spec.Command = `sleep 1000 & echo "child $!"; ` + spec.Command
	spec.Output = &out
	g := start(t, s, spec)
	waitHealthy(t, g)

	childLine := regexp.MustCompile(`\[1\] child (\d+)\n`)
	eventually(t, "child pid in output", func() bool { return childLine.MatchString(out.String()) })
	child, _ := strconv.Atoi(childLine.FindStringSubmatch(out.String())[1])
	app := g.Status()[0].PID
	if !alive(child) || !alive(app) {
		t.Fatalf("child %d or app %d not running", child, app)
	}

	if err := g.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	eventually(t, "child gone", func() bool { return !alive(child) })
	if alive(app) {
		t.Errorf("app %d survived Stop", app)
	}
}

func TestCrashKillsLeftoverChildren(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	var out syncBuffer
	spec := appSpec(t, "exit", 1)
	spec.Command = `sleep 1000 & echo "child $!"; ` + spec.Command
	spec.Output = &out
	g := start(t, s, spec)
	if err := g.WaitHealthy(context.Background()); !errors.Is(err, ErrExited) {
		t.Fatalf("WaitHealthy = %v", err)
	}
	m := regexp.MustCompile(`\[1\] child (\d+)\n`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no child pid in output %q", out.String())
	}
	child, _ := strconv.Atoi(m[1])
	eventually(t, "child gone", func() bool { return !alive(child) })
}

func TestCloseStopsAllGroups(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	var pids []int
	var groups []*Group
	for range 2 {
		g, err := s.Start(context.Background(), appSpec(t, "ok", 2))
		if err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, g)
		groups = append(groups, g)
		for _, st := range g.Status() {
			pids = append(pids, st.PID)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d survived Close", pid)
		}
	}
	for _, g := range groups {
		if err := g.Stop(context.Background()); err != nil {
			t.Errorf("Stop after Close: %v", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err := s.Start(context.Background(), appSpec(t, "ok", 1))
	if baton.ErrorCode(err) != baton.EUNAVAILABLE {
		t.Errorf("Start after Close = %v, want %s", err, baton.EUNAVAILABLE)
	}
}

func TestStartFailureNamesInstance(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	spec := appSpec(t, "ok", 2)
	spec.Dir = filepath.Join(t.TempDir(), "missing")
	_, err := s.Start(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "hello--000002: start instance 1") || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Start = %v, want instance 1 start failure", err)
	}
}

func TestStartRejectsInvalidSpec(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	valid := appSpec(t, "ok", 1)
	tests := []struct {
		name   string
		change func(*Spec)
	}{
		{"no name", func(s *Spec) { s.Name = "" }},
		{"no command", func(s *Spec) { s.Command = " " }},
		{"no instances", func(s *Spec) { s.Instances = 0 }},
		{"relative health path", func(s *Spec) { s.Health.Path = "health" }},
		{"negative interval", func(s *Spec) { s.Health.Interval = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := valid
			tt.change(&spec)
			if _, err := s.Start(context.Background(), spec); baton.ErrorCode(err) != baton.EINVALID {
				t.Errorf("Start = %v, want %s", err, baton.EINVALID)
			}
		})
	}
}

func TestEnvironmentIsCompleteAndGetsPort(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	var out syncBuffer
	spec := appSpec(t, "ok", 1)
	spec.Env = append(spec.Env, "PORT=1", "GREETING=hi")
	spec.Command = `echo "env $GREETING $PORT ${HOME:-nohome}"; ` + spec.Command
	spec.Output = &out
	g := start(t, s, spec)
	waitHealthy(t, g) // PORT=1 would have failed to bind
	want := fmt.Sprintf("[1] env hi %s nohome\n", strings.TrimPrefix(g.Addrs()[0], "127.0.0.1:"))
	eventually(t, "env line", func() bool { return strings.Contains(out.String(), want) })
}
