package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// TestReliabilityRestartInPlaceUnderLoad: SIGUSR2 makes baton hand its
// listening sockets and running instances to a new process of itself.
// Under a constant load no request fails, the apps' processes are the same
// ones (none restarted), the new process answers the API, owns the
// instances (a deployment after the restart replaces them and stops the
// old ones) and runs what was queued.
func TestReliabilityRestartInPlaceUnderLoad(t *testing.T) {
	t.Parallel()
	counts := scenarioCounts(t)
	b := startRelBaton(t)
	c := b.client()
	ctx := context.Background()
	for _, app := range []string{"ip", "ip2"} {
		if _, err := c.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		mustSucceed(t, c, app, appDir(t, "v1", withManifest("[run]\ncommand = \"exec "+helloBin+"\"\ninstances = 2\n[health]\npath = \"/healthz\"\ninterval = \"100ms\"\n")))
	}
	pidsOf := func() []int {
		var pids []int
		for _, ps := range revisionProcesses(b.data) {
			for _, p := range ps {
				pids = append(pids, p.pid)
			}
		}
		slices.Sort(pids)
		return pids
	}
	before := pidsOf()
	if len(before) != 4 {
		t.Fatalf("instance processes before the restart: %v, want 4", before)
	}
	load := startRelLoad(t, b.proxyAddr, []string{"ip.localhost", "ip2.localhost"}, 4, 5*time.Millisecond)
	eventually(t, 30*time.Second, "100 requests answered before the restart", func() bool { return load.ok.Load() >= 100 })
	oldPID := b.pid()
	start := time.Now()
	b.restartInPlace()
	took := time.Since(start)
	ok := load.ok.Load()
	eventually(t, 30*time.Second, "100 requests answered after the restart", func() bool { return load.ok.Load() >= ok+100 })
	requests, failed := load.report(t, counts)
	counts.add(func(c *relCounts) { c.Runs++ })
	counts.note("failed requests across a restart in place (SIGUSR2)", int(failed))
	t.Logf("restart in place under load: %d of %d requests failed; baton %d handed over to %d in %s",
		failed, requests, oldPID, b.pid(), took.Round(time.Millisecond))
	if failed != 0 {
		t.Errorf("%d requests failed across a restart in place; want none", failed)
	}
	if after := pidsOf(); !slices.Equal(after, before) {
		t.Fatalf("instance processes changed across the restart: before %v, after %v", before, after)
	}

	// The new process owns everything: the API answers, a deployment
	// replaces adopted instances and stops them.
	c = b.client()
	mustSucceed(t, c, "ip", appDir(t, "v2"))
	eventually(t, 10*time.Second, "the adopted instances of ip's v1 stopped", func() bool {
		return len(revisionProcesses(b.data)["ip--000001"]) == 0
	})
	if ps := revisionProcesses(b.data)["ip2--000001"]; len(ps) != 2 {
		t.Errorf("ip2's adopted instances after ip's deployment: %+v, want the same 2", ps)
	}
	eventually(t, 10*time.Second, "v2 answers", func() bool {
		status, body, err := newProxyClient(b.proxyAddr).get("ip.localhost", "/")
		return err == nil && status == 200 && version(body) == "v2"
	})
	checkInvariants(t, b, counts, "ip", "ip2")
	for _, app := range []string{"ip", "ip2"} {
		ds, _ := c.Deployments(ctx, app, 1000)
		counts.deployments(ds)
	}
}

// TestReliabilityRestartInPlaceFinishesRunningDeployment: a restart in
// place waits for the running deployment, which succeeds; the API keeps
// taking requests meanwhile, and what it queued runs in the new process.
func TestReliabilityRestartInPlaceFinishesRunningDeployment(t *testing.T) {
	t.Parallel()
	counts := scenarioCounts(t)
	b := startRelBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "ipr"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "ipr", appDir(t, "v1"))
	gate := newGate(t)
	running := deploy(t, c, "ipr", appDir(t, "v2", buildWaitsFor(gate)), api.DeployOptions{})
	waitPhase(t, c, running.ID, baton.PhaseBuilding)
	oldPID := b.pid()
	if err := syscall.Kill(oldPID, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	// Paused for the handoff, baton still takes deployments: this one queues.
	queued := deploy(t, c, "ipr", appDir(t, "v3"), api.DeployOptions{})
	gate.open(t)
	b.awaitHandover(oldPID)
	c = b.client()
	for _, id := range []string{running.ID, queued.ID} {
		if d := waitFinal(t, c, id); d.State != baton.StateSucceeded {
			t.Errorf("deployment %s across the restart in place: %s %q", id, d.State, d.Error)
		}
	}
	eventually(t, 10*time.Second, "v3 answers", func() bool {
		status, body, err := newProxyClient(b.proxyAddr).get("ipr.localhost", "/")
		return err == nil && status == 200 && version(body) == "v3"
	})
	counts.add(func(c *relCounts) { c.Runs++ })
	checkInvariants(t, b, counts, "ipr")
	ds, _ := c.Deployments(ctx, "ipr", 1000)
	counts.deployments(ds)
}

// TestReliabilityRestartInPlaceRefusesBrokenBinary: an upgrade whose binary
// does not run is refused before anything is handed over — baton goes on
// serving every request and deployment — and once a working binary is in
// place, SIGUSR2 upgrades to it.
func TestReliabilityRestartInPlaceRefusesBrokenBinary(t *testing.T) {
	t.Parallel()
	counts := scenarioCounts(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "baton")
	install := func(content []byte, mode os.FileMode) {
		// As a package manager does: a new file renamed over the old (the
		// running executable cannot be written in place).
		tmp := bin + ".new"
		if err := os.WriteFile(tmp, content, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, bin); err != nil {
			t.Fatal(err)
		}
	}
	good, err := os.ReadFile(batonBin)
	if err != nil {
		t.Fatal(err)
	}
	install(good, 0o755)
	b := (&batonProc{t: t, data: t.TempDir(), apiAddr: freeAddr(t), proxyAddr: freeAddr(t), bin: bin}).launch()
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "up", appDir(t, "v1"))
	load := startRelLoad(t, b.proxyAddr, []string{"up.localhost"}, 4, 5*time.Millisecond)

	install([]byte("#!/bin/sh\necho 'this build is broken' >&2\nexit 3\n"), 0o755)
	pid := b.pid()
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "baton reports the refused restart", func() bool {
		return strings.Contains(b.output(), "this build is broken")
	})
	if st := processState(pid); st == "" || st == "Z" {
		t.Fatalf("baton (pid %d) exited after a refused restart:\n%s", pid, b.output())
	}
	mustSucceed(t, c, "up", appDir(t, "v2"))

	install(good, 0o755)
	b.restartInPlace()
	if b.pid() == pid {
		t.Fatal("the restart with a working binary did not hand over")
	}
	c = b.client()
	mustSucceed(t, c, "up", appDir(t, "v3"))
	requests, failed := load.report(t, counts)
	counts.add(func(c *relCounts) { c.Runs++ })
	if failed != 0 {
		t.Errorf("%d of %d requests failed across a refused and a good restart in place", failed, requests)
	}
	checkInvariants(t, b, counts, "up")
}
