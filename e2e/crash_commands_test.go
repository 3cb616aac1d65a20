package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// commandProcess is a live process whose command line holds a marker.
type commandProcess struct {
	pid, pgid int
	cmdline   string
}

// processesWith scans /proc for live (not zombie) processes whose command
// line contains marker, and for every live process in their process
// groups.
func processesWith(marker string) []commandProcess {
	entries, _ := os.ReadDir("/proc")
	var all []commandProcess
	groups := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, pgid := procStat(pid)
		if state == "" || state == "Z" || state == "X" {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		p := commandProcess{pid: pid, pgid: pgid, cmdline: strings.ReplaceAll(string(cmd), "\x00", " ")}
		all = append(all, p)
		if strings.Contains(p.cmdline, marker) {
			groups[pgid] = true
		}
	}
	var out []commandProcess
	for _, p := range all {
		if groups[p.pgid] {
			out = append(out, p)
		}
	}
	return out
}

// killAtCleanup kills, when the test ends, the process groups of any
// command marked by marker that is still running: a failing test must not
// leave it behind (its gate cannot stop it: the temp dir holding the gate
// is removed right after).
func killAtCleanup(t testing.TB, marker string) {
	t.Cleanup(func() {
		for _, p := range processesWith(marker) {
			_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		}
	})
}

// noProcessWith fails the test if, within a short deadline, processes of
// a command marked by marker are still alive.
func noProcessWith(t testing.TB, marker string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := processesWith(marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the command %s are still running: %+v", marker, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// beatingCommand is a shell command that appends a timestamp to beats
// every 20ms until gate exists: it proves when it stopped running.
func beatingCommand(g gate, beats string) string {
	return fmt.Sprintf("while [ ! -e %s ]; do date +%%s%%N >> %s; sleep 0.02; done", g, beats)
}

// lastBeat is the latest timestamp in a beats file.
func lastBeat(t testing.TB, beats string) int64 {
	t.Helper()
	data, err := os.ReadFile(beats)
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for _, l := range strings.Fields(string(data)) {
		if n, _ := strconv.ParseInt(l, 10, 64); n > last {
			last = n
		}
	}
	return last
}

// TestKillDuringCommand: kill -9 of baton while a build command, or a
// release command holding resource postgres:main, runs. After the restart
// no process of the command is left, the deployment failed as
// interrupted and its log names what recovery killed, nobody holds the
// resource, and another app's release on the same resource runs after the
// killed one stopped, never at the same time.
func TestKillDuringCommand(t *testing.T) {
	t.Parallel()
	for _, phase := range []baton.Phase{baton.PhaseBuilding, baton.PhaseReleasing} {
		t.Run(string(phase), func(t *testing.T) {
			b := startBaton(t)
			c := b.client()
			ctx := context.Background()
			for _, app := range []string{"ka", "kb"} {
				if _, err := c.CreateApp(ctx, app); err != nil {
					t.Fatal(err)
				}
			}
			g := newGate(t)
			killAtCleanup(t, string(g))
			beats := filepath.Join(t.TempDir(), "beats")
			label := "build"
			opt := withBuild(beatingCommand(g, beats))
			if phase == baton.PhaseReleasing {
				label = "release"
				opt = withRelease(beatingCommand(g, beats), "postgres:main")
			}
			d := deploy(t, c, "ka", appDir(t, "v1", opt), api.DeployOptions{})
			waitPhase(t, c, d.ID, phase)
			eventually(t, 10*time.Second, "the command runs", func() bool {
				_, err := os.Stat(beats)
				return err == nil && len(processesWith(string(g))) > 0
			})
			running := processesWith(string(g))

			b.restart(syscall.SIGKILL)
			c = b.client()
			noProcessWith(t, string(g))
			stopped := lastBeat(t, beats)
			got, err := c.Deployment(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != baton.StateFailed || !strings.HasPrefix(got.Error, baton.ReasonInterrupted) {
				t.Fatalf("after kill -9 in %s: %s %q, want failed (interrupted …)", phase, got.State, got.Error)
			}
			logText, _ := c.Log(ctx, d.ID)
			want := fmt.Sprintf("recovery killed the %s command (pid %d)", label, running[0].pgid)
			if !strings.Contains(logText, want) {
				t.Errorf("log of %s lacks %q:\n%s", d.ID, want, logText)
			}
			if rs, err := c.Resources(ctx); err != nil || len(rs) != 0 {
				t.Fatalf("resources after recovery: %+v %v", rs, err)
			}
			noLocks(t, c)

			// Another app's release on the same resource runs now, after the
			// killed command's last sign of life.
			log := filepath.Join(t.TempDir(), "release.log")
			next := mustSucceed(t, c, "kb", appDir(t, "v1", withRelease(recordingRelease(log, "postgres:main"), "postgres:main")))
			data, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			f := strings.Fields(string(data))
			started, _ := strconv.ParseInt(f[3], 10, 64)
			if started <= stopped {
				t.Fatalf("%s's release started at %d, before the killed command's last beat at %d", next.ID, started, stopped)
			}
			if after := lastBeat(t, beats); after != stopped {
				t.Fatalf("the killed command beat again after the restart (%d > %d)", after, stopped)
			}
		})
	}
}

// processesUnder lists live processes, other than the ones in skip, whose
// command line or working directory names a path under dir.
func processesUnder(dir string, skip ...int) []commandProcess {
	entries, _ := os.ReadDir("/proc")
	var out []commandProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || slices.Contains(skip, pid) {
			continue
		}
		state, pgid := procStat(pid)
		if state == "" || state == "Z" || state == "X" {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		line := strings.ReplaceAll(string(cmd), "\x00", " ")
		if strings.Contains(line, dir) || cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			out = append(out, commandProcess{pid: pid, pgid: pgid, cmdline: line + " (cwd " + cwd + ")"})
		}
	}
	return out
}

// TestKillDuringGitPush: kill -9 of baton while a git push waits for its
// deployment (in building): git-http-backend, receive-pack, the hook and
// the build all end; after the restart nothing runs in or for the data
// directory but baton, and the push failed.
func TestKillDuringGitPush(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "gk"); err != nil {
		t.Fatal(err)
	}
	remote := gitRemote(b, "gk")
	w := newGitWork(t, "Alice")
	g := newGate(t)
	killAtCleanup(t, string(g))
	sha := w.commitApp("v1", buildWaitsFor(g))
	push := w.start("push", remote, "main")
	d := waitPhase(t, c, deploymentOf(t, c, "gk", sha).ID, baton.PhaseBuilding)
	if len(processesUnder(b.data, b.pid())) == 0 {
		t.Fatal("nothing runs for the push: the test shows nothing")
	}
	b.restart(syscall.SIGKILL)
	if _, err := push.wait(t); err == nil {
		t.Fatal("the push succeeded although its baton was killed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for left := processesUnder(b.data, b.pid()); len(left) > 0; left = processesUnder(b.data, b.pid()) {
		if time.Now().After(deadline) {
			t.Fatalf("processes left running after kill -9 during a push: %+v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, _ := b.client().Deployment(ctx, d.ID); got.State != baton.StateFailed {
		t.Fatalf("deployment of the push: %s %q", got.State, got.Error)
	}
}
