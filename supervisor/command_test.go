package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// With SUPERVISOR_TEST_RUN_HOST set (to a StateDir), the test binary plays
// a baton that runs one release command (hostCommandEnv) in hostDirEnv and
// prints its output, until it is killed.
const runHostEnv = "SUPERVISOR_TEST_RUN_HOST"

func runCommandHost(stateDir string) int {
	s := New(Config{StateDir: stateDir})
	defer s.Close()
	err := s.Run(context.Background(), Command{
		Name: "dep-1", Label: "release",
		Command: os.Getenv(hostCommandEnv), Dir: os.Getenv(hostDirEnv),
		Env:    []string{"PATH=" + os.Getenv("PATH")},
		Output: func(line string) { fmt.Println(line) },
	})
	fmt.Fprintln(os.Stderr, "host: command ended:", err)
	return 1
}

// lines collects a command's output.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) add(s string) {
	l.mu.Lock()
	l.all = append(l.all, s)
	l.mu.Unlock()
}

func (l *lines) match(re *regexp.Regexp) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.all {
		if m := re.FindStringSubmatch(s); m != nil {
			return m
		}
	}
	return nil
}

var (
	groupLine = regexp.MustCompile(`^group (\d+)$`)
	bgLine    = regexp.MustCompile(`^background (\d+)$`)
)

// runAsync runs cmd with Run in a goroutine; the channel gets its result.
func runAsync(ctx context.Context, s *Supervisor, cmd Command) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, cmd) }()
	return done
}

func waitRun(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
		return nil
	}
}

// TestRunRecordsCommandUntilReaped: the command is recorded (name, label,
// process group, directory) while it runs, its output arrives line by line,
// and the record is gone once Run returned.
func TestRunRecordsCommandUntilReaped(t *testing.T) {
	cfg := testConfig(t)
	cfg.StateDir = filepath.Join(t.TempDir(), "run")
	s := newSupervisor(t, cfg)
	dir := t.TempDir()
	gate := filepath.Join(t.TempDir(), "gate")
	var out lines
	done := runAsync(context.Background(), s, Command{
		Name: "dep-7", Label: "build", Dir: dir,
		Command: `echo "group $$"; echo to-stderr >&2; while [ ! -e ` + shellQuote(gate) + ` ]; do sleep 0.01; done; echo finished`,
		Output:  out.add,
	})
	eventually(t, "the command's first line", func() bool { return out.match(groupLine) != nil })
	pgid, _ := strconv.Atoi(out.match(groupLine)[1])
	killGroupAtEnd(t, pgid)
	recs := readRecords(t, cfg.StateDir)
	rec, ok := recs[pgid]
	if !ok || len(recs) != 1 {
		t.Fatalf("records while the command runs: %+v, want one for pid %d", recs, pgid)
	}
	if rec.Name != "dep-7" || rec.Label != "build" || rec.Index != 0 || rec.Dir != dir || rec.StartedAt.IsZero() {
		t.Errorf("record %+v", rec)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run: %v", err)
	}
	out.mu.Lock()
	got := strings.Join(out.all, "|")
	out.mu.Unlock()
	if want := fmt.Sprintf("group %d|to-stderr|finished", pgid); got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	emptyDir(t, cfg.StateDir)
}

// TestRunExitStatus: a failing command's exit status is the error.
func TestRunExitStatus(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	err := s.Run(context.Background(), Command{Name: "d", Label: "release", Dir: t.TempDir(), Command: "exit 3"})
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 || err.Error() != "exit status 3" {
		t.Fatalf("Run = %v, want exit status 3", err)
	}
}

// TestRunKillsGroupOnCancel: a cancel, a deadline and Close each kill the
// whole group (a background child included) and Run returns the cause
// only when nothing of it is left; the record is removed.
func TestRunKillsGroupOnCancel(t *testing.T) {
	deadline := errors.New("phase deadline")
	for _, how := range []string{"cancel", "deadline", "close"} {
		t.Run(how, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.StateDir = t.TempDir()
			s := newSupervisor(t, cfg)
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			if how == "deadline" {
				var stop context.CancelFunc
				// Long enough for the command to print its pids first: build
				// and release commands run at nice +10, and on a loaded
				// machine their shell starts slowly (300 ms ran out before
				// it printed, under load average 20).
				ctx, stop = context.WithTimeoutCause(ctx, 5*time.Second, deadline)
				defer stop()
			}
			var out lines
			done := runAsync(ctx, s, Command{Name: "d", Label: "release", Dir: t.TempDir(), Output: out.add,
				Command: `trap '' TERM; sleep 1000 & echo "background $!"; echo "group $$"; wait`})
			eventually(t, "the command's pids", func() bool { return out.match(groupLine) != nil && out.match(bgLine) != nil })
			pgid, _ := strconv.Atoi(out.match(groupLine)[1])
			bg, _ := strconv.Atoi(out.match(bgLine)[1])
			killGroupAtEnd(t, pgid)
			var want error
			switch how {
			case "cancel":
				want = errors.New("cancelled by test")
				cancel(want)
			case "deadline":
				want = deadline
			case "close":
				want = errClosed
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			err := waitRun(t, done)
			if !errors.Is(err, want) && err.Error() != want.Error() {
				t.Fatalf("Run = %v, want %v", err, want)
			}
			if groupAlive(pgid) || alive(bg) {
				t.Fatalf("after Run returned: group %d alive %v, background %d alive %v", pgid, groupAlive(pgid), bg, alive(bg))
			}
			emptyDir(t, cfg.StateDir)
		})
	}
}

// TestRunKillsLeftoversOnExit: what the command leaves in its group when
// the shell exits dies with it.
func TestRunKillsLeftoversOnExit(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	var out lines
	err := s.Run(context.Background(), Command{Name: "d", Label: "build", Dir: t.TempDir(), Output: out.add,
		Command: `sleep 1000 >/dev/null 2>&1 & echo "background $!"; echo "group $$"`})
	if err != nil {
		t.Fatal(err)
	}
	pgid, _ := strconv.Atoi(out.match(groupLine)[1])
	bg, _ := strconv.Atoi(out.match(bgLine)[1])
	killGroupAtEnd(t, pgid)
	if alive(bg) {
		t.Fatalf("background process %d of the command outlived it", bg)
	}
}

// TestRunRefusesUnrecordedCommand: a command that cannot be recorded never
// runs.
func TestRunRefusesUnrecordedCommand(t *testing.T) {
	cfg := testConfig(t)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = filepath.Join(blocker, "run") // under a file: cannot be created
	s := newSupervisor(t, cfg)
	marker := filepath.Join(t.TempDir(), "ran")
	err := s.Run(context.Background(), Command{Name: "d", Label: "release", Dir: t.TempDir(), Command: "touch " + shellQuote(marker)})
	if err == nil || !strings.Contains(err.Error(), "record") {
		t.Fatalf("Run = %v, want a record error", err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the unrecorded command ran (%v)", err)
	}
}

// TestReapOrphansKillsCommandOfKilledBaton: a baton process killed with
// SIGKILL while it runs a release command (that ignores SIGTERM and has a
// child) leaves it running; ReapOrphans of the next start kills the group
// and says what it was.
func TestReapOrphansKillsCommandOfKilledBaton(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	stateDir, dir := t.TempDir(), t.TempDir()
	var out syncBuffer
	host := exec.Command(exe)
	host.Env = append(os.Environ(), runHostEnv+"="+stateDir, hostDirEnv+"="+dir,
		hostCommandEnv+"="+`trap '' TERM; sleep 1000 & echo "background $!"; echo "group $$"; wait`)
	host.Stdout, host.Stderr = &out, &out
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = host.Process.Kill()
			_ = host.Wait()
		}
	})
	group := regexp.MustCompile(`(?m)^group (\d+)$`)
	bgRe := regexp.MustCompile(`(?m)^background (\d+)$`)
	eventually(t, "the command's pids", func() bool { return group.MatchString(out.String()) && bgRe.MatchString(out.String()) })
	pgid, _ := strconv.Atoi(group.FindStringSubmatch(out.String())[1])
	bg, _ := strconv.Atoi(bgRe.FindStringSubmatch(out.String())[1])
	killGroupAtEnd(t, pgid)
	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	waited = true
	if !alive(pgid) || !alive(bg) {
		t.Fatalf("command %d alive %v, background %d alive %v: nothing left to reap", pgid, alive(pgid), bg, alive(bg))
	}

	cfg := testConfig(t)
	cfg.StateDir = stateDir
	cfg.StopGrace = 200 * time.Millisecond
	s := newSupervisor(t, cfg)
	reaped, err := s.ReapOrphans(context.Background())
	if err != nil || len(reaped) != 1 {
		t.Fatalf("ReapOrphans = %+v, %v; want one", reaped, err)
	}
	r := reaped[0]
	if r.Name != "dep-1" || r.Label != "release" || r.PID != pgid || r.Dir != dir || !r.Killed {
		t.Errorf("reaped %+v", r)
	}
	if want := fmt.Sprintf("release command (pid %d)", pgid); r.What() != want {
		t.Errorf("What() = %q, want %q", r.What(), want)
	}
	if groupAlive(pgid) || alive(bg) {
		t.Errorf("after ReapOrphans: group %d alive %v, background %d alive %v", pgid, groupAlive(pgid), bg, alive(bg))
	}
	emptyDir(t, stateDir)
}
