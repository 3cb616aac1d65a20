package coordinator_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/sqlite"
)

// conflictFix waits until status reports the conflict code and returns
// its fix command.
func (b *batonEnv) conflictFix(app, code string) string {
	b.t.Helper()
	fix := ""
	eventually(b.t, 30*time.Second, "conflict "+code, func() bool {
		st, err := b.c.Status(context.Background(), app)
		if err != nil {
			b.t.Fatal(err)
		}
		for _, c := range st.Conflicts {
			if c.Code == code {
				fix = c.Fix
				return true
			}
		}
		return false
	})
	return fix
}

// runFix does through the API what a conflict's fix command does (PATH
// replaced by path), and waits until status reports no conflict.
func (b *batonEnv) runFix(app, fix, path string) {
	b.t.Helper()
	ctx := context.Background()
	args := strings.Fields(fix)
	flag := func(name string) string {
		for i, a := range args {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
		}
		return ""
	}
	slot := flag("--slot")
	var op baton.Deployment
	var err error
	switch {
	case len(args) < 3 || args[0] != "baton" || args[len(args)-1] == "":
		b.t.Fatalf("fix %q is not a baton command", fix)
	case args[1] == "stabilize" && args[2] == app:
		op, err = b.c.Stabilize(ctx, app, slot, flag("--revision"), "")
	case args[1] == "unfreeze" && args[2] == app:
		_, err = b.c.Unfreeze(ctx, app)
	case len(args) >= 5 && args[1] == "traffic" && args[2] == "set" && args[3] == app:
		rev, w, _ := strings.Cut(args[4], "=")
		if slot == "" {
			slot = baton.ProductionSlot
		}
		var n int
		fmt.Sscan(w, &n)
		op, err = b.c.SetTraffic(ctx, app, slot, map[string]int{rev: n}, "")
	case len(args) >= 5 && args[1] == "revisions" && args[2] == "restart" && args[3] == app:
		op, err = b.c.RevisionOp(ctx, app, args[4], "restart", "", "")
	case args[1] == "deploy" && args[2] == app && args[3] == "PATH":
		var res api.DeployResult
		res, err = b.deployErr(app, path, api.DeployOptions{Slot: slot, Policy: baton.Policy(flag("--on-conflict"))})
		op = res.Deployment
	default:
		b.t.Fatalf("fix %q: no API equivalent known to this test", fix)
	}
	if err != nil {
		b.t.Fatalf("fix %q: %v", fix, err)
	}
	if op.ID != "" && op.State != baton.StateQueued && !op.State.Final() {
		b.t.Fatalf("fix %q: %+v", fix, op)
	}
}

// noConflicts waits until status reports no conflict for app.
func (b *batonEnv) noConflicts(app string) {
	b.t.Helper()
	var st baton.AppStatus
	eventually(b.t, 30*time.Second, "no conflicts for "+app, func() bool {
		var err error
		st, err = b.c.Status(context.Background(), app)
		return err == nil && len(st.Conflicts) == 0
	})
}

// TestScenarioConflictCatalogue builds each conflict for real, checks that
// status reports it with a fix command, does what the fix says, and checks
// that the conflict is gone.
func TestScenarioConflictCatalogue(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()

	t.Run(baton.ConflictFrozen, func(t *testing.T) {
		b.createApp("fz")
		if _, err := b.c.Freeze(ctx, "fz", "incident 7", false); err != nil {
			t.Fatal(err)
		}
		_, err := b.deployErr("fz", appDir(t, "v1"), api.DeployOptions{})
		if baton.ErrorCode(err) != baton.EFROZEN || !strings.Contains(baton.ErrorMessage(err), "incident 7") {
			t.Fatalf("deploy while frozen: %v", err)
		}
		b.runFix("fz", b.conflictFix("fz", baton.ConflictFrozen), "")
		b.noConflicts("fz")
		b.mustDeploy("fz", appDir(t, "v1"), api.DeployOptions{})
	})

	// No command makes this conflict any more: single mode with two
	// active revisions, and activating a second one in single mode, are
	// refused naming the command that does it right.
	t.Run(baton.ConflictMultipleActive, func(t *testing.T) {
		revs := b.multipleApp("ma", 2)
		_, err := b.c.SetRevisionMode(ctx, "ma", baton.RevisionsSingle)
		if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "baton stabilize ma --revision") {
			t.Fatalf("single mode with two active revisions: %v", err)
		}
		b.noConflicts("ma")
		b.runFix("ma", "baton stabilize ma --revision "+revs[1], "")
		if _, err := b.c.SetRevisionMode(ctx, "ma", baton.RevisionsSingle); err != nil {
			t.Fatal(err)
		}
		_, err = b.c.RevisionOp(ctx, "ma", revs[0], "activate", "", "")
		if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "baton rollback ma --to "+revs[0]) {
			t.Fatalf("activate a second revision in single mode: %v", err)
		}
		b.noConflicts("ma")
		if got := b.routing("ma"); len(got) != 1 {
			t.Fatalf("routing: %v", got)
		}
	})

	t.Run(baton.ConflictWeightsNot100, func(t *testing.T) {
		b.createApp("wn", "staging")
		d := b.mustDeploy("wn", appDir(t, "v1"), api.DeployOptions{})
		b.mustDeploy("wn", appDir(t, "v2"), api.DeployOptions{})
		// The old revision activated in an empty slot runs with 0 %.
		if _, err := b.c.RevisionOp(ctx, "wn", d.Revision, "activate", "staging", ""); err != nil {
			t.Fatal(err)
		}
		b.runFix("wn", b.conflictFix("wn", baton.ConflictWeightsNot100), "")
		b.noConflicts("wn")
		b.serves(host("wn", "staging"), "v1")
	})

	t.Run(baton.ConflictTrafficUnhealthy, func(t *testing.T) {
		b.createApp("tu")
		d := b.mustDeploy("tu", appDir(t, "v1"), api.DeployOptions{})
		pids := b.processes(d.Revision)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGSTOP)
		}
		t.Cleanup(func() {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGCONT)
			}
		})
		fix := b.conflictFix("tu", baton.ConflictTrafficUnhealthy)
		b.runFix("tu", fix, "")
		b.noConflicts("tu")
		b.serves(host("tu", ""), "v1")
	})

	t.Run(baton.ConflictCrashLooping, func(t *testing.T) {
		b.createApp("cl")
		d := b.mustDeploy("cl", appDir(t, "v1"), api.DeployOptions{})
		killed := map[int]bool{}
		eventually(t, 60*time.Second, "crash loop detected", func() bool {
			for _, pid := range b.processes(d.Revision) {
				if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe == helloBin && !killed[pid] {
					killed[pid] = true
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			st, err := b.c.Status(ctx, "cl")
			if err != nil {
				t.Fatal(err)
			}
			for _, cf := range st.Conflicts {
				if cf.Code == baton.ConflictCrashLooping {
					return true
				}
			}
			return false
		})
		b.runFix("cl", b.conflictFix("cl", baton.ConflictCrashLooping), "")
		b.noConflicts("cl")
	})

	t.Run(baton.ConflictLongQueue, func(t *testing.T) {
		b.createApp("lq")
		g := newGate(t)
		held := b.deploy("lq", appDir(t, "v0", waitsInBuild(g)), api.DeployOptions{})
		b.waitPhase(held.ID, baton.PhaseBuilding)
		for i := 0; i <= 10; i++ {
			b.deploy("lq", appDir(t, fmt.Sprint("q", i)), api.DeployOptions{})
		}
		b.runFix("lq", b.conflictFix("lq", baton.ConflictLongQueue), appDir(t, "v9"))
		g.open(t)
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := b.c.WaitIdle(wctx, "lq"); err != nil {
			t.Fatal(err)
		}
		b.noConflicts("lq")
		b.serves(host("lq", ""), "v9")
	})

	all, err := b.c.AllStatus(ctx)
	if err != nil || len(all) != 6 {
		t.Fatalf("status of all apps: %d %v", len(all), err)
	}
}

// TestScenarioFreeze: a frozen app refuses deployments and operations
// (423) with its reason; freezing with cancel stops what runs; unfreeze
// resumes; both are audited.
func TestScenarioFreeze(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("fz")
	b.mustDeploy("fz", appDir(t, "v1"), api.DeployOptions{})
	g := newGate(t)
	running := b.deploy("fz", appDir(t, "v2", waitsInBuild(g)), api.DeployOptions{})
	b.waitPhase(running.ID, baton.PhaseBuilding)
	a, err := b.c.Freeze(ctx, "fz", "incident 9", true)
	if err != nil || a.Frozen == nil || a.Frozen.Reason != "incident 9" {
		t.Fatalf("freeze: %+v %v", a, err)
	}
	if d := b.waitFinal(running.ID); d.State != baton.StateCancelled {
		t.Fatalf("running deployment after freeze with cancel: %s %s", d.State, d.Error)
	}
	b.assertClean(b.get(running.ID))
	if _, err := b.deployErr("fz", appDir(t, "v3"), api.DeployOptions{}); baton.ErrorCode(err) != baton.EFROZEN || !strings.Contains(baton.ErrorMessage(err), "incident 9") {
		t.Fatalf("deploy while frozen: %v", err)
	}
	if _, err := b.c.SetSettings(ctx, "fz", baton.ProductionSlot, []baton.Setting{{Key: "A", Value: "1"}}, ""); baton.ErrorCode(err) != baton.EFROZEN {
		t.Fatalf("settings change while frozen: %v", err)
	}
	b.serves(host("fz", ""), "v1")
	if _, err := b.c.Unfreeze(ctx, "fz"); err != nil {
		t.Fatal(err)
	}
	b.mustDeploy("fz", appDir(t, "v3"), api.DeployOptions{})
	b.serves(host("fz", ""), "v3")
	audit, err := b.c.Audit(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit {
		actions = append(actions, e.Action)
	}
	if s := strings.Join(actions, " "); !strings.Contains(s, "freeze") || !strings.Contains(s, "unfreeze") {
		t.Fatalf("audit lacks freeze and unfreeze: %v", actions)
	}
}

// TestScenarioBreakLock: breaking a lock fails its holder with "lock
// broken", frees the app, is audited, and the app deploys again.
func TestScenarioBreakLock(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("lk")
	g := newGate(t)
	held := b.deploy("lk", appDir(t, "v1", waitsInBuild(g)), api.DeployOptions{})
	b.waitPhase(held.ID, baton.PhaseBuilding)
	ls, err := b.c.Locks(ctx)
	if err != nil || len(ls) != 1 || ls[0].Holder != held.ID || ls[0].Key != "app:lk" {
		t.Fatalf("locks while running: %+v %v", ls, err)
	}
	l, err := b.c.BreakLock(ctx, "lk", "operator test")
	if err != nil || l.Holder != held.ID {
		t.Fatalf("break: %+v %v", l, err)
	}
	d := b.waitFinal(held.ID)
	if d.State != baton.StateFailed || !strings.HasPrefix(d.Error, baton.ReasonLockBroken) {
		t.Fatalf("holder after break: %s %q", d.State, d.Error)
	}
	d.Revision = ""
	b.assertClean(d)
	if _, err := b.c.BreakLock(ctx, "lk", "again"); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("break of a free lock: %v", err)
	}
	b.mustDeploy("lk", appDir(t, "v2"), api.DeployOptions{})
	audit, err := b.c.Audit(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range audit {
		if e.Action == "lock.break" && strings.Contains(e.Detail, "operator test") {
			found = true
		}
	}
	if !found {
		t.Fatalf("audit lacks the lock break: %+v", audit)
	}
}

// TestScenarioDeployZeroDowntime: before any deploy the host says there is
// no live revision; v1 then v2 (two instances each) under a continuous
// load: every request succeeds, the log shows every phase, the old
// instances stop; an unknown host is a 404.
func TestScenarioDeployZeroDowntime(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("hello")
	status, body, err := b.p.get(host("hello", ""))
	if err != nil || status != 503 || !strings.Contains(body, "no live revision") {
		t.Fatalf("before any deploy: %d %q %v, want a 503 saying there is no live revision", status, body, err)
	}
	two := withManifest(strings.Replace(manifest(""), "[health]", "instances = 2\n[health]", 1))
	d1 := b.mustDeploy("hello", appDir(t, "v1", two), api.DeployOptions{})
	if d1.Revision != "hello--000001" {
		t.Fatalf("first revision = %q", d1.Revision)
	}
	b.serves(host("hello", "")+":80", "v1")
	l := b.startLoad(host("hello", ""), 4)
	eventually(t, 10*time.Second, "load sees v1", func() bool { return l.count("v1") > 50 })
	d2 := b.mustDeploy("hello", appDir(t, "v2", two), api.DeployOptions{Author: "ann", Commit: "c0ffee", Message: "second"})
	eventually(t, 10*time.Second, "load sees v2", func() bool { return l.count("v2") > 50 })
	if _, failures := l.finish(); len(failures) > 0 {
		t.Fatalf("%d failed requests during the deploy, first: %s", len(failures), failures[0])
	}
	if d2.Revision != "hello--000002" || d2.Author != "ann" || d2.Commit != "c0ffee" || d2.Message != "second" {
		t.Fatalf("second deployment = %+v", d2)
	}
	log, err := b.c.Log(ctx, d2.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, phase := range []string{"extracting", "starting", "health-checking", "switching", "draining", "deployment succeeded"} {
		if !strings.Contains(log, phase) {
			t.Errorf("log lacks %q:\n%s", phase, log)
		}
	}
	if _, err := os.Stat(filepath.Join(b.data, "apps", "hello", "revisions", "hello--000002")); err != nil {
		t.Errorf("live revision folder missing: %v", err)
	}
	eventually(t, 10*time.Second, "v1 instances stopped", func() bool { return len(b.processes(d1.Revision)) == 0 })
	if n := b.instances(); n != 2 {
		t.Errorf("%d instances run, want 2", n)
	}
	if rl, err := b.c.RevisionLog(ctx, "hello", d2.Revision); err != nil || !strings.Contains(rl, "listening") {
		t.Errorf("revision log: %v\n%s", err, rl)
	}
	if unknown, body, _ := b.p.get("nope.localhost"); unknown != 404 || !strings.Contains(body, "nope.localhost") {
		t.Errorf("unknown host: %d %s", unknown, body)
	}
}

// TestScenarioDeleteApp stops the app's instances, frees its host and
// removes its files; the name can be used again. Slots come and go too.
func TestScenarioDeleteApp(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("gone", "staging")
	d := b.mustDeploy("gone", appDir(t, "v1"), api.DeployOptions{})
	s := b.mustDeploy("gone", appDir(t, "s1"), api.DeployOptions{Slot: "staging"})
	if err := b.c.DeleteSlot(ctx, "gone", baton.ProductionSlot); err == nil {
		t.Fatal("deleted the production slot")
	}
	if err := b.c.DeleteSlot(ctx, "gone", "staging"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "staging instances stopped", func() bool { return len(b.processes(s.Revision)) == 0 })
	if status, _, _ := b.p.get(host("gone", "staging")); status != 404 {
		t.Errorf("deleted slot's host answers %d, want 404", status)
	}
	if len(b.processes(d.Revision)) == 0 {
		t.Fatal("no instance process found for the live revision")
	}
	if err := b.c.DeleteApp(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "instances stopped", func() bool { return len(b.processes(d.Revision)) == 0 })
	if _, err := os.Stat(filepath.Join(b.data, "apps", "gone")); !os.IsNotExist(err) {
		t.Errorf("app files remain: %v", err)
	}
	if status, _, _ := b.p.get(host("gone", "")); status != 404 {
		t.Errorf("deleted app's host answers %d, want 404", status)
	}
	if _, err := b.c.App(ctx, "gone"); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Errorf("app after delete: %v", err)
	}
	b.createApp("gone")
	b.mustDeploy("gone", appDir(t, "v2"), api.DeployOptions{})
	b.serves(host("gone", ""), "v2")
}

// TestScenarioWaitAndStatus: status shows the running operation with its
// phase and author, the queue, and the history; WaitIdle returns once the
// queue drains; NextDeployment finds what was queued after a sequence.
func TestScenarioWaitAndStatus(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("wt")
	g := newGate(t)
	held := b.deploy("wt", appDir(t, "v1", waitsInBuild(g)), api.DeployOptions{Author: "carol", Commit: "feedbeef"})
	b.waitPhase(held.ID, baton.PhaseBuilding)
	queued := b.deploy("wt", appDir(t, "v2"), api.DeployOptions{})
	st, err := b.c.Status(ctx, "wt")
	if err != nil {
		t.Fatal(err)
	}
	if st.Running == nil || st.Running.ID != held.ID || st.Running.Phase != baton.PhaseBuilding || st.Running.Author != "carol" ||
		len(st.Queue) != 1 || st.Queue[0].ID != queued.ID || st.Lease == nil || st.Lease.Holder != held.ID {
		t.Fatalf("status while running: %+v", st)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if err := b.c.WaitIdle(short, "wt"); err == nil {
		t.Fatal("WaitIdle returned while busy")
	}
	cancel()
	if d, ok, err := b.c.NextDeployment(ctx, "wt", held.Seq); err != nil || !ok || d.ID != queued.ID {
		t.Fatalf("next after %s: %+v %v %v", held.ID, d, ok, err)
	}
	done := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		done <- b.c.WaitIdle(wctx, "wt")
	}()
	g.open(t)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{held.ID, queued.ID} {
		if d := b.get(id); d.State != baton.StateSucceeded {
			t.Fatalf("%s after WaitIdle: %s", id, d.State)
		}
	}
	st, err = b.c.Status(ctx, "wt")
	if err != nil || st.Running != nil || len(st.Queue) != 0 || len(st.Recent) != 2 || len(st.Conflicts) != 0 {
		t.Fatalf("status after: %+v %v", st, err)
	}
}

// TestScenarioPortTakenBeforeTheAppListens: another program binds an
// instance's port between baton's probe and the app's listen (here the
// test). The deployment starts its instances again on other ports and
// succeeds, and its log says why.
func TestScenarioPortTakenBeforeTheAppListens(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	b.createApp("hello")
	g := newGate(t)
	d := b.deploy("hello", appDir(t, "v1", listensAfter(g)), api.DeployOptions{})
	started := regexp.MustCompile(`started 1 instance\(s\) on \[(127\.0\.0\.1:\d+)\]`)
	var addr string
	eventually(t, time.Minute, "the instance started, waiting to listen", func() bool {
		log, _ := b.c.Log(context.Background(), d.ID)
		if m := started.FindStringSubmatch(log); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("take the instance's port first: %v", err)
	}
	defer l.Close()
	g.open(t)
	if got := b.waitFinal(d.ID); got.State != baton.StateSucceeded {
		log, _ := b.c.Log(context.Background(), d.ID)
		t.Fatalf("deployment %s, want succeeded on other ports; its log:\n%s", got.State, log)
	}
	log, _ := b.c.Log(context.Background(), d.ID)
	if !strings.Contains(log, "taken by another program") {
		t.Errorf("the log does not say why the instances started again:\n%s", log)
	}
	b.serves(host("hello", ""), "v1")
}

// TestScenarioNewAppIsNeverAnOrphan: another controller adopting apps that
// no controller runs (here a goroutine doing what its search for orphans
// does, as fast as it can, on the same store) never takes an app that is
// being created: an app is run by its creator from the start. (Created
// unassigned and assigned after, a whole run's TestControllerFailover lost
// its app to the other controller in between, and the creation failed.)
func TestScenarioNewAppIsNeverAnOrphan(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(b.data, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stolen := make(chan string, 100)
	thief := make(chan struct{})
	go func() {
		defer close(thief)
		for ctx.Err() == nil {
			apps, err := st.Apps(ctx)
			if err != nil {
				continue
			}
			for _, a := range apps {
				if a.Controller == "" && st.AssignApp(ctx, a.Name, "", "thief") == nil {
					stolen <- a.Name
				}
			}
		}
	}()
	for i := range 30 {
		name := fmt.Sprintf("new%02d", i)
		a, err := b.c.CreateApp(context.Background(), name)
		if err != nil {
			t.Errorf("create %s: %v", name, err)
		} else if a.Controller != "test" {
			t.Errorf("created %s run by %q, want the creating controller", name, a.Controller)
		}
	}
	cancel()
	<-thief
	close(stolen)
	for name := range stolen {
		t.Errorf("app %s was taken for an orphan while it was created", name)
	}
}
