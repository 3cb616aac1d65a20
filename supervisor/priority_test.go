package supervisor

import (
	"context"
	"regexp"
	"strconv"
	"syscall"
	"testing"
)

// niceOf returns the nice value of process pid (0: this one).
func niceOf(t *testing.T, pid int) int {
	t.Helper()
	raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, pid)
	if err != nil {
		t.Fatal(err)
	}
	return 20 - raw // the raw syscall answers 20 - nice
}

// ioprioOf returns the I/O priority of process pid (0: this one), as
// ioprio_get(2) encodes it.
func ioprioOf(t *testing.T, pid int) int {
	t.Helper()
	prio, _, errno := syscall.Syscall(syscall.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(pid), 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	return int(prio)
}

// TestRunYieldsToInstances: a build or release command, and whatever it
// starts, runs commandNice steps nicer than baton and in the lowest
// best-effort I/O class; an instance runs at baton's own priority.
func TestRunYieldsToInstances(t *testing.T) {
	s := newSupervisor(t, testConfig(t))
	var out lines
	// nice(1) and ionice(1) print the priority they inherited from the shell.
	err := s.Run(context.Background(), Command{Name: "d", Label: "build", Dir: t.TempDir(), Output: out.add,
		Env: []string{"PATH=/usr/bin:/bin"}, Command: `echo "nice $(nice)"; echo "io $(ionice)"`})
	if err != nil {
		t.Fatal(err)
	}
	own := niceOf(t, 0)
	m := out.match(regexp.MustCompile(`^nice (-?\d+)$`))
	if m == nil {
		t.Fatalf("no nice value in the output %q", out.all)
	}
	if got, want := m[1], strconv.Itoa(min(own+commandNice, 19)); got != want {
		t.Errorf("the command ran at nice %s, want %s (baton's %d + %d)", got, want, own, commandNice)
	}
	if m := out.match(regexp.MustCompile(`^io (.*)$`)); m == nil || m[1] != "best-effort: prio 7" {
		t.Errorf("the command's I/O priority: %q, want best-effort: prio 7", m)
	}

	g := start(t, s, appSpec(t, "ok", 1))
	waitHealthy(t, g)
	pid := g.Status()[0].PID
	if got := niceOf(t, pid); got != own {
		t.Errorf("the instance runs at nice %d, want baton's %d", got, own)
	}
	if got, want := ioprioOf(t, pid), ioprioOf(t, 0); got != want {
		t.Errorf("the instance's I/O priority is %#x, want baton's %#x", got, want)
	}
}
