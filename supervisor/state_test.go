package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
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

// With SUPERVISOR_TEST_HOST set, the test binary plays baton: it starts one
// instance with StateDir set and prints "ready PID" once it is healthy, then
// waits to be killed.
const (
	hostStateEnv   = "SUPERVISOR_TEST_HOST"         // the StateDir
	hostDirEnv     = "SUPERVISOR_TEST_HOST_DIR"     // Spec.Dir
	hostCommandEnv = "SUPERVISOR_TEST_HOST_COMMAND" // Spec.Command; the app runs in ignore-term mode
)

func runTestHost(stateDir string) int {
	s := New(Config{StateDir: stateDir})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	g, err := s.Start(ctx, Spec{
		Name:      "orphan--000001",
		Dir:       os.Getenv(hostDirEnv),
		Command:   os.Getenv(hostCommandEnv),
		Env:       []string{appModeEnv + "=ignore-term", "PATH=" + os.Getenv("PATH")},
		Instances: 1,
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
	fmt.Printf("ready %d\n", g.Status()[0].PID)
	// Until killed; should the test itself die, stdin ends and we clean up.
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// readRecords returns the process records in dir by pid and fails the test
// on any other file.
func readRecords(t *testing.T, dir string) map[int]stateRecord {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	recs := make(map[int]stateRecord)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var rec stateRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatalf("%s: %v in %q", e.Name(), err, data)
		}
		if e.Name() != strconv.Itoa(rec.PGID)+".pid" || rec.PID != rec.PGID {
			t.Fatalf("%s holds %s", e.Name(), data)
		}
		recs[rec.PID] = rec
	}
	return recs
}

func writeRecord(t *testing.T, dir string, rec stateRecord) {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(rec.PGID)+".pid"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %v, want nothing", dir, names)
	}
}

// killGroupAtEnd makes sure a failing test leaves no process behind.
func killGroupAtEnd(t *testing.T, pgid int) {
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
}

var childLine = regexp.MustCompile(`\[1\] child (\d+)\n`)

func childPID(t *testing.T, out *syncBuffer) int {
	t.Helper()
	eventually(t, "child pid in output", func() bool { return childLine.MatchString(out.String()) })
	pid, _ := strconv.Atoi(childLine.FindStringSubmatch(out.String())[1])
	return pid
}

func TestStateRecordsFollowProcesses(t *testing.T) {
	cfg := testConfig(t)
	cfg.StateDir = filepath.Join(t.TempDir(), "state", "run") // created on demand
	s := newSupervisor(t, cfg)
	spec := appSpec(t, "crash-after", 2)
	g := start(t, s, spec)
	waitHealthy(t, g)
	g.SetLive()

	pids := func() []int {
		var pids []int
		for _, st := range g.Status() {
			if st.PID != 0 {
				pids = append(pids, st.PID)
			}
		}
		return pids
	}
	recs := readRecords(t, cfg.StateDir)
	if got := slices.Sorted(maps.Keys(recs)); !slices.Equal(got, slices.Sorted(slices.Values(pids()))) {
		t.Fatalf("records for pids %v, running %v", got, pids())
	}
	for _, st := range g.Status() {
		rec := recs[st.PID]
		if rec.PGID != st.PID || rec.Name != spec.Name || rec.Index != st.Index || rec.Dir != spec.Dir || !rec.StartedAt.Equal(st.StartedAt) {
			t.Errorf("record %+v for %+v", rec, st)
		}
	}
	if info, err := os.Stat(cfg.StateDir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v", info, err)
	}

	// A restarted instance's record replaces the crashed one's.
	old := g.Status()[0].PID
	_, _, _ = get(g.Addrs()[0], "/crash")
	eventually(t, "restart", func() bool { st := g.Status()[0]; return st.Restarts == 1 && st.PID != 0 })
	eventually(t, "records of the running processes", func() bool {
		return slices.Equal(slices.Sorted(maps.Keys(readRecords(t, cfg.StateDir))), slices.Sorted(slices.Values(pids())))
	})
	if _, ok := readRecords(t, cfg.StateDir)[old]; ok {
		t.Errorf("record of crashed pid %d kept", old)
	}

	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	emptyDir(t, cfg.StateDir)
}

// TestReapOrphansOfOtherSupervisor plays the crash inside the test process:
// a second Supervisor on the same StateDir reaps the running group of the
// first, which never learns of it.
func TestReapOrphansOfOtherSupervisor(t *testing.T) {
	cfg := testConfig(t)
	cfg.StateDir = t.TempDir()
	s1 := newSupervisor(t, cfg)
	var out syncBuffer
	spec := appSpec(t, "ok", 1)
	spec.Command = `sleep 1000 & echo "child $!"; ` + spec.Command
	spec.Output = &out
	g := start(t, s1, spec)
	waitHealthy(t, g)
	app, child := g.Status()[0].PID, childPID(t, &out)
	killGroupAtEnd(t, app)
	if _, ok := readRecords(t, cfg.StateDir)[app]; !ok || !alive(child) {
		t.Fatalf("no record of pid %d or child %d not running", app, child)
	}

	s2 := newSupervisor(t, cfg)
	n, err := reapN(s2)
	if n != 1 || err != nil {
		t.Fatalf("ReapOrphans = %d, %v; want 1, nil", n, err)
	}
	if alive(app) || alive(child) {
		t.Errorf("app %d alive %v, child %d alive %v", app, alive(app), child, alive(child))
	}
	emptyDir(t, cfg.StateDir)

	if err := s1.Close(); err != nil {
		t.Errorf("Close of the first supervisor: %v", err)
	}
	emptyDir(t, cfg.StateDir)
}

// TestReapOrphansAfterBatonKilled is the real thing: a baton process is
// killed with SIGKILL while its app and the app's child run, and ignore
// SIGTERM.
func TestReapOrphansAfterBatonKilled(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	var out syncBuffer
	host := exec.Command(exe)
	host.Env = append(os.Environ(),
		hostStateEnv+"="+stateDir,
		hostDirEnv+"="+t.TempDir(),
		hostCommandEnv+"="+`trap '' TERM; sleep 1000 & echo "child $!"; exec `+shellQuote(exe))
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

	ready := regexp.MustCompile(`(?m)^ready (\d+)$`)
	if !poll(func() bool { return ready.MatchString(out.String()) }) {
		t.Fatalf("host not ready; output:\n%s", out.String())
	}
	app, _ := strconv.Atoi(ready.FindStringSubmatch(out.String())[1])
	killGroupAtEnd(t, app)
	child := childPID(t, &out)

	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = host.Wait()
	waited = true
	if !strings.Contains(fmt.Sprint(err), "killed") {
		t.Fatalf("host ended with %v", err)
	}
	if !alive(app) || !alive(child) {
		t.Fatalf("app %d alive %v, child %d alive %v: nothing left to reap", app, alive(app), child, alive(child))
	}
	if _, ok := readRecords(t, stateDir)[app]; !ok {
		t.Fatalf("no record of pid %d", app)
	}

	cfg := testConfig(t)
	cfg.StateDir = stateDir
	cfg.StopGrace = 300 * time.Millisecond
	s := newSupervisor(t, cfg)
	began := time.Now()
	n, err := reapN(s)
	if n != 1 || err != nil {
		t.Fatalf("ReapOrphans = %d, %v; want 1, nil", n, err)
	}
	if took := time.Since(began); took < cfg.StopGrace {
		t.Errorf("ReapOrphans took %s, less than the grace %s", took, cfg.StopGrace)
	}
	if alive(app) || alive(child) {
		t.Errorf("app %d alive %v, child %d alive %v", app, alive(app), child, alive(child))
	}
	emptyDir(t, stateDir)
}

func TestReapOrphansLeavesOtherProcessesAlone(t *testing.T) {
	stateDir := t.TempDir()

	// A live process in another directory than recorded: its pid was reused.
	other := exec.Command("sleep", "1000")
	other.Dir = t.TempDir()
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = other.Process.Kill()
		_ = other.Wait()
	})
	writeRecord(t, stateDir, stateRecord{PGID: other.Process.Pid, PID: other.Process.Pid, Name: "reused", Index: 1, Dir: t.TempDir(), StartedAt: time.Now()})

	// The test process itself, with a wrong directory.
	self := os.Getpid()
	writeRecord(t, stateDir, stateRecord{PGID: self, PID: self, Name: "self", Index: 1, Dir: t.TempDir(), StartedAt: time.Now()})

	// A process that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	writeRecord(t, stateDir, stateRecord{PGID: dead.Process.Pid, PID: dead.Process.Pid, Name: "dead", Index: 1, Dir: "/", StartedAt: time.Now()})

	// Damage: a malformed record, one that would signal group 1, a
	// temporary file left by a crash. Files of other names are not ours.
	for name, content := range map[string]string{
		"999999.pid":           "{not json",
		"1.pid":                `{"pgid":1,"pid":1,"dir":"/"}`,
		tempPrefix + "1234567": "{",
		"notes.txt":            "keep me",
	} {
		if err := os.WriteFile(filepath.Join(stateDir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	cfg := testConfig(t)
	cfg.StateDir = stateDir
	s := newSupervisor(t, cfg)
	n, err := reapN(s)
	if n != 0 || err != nil {
		t.Fatalf("ReapOrphans = %d, %v; want 0, nil", n, err)
	}
	if !alive(other.Process.Pid) {
		t.Error("process with a reused pid was killed")
	}
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "notes.txt" {
		t.Errorf("state dir holds %v, want only notes.txt", entries)
	}
}

func TestReapOrphansSparesOwnProcesses(t *testing.T) {
	cfg := testConfig(t)
	cfg.StateDir = t.TempDir()
	s := newSupervisor(t, cfg)
	g := start(t, s, appSpec(t, "ok", 1))
	waitHealthy(t, g)
	pid := g.Status()[0].PID

	n, err := reapN(s)
	if n != 0 || err != nil {
		t.Fatalf("ReapOrphans = %d, %v; want 0, nil", n, err)
	}
	if st := g.Status()[0]; st.PID != pid || !alive(pid) {
		t.Errorf("own instance touched: %+v", st)
	}
	if _, ok := readRecords(t, cfg.StateDir)[pid]; !ok {
		t.Errorf("own record of pid %d removed", pid)
	}
}

func TestReapOrphansWithoutStateDir(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	if n, err := reapN(s); n != 0 || err != nil {
		t.Fatalf("ReapOrphans = %d, %v", n, err)
	}
}

// TestGroupAlive: a group with a running process is alive; one whose only
// process is a zombie is not (it has died; its reaper may never come), and
// neither is one with no process left at all.
func TestGroupAlive(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	reaped := false
	defer func() {
		if !reaped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	if !groupAlive(pgid) {
		t.Fatal("a group with a running process: not alive")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Not waited for yet: the process stays a zombie until Wait.
	eventually(t, "the group's only process a zombie", func() bool {
		state, _, ok := procStat(pgid)
		return ok && state == 'Z'
	})
	if groupAlive(pgid) {
		t.Error("a group whose only process is a zombie: alive")
	}
	cmd.Wait()
	reaped = true
	if groupAlive(pgid) {
		t.Error("a group with no process left: alive")
	}
}

// BenchmarkGroupAliveEnded: the check after every build or release
// command that nothing it started still runs, once it all ended.
func BenchmarkGroupAliveEnded(b *testing.B) {
	cmd := exec.Command("true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Run(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if groupAlive(cmd.Process.Pid) {
			b.Fatal("alive")
		}
	}
}
