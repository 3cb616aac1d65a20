package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

	"github.com/batonhq/baton"
)

// runcPath returns runc's path or fails the test: the container tests
// need it installed (apt-get install runc).
func runcPath(t testing.TB) string {
	t.Helper()
	path, err := lookRuntime("")
	if err != nil {
		t.Fatalf("%s (%v)", errNoRuntime, err)
	}
	return path
}

// containerConfig is testConfig with a state root and bundle directory of
// the test's own. Every container left in the root is deleted when the
// test ends, after the Supervisors are closed.
func containerConfig(t *testing.T) Config {
	t.Helper()
	runc := runcPath(t)
	dir := t.TempDir()
	cfg := testConfig(t)
	cfg.ContainerStateRoot = filepath.Join(dir, "runc")
	cfg.ContainerBundleDir = filepath.Join(dir, "bundles")
	t.Cleanup(func() {
		for _, c := range runcList(t, cfg.ContainerStateRoot) {
			_ = exec.Command(runc, "--root", cfg.ContainerStateRoot, "delete", "-f", c.ID).Run()
		}
	})
	return cfg
}

// containerSpec runs the test server in mode as instances containers.
func containerSpec(t *testing.T, mode string, instances int) Spec {
	t.Helper()
	return Spec{
		Name:      "hello--000002",
		Container: &Container{Rootfs: testRootfs(t), Args: []string{"/server", mode}},
		Instances: instances,
		Health:    HealthCheck{Path: "/health", Interval: 20 * time.Millisecond, Timeout: time.Second},
	}
}

// runcList lists every container in root, baton's or not.
func runcList(t testing.TB, root string) []listedContainer {
	t.Helper()
	out, err := exec.Command(runcPath(t), "--root", root, "list", "--format", "json").Output()
	if err != nil {
		t.Fatalf("runc list: %v", err)
	}
	var list []listedContainer
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("runc list: %v in %q", err, out)
	}
	return list
}

func runcIDs(t testing.TB, root string) []string {
	var ids []string
	for _, c := range runcList(t, root) {
		ids = append(ids, c.ID)
	}
	return ids
}

// containerPID is the host pid of the container's init, 0 if it does not
// run.
func containerPID(t testing.TB, root, id string) int {
	for _, c := range runcList(t, root) {
		if c.ID == id && c.Status == "running" {
			return c.PID
		}
	}
	return 0
}

// noContainersLeft checks that runc knows no container in cfg's root and
// that every bundle is gone.
func noContainersLeft(t *testing.T, cfg Config) {
	t.Helper()
	if ids := runcIDs(t, cfg.ContainerStateRoot); len(ids) != 0 {
		t.Errorf("containers left: %v", ids)
	}
	if entries, err := os.ReadDir(cfg.ContainerBundleDir); err == nil && len(entries) != 0 {
		t.Errorf("bundles left: %v", entries)
	}
}

// containerOf returns the container of instance index (from 1) of g.
func containerOf(t *testing.T, g *Group, index int) ContainerRef {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.instances[index-1].proc
	if p == nil || p.ctr == nil {
		t.Fatalf("instance %d runs no container", index)
	}
	return *p.ctr
}

// TestContainerInstances: two containers serve on their ports with the
// image's user, environment (baton's winning), read-only root, writable
// /tmp, limits and host name; their output is captured line by line; the
// records name the containers; Stop delivers SIGTERM to the app and leaves
// no container, bundle or record.
func TestContainerInstances(t *testing.T) {
	cfg := containerConfig(t)
	cfg.StateDir = t.TempDir()
	s := newSupervisor(t, cfg)
	var out syncBuffer
	spec := containerSpec(t, "serve", 2)
	spec.Container.User = "app"
	spec.Container.Env = []string{"GREETING=from-image", "IMAGE_ONLY=1", "PORT=1"}
	spec.Container.MemoryBytes = 64 << 20
	spec.Container.CPUs = 0.5
	spec.Container.Cwd = "/tmp"
	spec.Env = []string{"GREETING=from-baton", "SETTING=2"}
	spec.Output = &out
	g := start(t, s, spec)
	waitHealthy(t, g)

	recs := readRecords(t, cfg.StateDir)
	ids := make(map[string]bool)
	for i, addr := range g.Addrs() {
		port := strings.TrimPrefix(addr, "127.0.0.1:")
		in := info(t, addr)
		if in.PID != 1 || !slices.Equal(in.Args, []string{"/server", "serve"}) || in.Cwd != "/tmp" {
			t.Errorf("instance %d: pid %d (want 1: a pid namespace), args %q, cwd %q", i+1, in.PID, in.Args, in.Cwd)
		}
		if in.UID != 1234 || in.GID != 2345 || !slices.Equal(in.Groups, []int{3456}) {
			t.Errorf("instance %d: uid %d gid %d groups %v, want 1234 2345 [3456]", i+1, in.UID, in.GID, in.Groups)
		}
		for name, want := range map[string]string{
			"PORT": port, "GREETING": "from-baton", "IMAGE_ONLY": "1", "SETTING": "2", "HOME": "/home/app",
			"PATH": strings.TrimPrefix(defaultPath, "PATH="),
		} {
			if got, n := in.getenv(name); got != want || n != 1 {
				t.Errorf("instance %d: $%s = %q (%d times), want %q once", i+1, name, got, n, want)
			}
		}
		if want := fmt.Sprintf("hello--000002-%d", i+1); in.Hostname != want {
			t.Errorf("instance %d: host name %q, want %q", i+1, in.Hostname, want)
		}
		if code, body, _ := get(addr, "/write?path=/tmp/x"); code != 200 {
			t.Errorf("instance %d: writing /tmp: %d %s", i+1, code, body)
		}
		if code, body, _ := get(addr, "/write?path=/x"); code != 500 || !strings.Contains(body, "read-only file system") {
			t.Errorf("instance %d: writing / answered %d %q, want a read-only file system", i+1, code, body)
		}
		for file, want := range map[string]string{
			"memory/memory.limit_in_bytes": strconv.Itoa(64 << 20),
			"cpu/cpu.cfs_quota_us":         "50000",
		} {
			if code, body, _ := get(addr, "/read?path=/sys/fs/cgroup/"+file); code != 200 || strings.TrimSpace(body) != want {
				t.Errorf("instance %d: %s = %d %q, want %s", i+1, file, code, body, want)
			}
		}
		// The host's name resolution, read-only.
		if hosts, err := os.ReadFile("/etc/hosts"); err == nil {
			if code, body, _ := get(addr, "/read?path=/etc/hosts"); code != 200 || body != string(hosts) {
				t.Errorf("instance %d: /etc/hosts = %d %q, want the host's %q", i+1, code, body, hosts)
			}
			if code, body, _ := get(addr, "/write?path=/etc/hosts"); code != 500 || !strings.Contains(body, "read-only file system") {
				t.Errorf("instance %d: writing /etc/hosts answered %d %q, want a read-only file system", i+1, code, body)
			}
		}
		for _, want := range []string{
			fmt.Sprintf("[%d] server serve pid 1 port %s\n", i+1, port),
			fmt.Sprintf("[%d] server stderr line\n", i+1),
		} {
			eventually(t, "output line "+want, func() bool { return strings.Contains(out.String(), want) })
		}

		st := g.Status()[i]
		ref := containerOf(t, g, i+1)
		ids[ref.ID] = true
		if !regexp.MustCompile(fmt.Sprintf(`^baton-hello--000002-%d-[0-9a-f]{12}$`, i+1)).MatchString(ref.ID) {
			t.Errorf("instance %d: container ID %q", i+1, ref.ID)
		}
		if st.Container != ref.ID {
			t.Errorf("instance %d: Status().Container = %q, want %q", i+1, st.Container, ref.ID)
		}
		rec := recs[st.PID]
		if rec.Container == nil || *rec.Container != ref || rec.Dir != ref.Bundle || rec.Index != i+1 {
			t.Errorf("instance %d: record %+v, container %+v", i+1, rec, ref)
		}
		if bundle, err := os.Stat(filepath.Join(ref.Bundle, "config.json")); err != nil || bundle.Mode().Perm() != 0o600 {
			t.Errorf("instance %d: config.json: %v %v", i+1, bundle, err)
		}
	}
	if listed := runcIDs(t, cfg.ContainerStateRoot); len(listed) != 2 || !ids[listed[0]] || !ids[listed[1]] {
		t.Errorf("runc list = %v, want %v", listed, ids)
	}

	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The apps exited on SIGTERM (forwarded by runc), not on SIGKILL.
	for i := range 2 {
		if want := fmt.Sprintf("[%d] got SIGTERM, exiting\n", i+1); !strings.Contains(out.String(), want) {
			t.Errorf("no %q in the output:\n%s", want, out.String())
		}
	}
	noContainersLeft(t, cfg)
	emptyDir(t, cfg.StateDir)
}

// TestContainerStopKillsAfterGrace: an app that ignores SIGTERM (it does
// get it, once) is killed when the grace period ends, and nothing is left.
func TestContainerStopKillsAfterGrace(t *testing.T) {
	cfg := containerConfig(t)
	cfg.StopGrace = 500 * time.Millisecond
	s := newSupervisor(t, cfg)
	var out syncBuffer
	spec := containerSpec(t, "serve-ignore-term", 1)
	spec.Output = &out
	g := start(t, s, spec)
	waitHealthy(t, g)
	runc := g.Status()[0].PID
	ref := containerOf(t, g, 1)
	init := containerPID(t, cfg.ContainerStateRoot, ref.ID)
	// runc put the container's init in a session of its own: signals to
	// runc's process group reach the app only through runc.
	if _, pgrp, ok := procStat(init); !ok || pgrp != init {
		t.Errorf("container init %d is in process group %d (runc's is %d)", init, pgrp, runc)
	}

	began := time.Now()
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < cfg.StopGrace {
		t.Errorf("Stop took %s, less than the grace", took)
	}
	if n := strings.Count(out.String(), "ignoring SIGTERM"); n != 1 {
		t.Errorf("the app saw SIGTERM %d times, want once:\n%s", n, out.String())
	}
	if alive(runc) || alive(init) {
		t.Errorf("runc %d alive %v, container init %d alive %v", runc, alive(runc), init, alive(init))
	}
	noContainersLeft(t, cfg)
}

// TestContainerCloseRightAfterStart: Close while runc is still creating
// the containers (SIGTERM may reach runc before it forwards signals)
// leaves no container, bundle or record.
func TestContainerCloseRightAfterStart(t *testing.T) {
	cfg := containerConfig(t)
	cfg.StateDir = t.TempDir()
	s := New(cfg)
	if _, err := s.Start(context.Background(), containerSpec(t, "serve", 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	noContainersLeft(t, cfg)
	emptyDir(t, cfg.StateDir)
}

// TestContainerCrashRestarts: a crashed container is deleted and the
// instance restarted in a new one.
func TestContainerCrashRestarts(t *testing.T) {
	cfg := containerConfig(t)
	s := newSupervisor(t, cfg)
	var out syncBuffer
	spec := containerSpec(t, "serve", 1)
	spec.Output = &out
	g := start(t, s, spec)
	waitHealthy(t, g)
	g.SetLive()
	old := containerOf(t, g, 1)

	_, _, _ = get(g.Addrs()[0], "/crash")
	eventually(t, "the instance restarted and healthy", func() bool {
		st := g.Status()[0]
		return st.Restarts == 1 && st.Healthy
	})
	now := containerOf(t, g, 1)
	if now.ID == old.ID {
		t.Fatalf("restarted in the same container %s", now.ID)
	}
	if ids := runcIDs(t, cfg.ContainerStateRoot); !slices.Equal(ids, []string{now.ID}) {
		t.Errorf("runc list = %v, want only %s", ids, now.ID)
	}
	if _, err := os.Stat(old.Bundle); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bundle of the crashed container: %v", err)
	}
	if st := g.Status()[0]; st.LastError != "exit status 2" {
		t.Errorf("last error %q", st.LastError)
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	noContainersLeft(t, cfg)
}

// TestContainerHandoffAndAdopt: a handed-off container keeps running (same
// runc, same container process) and the adopting Supervisor owns it: not
// reaped, health checked, stopped and deleted by its Stop.
func TestContainerHandoffAndAdopt(t *testing.T) {
	cfg := containerConfig(t)
	cfg.StateDir = t.TempDir()
	old := newSupervisor(t, cfg)
	spec := containerSpec(t, "serve", 1)
	g := start(t, old, spec)
	waitHealthy(t, g)
	g.SetLive()
	ref := containerOf(t, g, 1)
	init := containerPID(t, cfg.ContainerStateRoot, ref.ID)

	handed, err := g.Handoff()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	h := handed[0]
	if h.Container == nil || *h.Container != ref {
		t.Fatalf("handed container %+v, want %+v", h.Container, ref)
	}
	fd, err := syscall.Dup(int(h.Output.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	h.Output.Close()
	if handed[0].Output, err = InheritedPipe(uintptr(fd), "inherited"); err != nil {
		t.Fatal(err)
	}

	next := newSupervisor(t, cfg)
	var out syncBuffer
	spec.Output = &out
	g2, err := next.Adopt(spec, handed)
	if err != nil {
		t.Fatal(err)
	}
	if reaped, err := next.ReapOrphans(context.Background()); err != nil || len(reaped) != 0 {
		t.Fatalf("ReapOrphans after Adopt = %+v, %v; want nothing (the container is ours)", reaped, err)
	}
	if st := g2.Status()[0]; st.PID != h.PID || !st.Healthy {
		t.Fatalf("adopted %+v, want runc pid %d, healthy", st, h.PID)
	}
	if got := containerPID(t, cfg.ContainerStateRoot, ref.ID); got != init {
		t.Fatalf("container process %d, was %d", got, init)
	}
	if code, _, err := get(g2.Addrs()[0], "/health"); code != 200 || err != nil {
		t.Fatalf("adopted instance answers %d %v", code, err)
	}
	if err := g2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "[1] got SIGTERM, exiting") {
		t.Errorf("the adopted container's output did not reach the new owner:\n%s", out.String())
	}
	if alive(init) {
		t.Errorf("container process %d outlived Stop", init)
	}
	noContainersLeft(t, cfg)
	emptyDir(t, cfg.StateDir)
}

// TestContainerRun: a one-off container runs to completion with its output
// and exit status; a cancel kills and deletes it.
func TestContainerRun(t *testing.T) {
	cfg := containerConfig(t)
	cfg.StateDir = t.TempDir()
	s := newSupervisor(t, cfg)
	cmd := func(args ...string) Command {
		return Command{
			Name: "dep-1", Label: "release", Env: []string{"GREETING=hi"},
			Container: &Container{Rootfs: testRootfs(t), Args: append([]string{"/server", "print"}, args...)},
		}
	}

	var out lines
	c := cmd("migrate", "now")
	c.Output = out.add
	if err := s.Run(context.Background(), c); err != nil {
		t.Fatalf("Run: %v", err)
	}
	out.mu.Lock()
	got := strings.Join(out.all, "|")
	out.mu.Unlock()
	if !strings.Contains(got, "args migrate now greeting hi") || !strings.Contains(got, "to stderr") {
		t.Errorf("output %q", got)
	}
	err := s.Run(context.Background(), cmd("fail"))
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("Run of a failing container = %v, want exit status 3", err)
	}
	noContainersLeft(t, cfg)

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var waiting lines
	c = cmd("wait")
	c.Output = waiting.add
	done := runAsync(ctx, s, c)
	eventually(t, "the container running", func() bool {
		return waiting.match(regexp.MustCompile("args wait")) != nil && len(runcIDs(t, cfg.ContainerStateRoot)) == 1
	})
	id := runcIDs(t, cfg.ContainerStateRoot)[0]
	if !strings.HasPrefix(id, "baton-dep-1-release-") {
		t.Errorf("container ID %q", id)
	}
	init := containerPID(t, cfg.ContainerStateRoot, id)
	want := errors.New("cancelled by test")
	cancel(want)
	if err := waitRun(t, done); !errors.Is(err, want) {
		t.Fatalf("Run = %v, want %v", err, want)
	}
	if alive(init) {
		t.Errorf("container process %d outlived Run", init)
	}
	noContainersLeft(t, cfg)
	emptyDir(t, cfg.StateDir)
}

// TestContainerRuntimeMissing: a container group without runc fails at
// once and says how to install it.
func TestContainerRuntimeMissing(t *testing.T) {
	cfg := testConfig(t)
	cfg.ContainerRuntime = filepath.Join(t.TempDir(), "runc")
	cfg.ContainerStateRoot, cfg.ContainerBundleDir = t.TempDir(), t.TempDir()
	s := newSupervisor(t, cfg)
	_, err := s.Start(context.Background(), containerSpec(t, "serve", 1))
	if baton.ErrorCode(err) != baton.EUNAVAILABLE || !strings.Contains(err.Error(), "runc is not installed: apt-get install runc") {
		t.Fatalf("Start = %v", err)
	}
	err = s.Run(context.Background(), Command{Name: "d", Label: "build", Container: &Container{Rootfs: testRootfs(t), Args: []string{"/server"}}})
	if !strings.Contains(fmt.Sprint(err), "runc is not installed") {
		t.Fatalf("Run = %v", err)
	}
}
