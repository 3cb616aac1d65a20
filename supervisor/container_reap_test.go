package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// With SUPERVISOR_TEST_CONTAINER_HOST set (to a JSON containerHost), the
// test binary plays a baton that runs two containers of the test server
// ignoring SIGTERM and prints "ready" with their runc pids and container
// IDs once they are healthy, then waits to be killed.
const containerHostEnv = "SUPERVISOR_TEST_CONTAINER_HOST"

type containerHost struct {
	StateDir, Root, Bundles, Rootfs string
}

func runContainerHost(conf string) int {
	var h containerHost
	if err := json.Unmarshal([]byte(conf), &h); err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		return 1
	}
	s := New(Config{StateDir: h.StateDir, ContainerStateRoot: h.Root, ContainerBundleDir: h.Bundles})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	g, err := s.Start(ctx, Spec{
		Name:      "orphan--000001",
		Container: &Container{Rootfs: h.Rootfs, Args: []string{"/server", "serve-ignore-term"}},
		Instances: 2,
		Health:    HealthCheck{Path: "/health", Interval: 20 * time.Millisecond, Timeout: time.Second},
		Output:    os.Stdout,
	})
	if err == nil {
		err = g.WaitHealthy(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		return 1
	}
	g.mu.Lock()
	fmt.Printf("ready %d %s %d %s\n", g.instances[0].proc.pid, g.instances[0].proc.ctr.ID,
		g.instances[1].proc.pid, g.instances[1].proc.ctr.ID)
	g.mu.Unlock()
	// Until killed; should the test itself die, stdin ends and we clean up.
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestContainerReapAfterBatonKilled: a baton is killed with SIGKILL while
// two containers run (ignoring SIGTERM). ReapOrphans stops and deletes the
// one its record names and, by listing runc's state root, the one whose
// record is gone; no container, bundle, record or runc is left.
func TestContainerReapAfterBatonKilled(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := containerConfig(t)
	cfg.StateDir = t.TempDir()
	cfg.StopGrace = 300 * time.Millisecond
	conf, _ := json.Marshal(containerHost{StateDir: cfg.StateDir, Root: cfg.ContainerStateRoot, Bundles: cfg.ContainerBundleDir, Rootfs: testRootfs(t)})
	var out syncBuffer
	host := exec.Command(exe)
	host.Env = append(os.Environ(), containerHostEnv+"="+string(conf))
	host.Stdout, host.Stderr = &out, &out
	stdin, err := host.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = host.Process.Kill()
			_ = host.Wait()
		}
	})

	ready := regexp.MustCompile(`(?m)^ready (\d+) (\S+) (\d+) (\S+)$`)
	if !poll(func() bool { return ready.MatchString(out.String()) }) {
		t.Fatalf("host not ready; output:\n%s", out.String())
	}
	m := ready.FindStringSubmatch(out.String())
	runc1, _ := strconv.Atoi(m[1])
	runc2, _ := strconv.Atoi(m[3])
	id1, id2 := m[2], m[4]
	killGroupAtEnd(t, runc1)
	killGroupAtEnd(t, runc2)
	init1, init2 := containerPID(t, cfg.ContainerStateRoot, id1), containerPID(t, cfg.ContainerStateRoot, id2)

	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = host.Wait()
	waited = true
	if !strings.Contains(fmt.Sprint(err), "killed") {
		t.Fatalf("host ended with %v", err)
	}
	if !alive(runc1) || !alive(init1) || !alive(init2) {
		t.Fatalf("runc %d alive %v, containers %d %v, %d %v: nothing to reap", runc1, alive(runc1), init1, alive(init1), init2, alive(init2))
	}
	// The second container is known only to runc.
	recs := readRecords(t, cfg.StateDir)
	if len(recs) != 2 || recs[runc2].Container == nil || recs[runc2].Container.ID != id2 {
		t.Fatalf("records %+v", recs)
	}
	if err := os.Remove(filepath.Join(cfg.StateDir, strconv.Itoa(runc2)+".pid")); err != nil {
		t.Fatal(err)
	}

	// A bundle whose container never got to run, and a directory that is
	// not baton's.
	for _, dir := range []string{"baton-orphan--000001-3-000000000000", "keep"} {
		if err := os.MkdirAll(filepath.Join(cfg.ContainerBundleDir, dir), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	s := newSupervisor(t, cfg)
	reaped, err := s.ReapOrphans(context.Background())
	if err != nil || len(reaped) != 2 {
		t.Fatalf("ReapOrphans = %+v, %v; want 2", reaped, err)
	}
	slices.SortFunc(reaped, func(a, b Reaped) int { return a.Index - b.Index })
	for i, want := range []Reaped{
		{Name: "orphan--000001", Index: 1, PID: runc1, Container: id1, Killed: true},
		{Name: "orphan--000001", Index: 2, PID: init2, Container: id2, Killed: true},
	} {
		got := reaped[i]
		if got.Name != want.Name || got.Index != want.Index || got.PID != want.PID || got.Container != want.Container || got.Killed != want.Killed {
			t.Errorf("reaped %+v, want %+v", got, want)
		}
	}
	for _, pid := range []int{runc1, runc2, init1, init2} {
		if !poll(func() bool { return !alive(pid) }) {
			t.Errorf("pid %d outlived ReapOrphans", pid)
		}
	}
	if err := os.Remove(filepath.Join(cfg.ContainerBundleDir, "keep")); err != nil {
		t.Errorf("the directory that is not a bundle: %v", err)
	}
	noContainersLeft(t, cfg)
	emptyDir(t, cfg.StateDir)
}
