package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// revProcess is a live process started for a revision: its id, process
// group and HOME (the revision folder, inside baton's data directory).
// revisionProcesses returns the live processes of every revision whose
// HOME lies in dataDir, by revision. (Other tests' batons may run apps of
// the same name.)
func revisionProcesses(dataDir string) map[string][]revProcess {
	out := map[string][]revProcess{}
	for _, p := range revisionProcessesAll() {
		if strings.HasPrefix(p.home, dataDir+string(filepath.Separator)) {
			out[p.rev] = append(out[p.rev], p)
		}
	}
	return out
}

// instanceLeaders returns the production slot's active revisions with the
// process ids of their instances (each the leader of its process group).
func instanceLeaders(t testing.TB, c *api.Client, app string) map[string]map[int]bool {
	t.Helper()
	st, err := c.Status(context.Background(), app)
	if err != nil {
		t.Fatalf("status of %s: %v", app, err)
	}
	leaders := map[string]map[int]bool{}
	for _, s := range st.Slots {
		if s.Name != baton.ProductionSlot {
			continue
		}
		for _, r := range s.Revisions {
			leaders[r.Name] = map[int]bool{}
			for _, in := range r.Instances {
				if in.PID > 0 {
					leaders[r.Name][in.PID] = true
				}
			}
		}
	}
	return leaders
}

// checkInvariants waits until apps are quiet (nothing running or queued)
// and checks what must hold after any failure: every deployment final, no
// lease, at most one running operation per app at any recorded instant, the
// live revision is the last one that went live and answers through the
// proxy, no process of a revision that is not live (nor one outside the
// live revision's instances), no temp file, no folder of a revision that
// never went live. Each check counts in c.
func checkInvariants(t testing.TB, b *batonProc, counts *relCounts, apps ...string) {
	t.Helper()
	c := b.client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, app := range apps {
		if err := c.WaitIdle(ctx, app); err != nil {
			t.Fatalf("invariant: app %s never became quiet: %v", app, err)
		}
	}
	all := map[string][]baton.Deployment{}
	for _, app := range apps {
		ds, err := c.Deployments(ctx, app, 1000)
		if err != nil {
			t.Fatalf("deployments of %s: %v", app, err)
		}
		all[app] = ds
		for _, d := range ds {
			if !d.State.Final() {
				t.Errorf("invariant: deployment %s of %s is %s (phase %s) after the app went quiet", d.ID, app, d.State, d.Phase)
			}
		}
		counts.check()
		assertSerial(t, ds)
		assertOneRunning(t, ds)
		counts.check()
	}
	checkNoLocks(t, c, counts, all)

	proxy := newProxyClient(b.proxyAddr)
	live := map[string]string{}
	for _, app := range apps {
		live[app] = checkLive(t, c, proxy, app, all[app], counts)
	}
	checkProcesses(t, b, apps, live, counts)
	checkNoLeftovers(t, b, apps, all, live, counts)
}

// checkNoLocks waits until no lease is recorded. A finished deployment
// releases its leases in the write that finishes it, so no lease may
// outlive it (TestReliabilityKillAfterFinishLeavesNoLease).
func checkNoLocks(t testing.TB, c *api.Client, counts *relCounts, all map[string][]baton.Deployment) {
	t.Helper()
	final := map[string]bool{}
	for _, ds := range all {
		for _, d := range ds {
			final[d.ID] = d.State.Final()
		}
	}
	var ls []baton.Lease
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if ls, err = c.Locks(context.Background()); err == nil && len(ls) == 0 {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	counts.check()
	for _, l := range ls {
		if final[l.Holder] {
			t.Errorf("invariant: lease %s still held by finished deployment %s", l.Key, l.Holder)
			continue
		}
		t.Errorf("invariant: lease %s held by %s (token %d, expires %s) with nothing running", l.Key, l.Holder, l.Token, l.ExpiresAt)
	}
}

// assertOneRunning checks from the recorded history that no two operations
// of an app ran at the same instant, whatever their order of acceptance.
func assertOneRunning(t testing.TB, ds []baton.Deployment) {
	t.Helper()
	var ran []baton.Deployment
	for _, d := range ds {
		if d.StartedAt != nil {
			ran = append(ran, d)
		}
	}
	sort.Slice(ran, func(i, j int) bool { return ran[i].StartedAt.Before(*ran[j].StartedAt) })
	for i := 1; i < len(ran); i++ {
		prev, cur := ran[i-1], ran[i]
		if prev.FinishedAt == nil || cur.StartedAt.Before(*prev.FinishedAt) {
			t.Errorf("invariant: two operations of %s running at once: %s ran %v–%v, %s started %v", cur.App, prev.ID, prev.StartedAt, prev.FinishedAt, cur.ID, cur.StartedAt)
		}
	}
}

// interruptedAfterSwitch reports whether baton stopped while d was in
// phase switching or draining: its revision may have gone live.
func interruptedAfterSwitch(d baton.Deployment) bool {
	return d.State == baton.StateFailed && strings.HasPrefix(d.Error, baton.ReasonInterrupted) &&
		(d.Phase == baton.PhaseSwitching || d.Phase == baton.PhaseDraining)
}

// oneLive returns the production slot's revision with traffic and whether
// the slot is settled: at most one revision, with 100 % of the traffic,
// and no conflict but a crash loop. Two revisions with traffic fail t.
func oneLive(t testing.TB, st baton.AppStatus) (string, bool) {
	t.Helper()
	for _, cf := range st.Conflicts {
		if cf.Code != baton.ConflictCrashLooping {
			return "", false
		}
	}
	live, total, n := "", 0, 0
	for _, s := range st.Slots {
		if s.Name != baton.ProductionSlot {
			continue
		}
		for _, r := range s.Revisions {
			n++
			total += r.Weight
			if r.Weight > 0 {
				if live != "" {
					t.Fatalf("invariant: %s has two revisions with traffic in single mode: %+v", st.App, s.Revisions)
				}
				live = r.Name
			}
		}
	}
	return live, n == 0 || (n == 1 && total == 100)
}

// checkLive checks the app's production slot: one revision takes all
// traffic, it is the revision of the last deployment that went live, no
// conflict is reported, and the revision answers through the proxy. It
// returns the live revision ("" when none went live yet).
func checkLive(t testing.TB, c *api.Client, p *proxyClient, app string, ds []baton.Deployment, counts *relCounts) string {
	t.Helper()
	var last *baton.Deployment
	for i := range ds {
		if ds[i].State == baton.StateSucceeded && (last == nil || ds[i].Seq > last.Seq) {
			last = &ds[i]
		}
	}
	var liveRev string
	var st baton.AppStatus
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if st, err = c.Status(context.Background(), app); err != nil {
			t.Fatalf("status of %s: %v", app, err)
		}
		var settled bool
		if liveRev, settled = oneLive(t, st); settled && (liveRev != "" || last == nil) {
			break
		}
		if time.Now().After(deadline) {
			hint := ""
			if last != nil && len(st.Slots) > 0 && len(st.Slots[0].Revisions) == 0 {
				hint = " (no revision runs although one went live: see TestReliabilityRestoreRetriesFailedStart)"
			}
			t.Fatalf("invariant: after 30s %s has no single healthy live revision without conflicts%s: slots %+v, conflicts %+v", app, hint, st.Slots, st.Conflicts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	counts.check()
	if last == nil {
		return ""
	}
	// A deployment killed after its switch is recorded succeeded
	// (TestReliabilityKillInDrainingKeepsLiveDeploymentSucceeded), so what
	// serves is always the last succeeded one.
	if liveRev != last.Revision {
		t.Errorf("invariant: %s serves %q, want %s of the last deployment that went live (%s)", app, liveRev, last.Revision, last.ID)
	}
	counts.check()
	host := app + ".localhost"
	var status int
	var body string
	var err error
	deadline = time.Now().Add(30 * time.Second)
	for {
		status, body, err = p.get(host, "/")
		if err == nil && status == 200 && strings.Contains(body, `"revision":"`+liveRev+`"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("invariant: live revision %s of %s does not answer through the proxy: %d %.200s %v", liveRev, app, status, body, err)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	counts.check()
	return liveRev
}

// checkProcesses checks that the only processes of the apps' revisions are
// the live revisions' instances (their process groups as the supervisor
// reports them): nothing left of a failed, cancelled or replaced revision,
// and nothing of the live one left over by a killed baton.
func checkProcesses(t testing.TB, b *batonProc, apps []string, live map[string]string, counts *relCounts) {
	t.Helper()
	c := b.client()
	var problems []string
	var unrecorded []revProcess
	deadline := time.Now().Add(15 * time.Second)
	for {
		problems, unrecorded = nil, nil
		procs := revisionProcesses(b.data)
		for _, app := range apps {
			leaders := instanceLeaders(t, c, app)
			for rev, ps := range procs {
				if !strings.HasPrefix(rev, app+"--") {
					continue
				}
				for _, p := range ps {
					var problem string
					switch {
					case rev != live[app]:
						problem = fmt.Sprintf("orphan: process %d (group %d) of %s, which is not live (%s is)", p.pid, p.pgid, rev, live[app])
					case !leaders[rev][p.pgid]:
						problem = fmt.Sprintf("orphan: process %d (group %d) of live %s is none of its instances %v", p.pid, p.pgid, rev, leaders[rev])
					default:
						continue
					}
					if !fileExists(filepath.Join(b.data, "run", strconv.Itoa(p.pgid)+".pid")) {
						unrecorded = append(unrecorded, p)
					}
					problems = append(problems, problem)
				}
			}
		}
		// An instance just started is recorded within moments, and one
		// started as baton died exits at its gate; what is left at the
		// deadline is an orphan, whatever the machine's speed.
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Unrecorded orphans (TestReliabilityKillDuringInstanceStartLeavesNoOrphan)
	// are killed after reporting, so that the next checks see only new
	// problems.
	for _, p := range unrecorded {
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	for _, p := range problems {
		t.Errorf("invariant: %s", p)
	}
	counts.check()
}

// checkNoLeftovers checks the data directory: tmp/ empty, no upload in
// progress, no folder of a revision that never went live.
func checkNoLeftovers(t testing.TB, b *batonProc, apps []string, all map[string][]baton.Deployment, live map[string]string, counts *relCounts) {
	t.Helper()
	if entries, _ := os.ReadDir(filepath.Join(b.data, "tmp")); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("invariant: temp area %s not empty: %v", filepath.Join(b.data, "tmp"), names)
	}
	counts.check()
	// A partial upload cut by a kill -9 is removed when baton starts again
	// (TestReliabilityKillDuringUploadLeavesNoPartialUpload).
	if m, _ := filepath.Glob(filepath.Join(b.data, "artifacts", ".upload-*")); len(m) > 0 {
		t.Errorf("invariant: partial uploads left in artifacts/: %v", m)
	}
	for _, app := range apps {
		for _, d := range all[app] {
			if d.Revision == "" || d.Revision == live[app] || d.State == baton.StateSucceeded || interruptedAfterSwitch(d) {
				continue
			}
			if _, err := os.Stat(filepath.Join(b.data, "apps", app, "revisions", d.Revision)); err == nil {
				t.Errorf("invariant: folder of %s (deployment %s, %s) remains", d.Revision, d.ID, d.State)
			}
		}
		counts.check()
	}
}

// startRelBaton is startBaton for the reliability scenarios: once baton
// has stopped at the test's end, no process of its revisions may remain.
// If one does (or the test failed, so baton may have died), it is killed,
// so no scenario leaves processes behind for the next.
func startRelBaton(t testing.TB, extra ...string) *batonProc {
	t.Helper()
	var b *batonProc
	t.Cleanup(func() {
		if b == nil {
			return
		}
		if ps := b.cmd.ProcessState; ps != nil && !ps.Success() && t.Failed() {
			t.Logf("the last baton process ended: %s", ps)
		}
		var left []revProcess
		for _, ps := range revisionProcesses(b.data) {
			left = append(left, ps...)
		}
		for _, p := range left {
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
		if len(left) > 0 && !t.Failed() {
			t.Errorf("baton stopped (SIGTERM) but left %d app processes running: %+v", len(left), left)
		}
	})
	b = startBaton(t, extra...)
	return b
}
