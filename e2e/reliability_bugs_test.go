package e2e

// Regression tests for the bugs the reliability suite found, each named
// after what must hold; the random scenarios' invariants check the same
// things after every step.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// TestReliabilityKillInDrainingKeepsLiveDeploymentSucceeded: kill -9 of
// baton while a deployment drains the old revision, i.e. after its switch
// was recorded. After the restart its revision is the live one (the store's
// routing names it), so its deployment must read succeeded — the history
// must not call "failed" the deployment that serves. The design: "from the
// moment switching starts, the deployment completes".
func TestReliabilityKillInDrainingKeepsLiveDeploymentSucceeded(t *testing.T) {
	t.Parallel()
	counts := scenarioCounts(t)
	b := startRelBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "kd"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "kd", relAppDir(t, "v1"))
	// An in-flight request to v1 holds the drain.
	g, mark := newGate(t), newGate(t)
	p := newProxyClient(b.proxyAddr)
	p.http.Timeout = 3 * time.Minute
	held := make(chan struct{})
	go func() {
		defer close(held)
		p.get("kd.localhost", fmt.Sprintf("/hold?gate=%s&mark=%s", g, mark))
	}()
	defer func() { g.open(t); <-held }()
	eventually(t, 30*time.Second, "a request in flight to v1", func() bool { return fileExists(string(mark)) })
	d := deploy(t, c, "kd", relAppDir(t, "v2"), api.DeployOptions{})
	waitPhase(t, c, d.ID, baton.PhaseDraining)
	b.restart(syscall.SIGKILL)
	c = b.client()
	counts.add(func(c *relCounts) { c.BatonKills++; c.Runs++ })

	got, err := c.Deployment(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "v2 answers after the restart", func() bool {
		status, body, err := newProxyClient(b.proxyAddr).get("kd.localhost", "/")
		return err == nil && status == 200 && version(body) == "v2"
	})
	counts.check()
	if got.State != baton.StateSucceeded {
		t.Errorf("deployment %s went live (its revision %s serves after the restart) but reads %s %q", got.ID, got.Revision, got.State, got.Error)
	}
	counts.check()
	checkInvariants(t, b, counts, "kd")
	ds, _ := c.Deployments(ctx, "kd", 1000)
	counts.deployments(ds)
}

// TestReliabilityKillDuringUploadLeavesNoPartialUpload: kill -9 of baton
// while an artifact is being uploaded, then start it again: the partial
// upload (artifacts/.upload-*) must be removed. A baton owns its data
// directory, so nothing else can still be writing it.
func TestReliabilityKillDuringUploadLeavesNoPartialUpload(t *testing.T) {
	t.Parallel()
	counts := scenarioCounts(t)
	b := startRelBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "up"); err != nil {
		t.Fatal(err)
	}
	killDuringUpload(t, b, c, "up")
	b.restart(syscall.SIGKILL)
	counts.add(func(c *relCounts) { c.BatonKills++; c.Runs++ })
	var left []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		left, _ = filepath.Glob(filepath.Join(b.data, "artifacts", ".upload-*"))
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	counts.check()
	if len(left) > 0 {
		var sizes []string
		for _, f := range left {
			if fi, err := os.Stat(f); err == nil {
				sizes = append(sizes, fmt.Sprintf("%s (%d bytes)", filepath.Base(f), fi.Size()))
			}
		}
		t.Errorf("partial upload of the killed baton still in artifacts/ 5s after the restart: %v", sizes)
	}
}

// TestReliabilityRestoreRetriesFailedStart: after a restart, baton starts
// the live revisions again. If an instance's first start fails for a
// passing reason (the long run met "bind: address already in use": the
// port picked for it was taken meanwhile), the revision that was healthy
// must be started again: the app must not stay without a live revision,
// answering 503, until someone deploys.
func TestReliabilityRestoreRetriesFailedStart(t *testing.T) {
	t.Parallel()
	counts := scenarioCounts(t)
	b := startRelBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "rr"); err != nil {
		t.Fatal(err)
	}
	// The app fails its next start once the marker exists, then runs.
	marker := filepath.Join(t.TempDir(), "fail-next-start")
	mustSucceed(t, c, "rr", appDir(t, "v1", withManifest(fmt.Sprintf(
		"[run]\ncommand = \"if [ -e %s ]; then rm -f %s; echo failing this start once; exit 1; fi; exec %s\"\n[health]\npath = \"/healthz\"\ninterval = \"100ms\"\nstart_timeout = \"20s\"\n",
		marker, marker, helloBin))))
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b.restart(syscall.SIGKILL)
	counts.add(func(c *relCounts) { c.BatonKills++; c.Runs++ })
	eventually(t, 20*time.Second, "the restored instance's first start failed", func() bool { return !fileExists(marker) })

	p := newProxyClient(b.proxyAddr)
	var status int
	var body string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		status, body, _ = p.get("rr.localhost", "/")
		if status == 200 && version(body) == "v1" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	counts.check()
	if status != 200 || version(body) != "v1" {
		st, _ := b.client().Status(ctx, "rr")
		t.Fatalf("15s after a failed first start during restore, rr still answers %d %.120s; status: slots %+v, conflicts %+v", status, body, st.Slots, st.Conflicts)
	}
	checkInvariants(t, b, counts, "rr")
}

// TestReliabilityKillDuringInstanceStartLeavesNoOrphan: kill -9 of baton
// between starting an instance process and recording it in DATA/run. The
// next baton reaps only recorded processes, so this one runs on forever,
// holding its port, outside any instance the status shows. (The long
// random run met it; the supervisor starts the process, then writes its
// record.) To land in that short window for sure, the test pauses baton
// (SIGSTOP) again and again while it starts the twelve instances of a
// deployment, and looks: an instance process with no record means baton is
// paused inside the window; it is killed right there.
func TestReliabilityKillDuringInstanceStartLeavesNoOrphan(t *testing.T) {
	t.Parallel()
	counts := scenarioCounts(t)
	b := startRelBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "orph"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "orph", appDir(t, "v0"))
	// The app logs to a file, as many do: nothing ties its life to baton's
	// (an app writing to the pipe of a dead baton would die of SIGPIPE).
	twelve := "[run]\ncommand = \"exec " + helloBin + " 2>>app.log\"\ninstances = 12\n[health]\npath = \"/healthz\"\ninterval = \"100ms\"\nstart_timeout = \"30s\"\n"
	// unrecorded returns the instance processes without a record.
	unrecorded := func() []revProcess {
		var out []revProcess
		for _, ps := range revisionProcesses(b.data) {
			for _, p := range ps {
				if !fileExists(filepath.Join(b.data, "run", strconv.Itoa(p.pgid)+".pid")) {
					out = append(out, p)
				}
			}
		}
		return out
	}
	records := func() int {
		m, _ := filepath.Glob(filepath.Join(b.data, "run", "*.pid"))
		return len(m)
	}
	var caught []revProcess
	samples := 0
	attempts := 3
	if reliabilityConfig().long {
		attempts = 10
	}
	for attempt := 1; attempt <= attempts && caught == nil; attempt++ {
		before := records()
		d := deploy(t, c, "orph", appDir(t, fmt.Sprintf("v%d", attempt), withManifest(twelve)), api.DeployOptions{})
		counts.add(func(c *relCounts) { c.Runs++ })
		pid := b.pid()
		deadline := time.Now().Add(60 * time.Second)
		for caught == nil && records() < before+12 && time.Now().Before(deadline) {
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			for processState(pid) != "T" {
				if time.Now().After(deadline) {
					t.Fatal("baton does not pause on SIGSTOP")
				}
				time.Sleep(time.Millisecond)
			}
			samples++
			if ps := unrecorded(); len(ps) > 0 {
				caught = ps
				break
			}
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		}
		if caught == nil {
			waitFinal(t, c, d.ID)
		}
	}
	counts.note("pauses of baton while it started instances", samples)
	if caught == nil {
		t.Logf("in %d pauses, never paused baton between starting an instance and recording it", samples)
		return
	}
	t.Logf("pause %d found unrecorded instance processes %+v; killing baton there", samples, caught)
	// SIGKILL ends a stopped process too; the next baton reaps what it
	// knows of before its API answers.
	b.restart(syscall.SIGKILL)
	counts.add(func(c *relCounts) { c.BatonKills++ })
	var left []string
	for _, p := range caught {
		if st := processState(p.pid); st != "" && st != "Z" {
			left = append(left, fmt.Sprintf("process %d (group %d) in %s", p.pid, p.pgid, p.home))
		}
	}
	counts.check()
	if len(left) > 0 {
		t.Errorf("instance processes started but not yet recorded when baton was killed survive the restart (orphans nobody stops):\n%s", strings.Join(left, "\n"))
		for _, p := range caught {
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	checkInvariants(t, b, counts, "orph")
}

// processState returns the state letter of a process ("R", "S", "T", "Z",
// …), or "" if there is none.
func processState(pid int) string {
	state, _ := procStat(pid)
	return state
}

// TestReliabilityKillAfterFinishLeavesNoLease: kill -9 of baton just after
// a deployment recorded its final state, before its worker released the
// app lease. Recovery releases only the leases of deployments still
// running, so this one stays: `locks list` names a finished deployment and
// the next deployment of the app waits out the lease's TTL (15 s). The
// test kills baton as the deployment's log stream ends, a few times, until
// the kill lands in that window.
func TestReliabilityKillAfterFinishLeavesNoLease(t *testing.T) {
	t.Parallel()
	counts := scenarioCounts(t)
	b := startRelBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "fl"); err != nil {
		t.Fatal(err)
	}
	attempts := 6 // the kill lands in the window about one time in four
	if reliabilityConfig().long {
		attempts = 25
	}
	for attempt := 1; attempt <= attempts; attempt++ {
		d := deploy(t, c, "fl", appDir(t, fmt.Sprintf("v%d", attempt)), api.DeployOptions{})
		var once sync.Once
		fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		c.Follow(fctx, d.ID, func(ev api.Event) {
			if ev.Name == "end" {
				once.Do(func() { b.signal(syscall.SIGKILL) })
			}
		})
		cancel()
		b.restart(syscall.SIGKILL)
		c = b.client()
		counts.add(func(c *relCounts) { c.BatonKills++; c.Runs++ })
		ls, err := c.Locks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts.check()
		if len(ls) == 0 {
			continue
		}
		// Recovery must not leave it: the next deployment starts at once.
		next := deploy(t, c, "fl", appDir(t, fmt.Sprintf("v%d-next", attempt)), api.DeployOptions{})
		started := false
		deadline := time.Now().Add(5 * time.Second)
		for !started && time.Now().Before(deadline) {
			cur, err := c.Deployment(ctx, next.ID)
			if err != nil {
				t.Fatal(err)
			}
			started = cur.StartedAt != nil
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("attempt %d: the lease of finished deployment %s survived kill -9 and restart: %+v; the next deployment %s started within 5s: %v",
			attempt, d.ID, ls, next.ID, started)
		return
	}
	t.Logf("in %d attempts the kill never landed between the final state and the lease release", attempts)
}

// TestReliabilityDiskFullBuildFailureSaysWhy: a build that fills the disk
// fails, and the user must be able to read why: the build's own error
// ("No space left on device") in the deployment's error or log. The line is
// printed while the disk is full, when the store cannot append it.
func TestReliabilityDiskFullBuildFailureSaysWhy(t *testing.T) {
	t.Parallel()
	counts := scenarioCounts(t)
	b := startRelBatonOn(t, mountTmpfs(t, "64m"))
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "fullbuild"); err != nil {
		t.Fatal(err)
	}
	d := waitFinal(t, c, deploy(t, c, "fullbuild", appDir(t, "fills-disk", withBuild("echo filling the disk; head -c 100000000 /dev/zero > filler")), api.DeployOptions{}).ID)
	counts.add(func(c *relCounts) { c.Runs++ })
	log, err := c.Log(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	counts.check()
	if d.State != baton.StateFailed {
		t.Fatalf("build that fills the disk: %s %q, want failed", d.State, d.Error)
	}
	if !strings.Contains(strings.ToLower(d.Error+log), "no space left on device") {
		var warnings []string
		for _, l := range strings.Split(b.output(), "\n") {
			if strings.Contains(l, "append deployment log") {
				warnings = append(warnings, l)
			}
		}
		t.Errorf("the build failed on a full disk but neither its error (%q) nor its log says so:\n%s\nbaton's own log:\n%s", d.Error, log, strings.Join(warnings, "\n"))
	}
	checkInvariants(t, b, counts, "fullbuild")
	ds, _ := c.Deployments(ctx, "fullbuild", 1000)
	counts.deployments(ds)
}
