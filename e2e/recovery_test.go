package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// revProcess is a live process started for a revision: its environment
// names the revision (BATON_REVISION) and its HOME (under a data
// directory).
type revProcess struct {
	rev, home string
	pid, pgid int
}

// revisionProcessesAll scans /proc once for the live (not zombie)
// processes of every revision, of any baton.
func revisionProcessesAll() []revProcess {
	var out []revProcess
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // gone, or not ours to read
		}
		p := revProcess{pid: pid}
		for _, kv := range strings.Split(string(env), "\x00") {
			if v, ok := strings.CutPrefix(kv, "BATON_REVISION="); ok {
				p.rev = v
			} else if v, ok := strings.CutPrefix(kv, "HOME="); ok {
				p.home = v
			}
		}
		if p.rev == "" {
			continue
		}
		// A zombie still lists its environment as empty; only live
		// processes count.
		state, pgid := procStat(pid)
		if state == "" || state == "Z" || state == "X" {
			continue
		}
		p.pgid = pgid
		out = append(out, p)
	}
	return out
}

// procStat returns a process's state letter ("R", "S", "T", "Z", …) and
// process group, or "" if there is no such process.
func procStat(pid int) (state string, pgid int) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0
	}
	// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 3 {
		return "", 0
	}
	pgid, _ = strconv.Atoi(f[2])
	return f[0], pgid
}

// processesOf returns the PIDs of processes that b started for a
// revision. Revision names repeat across tests that run in parallel (every
// test's first "hello" is hello--000001): only b's data directory, which
// holds the revision's folder (the process's HOME), tells them apart.
func (b *batonProc) processesOf(rev string) []int {
	var pids []int
	for _, p := range revisionProcessesAll() {
		if p.rev == rev && strings.HasPrefix(p.home, b.data+string(filepath.Separator)) {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// bigArtifact is a tar.gz whose extraction takes a while: a 400 MB file
// of zeros (sparse on disk, tiny compressed), packed by the system tar so
// the race-instrumented test binary does not spend minutes compressing it.
func bigArtifact(t testing.TB, version string) string {
	t.Helper()
	return tarWithZeros(t, appDir(t, version), 400<<20)
}

// assertClean checks a cancelled or interrupted deployment left nothing:
// no process, no temp dir, no lease, no revision folder.
func assertClean(t testing.TB, b *batonProc, c *api.Client, d baton.Deployment) {
	t.Helper()
	if d.Revision != "" {
		eventually(t, 10*time.Second, "no process of "+d.Revision, func() bool { return len(b.processesOf(d.Revision)) == 0 })
		if _, err := os.Stat(filepath.Join(b.data, "apps", d.App, "revisions", d.Revision)); !os.IsNotExist(err) {
			t.Errorf("revision folder of %s remains", d.Revision)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(b.data, "tmp")); len(entries) > 0 {
		t.Errorf("temp area not empty: %v", entries)
	}
	if ls, err := c.Locks(context.Background()); err != nil || len(ls) != 0 {
		t.Errorf("locks after cancel: %+v %v", ls, err)
	}
}

// phaseSetups hold a deployment in a phase before switching.
func phaseSetups(t *testing.T) map[baton.Phase]func(version string) string {
	return map[baton.Phase]func(string) string{
		baton.PhaseExtracting: func(v string) string { return bigArtifact(t, v) },
		baton.PhaseBuilding:   func(v string) string { return appDir(t, v, buildWaitsFor(newGate(t))) },
		baton.PhaseStarting:   func(v string) string { return appDir(t, v, withListenGate(string(newGate(t)))) },
		baton.PhaseHealthChecking: func(v string) string {
			return appDir(t, v, unhealthy, withManifest("[run]\ncommand = \""+helloBin+"\"\n[health]\npath = \"/healthz\"\ninterval = \"100ms\"\nstart_timeout = \"120s\"\n"))
		},
	}
}

// TestKillDuringPhase: kill -9 baton while a deployment is in a phase, start
// it again: the deployment reads failed (interrupted), nothing is held, the
// previous revision serves and a queued deployment runs to success.
func TestKillDuringPhase(t *testing.T) {
	t.Parallel()
	setups := phaseSetups(t)
	for _, phase := range []baton.Phase{baton.PhaseExtracting, baton.PhaseStarting, baton.PhaseHealthChecking} {
		t.Run(string(phase), func(t *testing.T) {
			b := startBaton(t)
			c := b.client()
			ctx := context.Background()
			if _, err := c.CreateApp(ctx, "hello"); err != nil {
				t.Fatal(err)
			}
			mustSucceed(t, c, "hello", appDir(t, "v1"))
			d := deploy(t, c, "hello", setups[phase]("v2"), api.DeployOptions{})
			queued := deploy(t, c, "hello", appDir(t, "v3"), api.DeployOptions{})
			waitPhase(t, c, d.ID, phase)
			running, _ := c.Deployment(ctx, d.ID)

			b.restart(syscall.SIGKILL)
			c = b.client()
			got, err := c.Deployment(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != baton.StateFailed || !strings.HasPrefix(got.Error, baton.ReasonInterrupted) {
				t.Fatalf("after kill -9 in %s: %s %q, want failed (interrupted)", phase, got.State, got.Error)
			}
			if q := waitFinal(t, c, queued.ID); q.State != baton.StateSucceeded {
				t.Fatalf("queued deployment after restart: %s %s", q.State, q.Error)
			}
			status, body, err := newProxyClient(b.proxyAddr).get("hello.localhost", "/")
			if err != nil || status != 200 || version(body) != "v3" {
				t.Fatalf("after recovery: %d %s %v", status, body, err)
			}
			if running.Revision != "" {
				got.Revision = running.Revision
			}
			assertClean(t, b, c, got)
			// The first live revision was stopped after v3 went live: no orphans.
			eventually(t, 10*time.Second, "v1 instances gone", func() bool { return len(b.processesOf("hello--000001")) == 0 })
		})
	}
}
