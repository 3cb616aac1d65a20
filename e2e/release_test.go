package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// withRelease adds a [release] step to the example app's manifest.
func withRelease(command string, resources ...string) func(string) {
	return func(dir string) {
		m, _ := os.ReadFile(filepath.Join(dir, "baton.toml"))
		quoted := make([]string, len(resources))
		for i, r := range resources {
			quoted[i] = strconv.Quote(r)
		}
		m = append(m, []byte(fmt.Sprintf("[release]\ncommand = '%s'\nresources = [%s]\nresource_wait = \"2m\"\n", command, strings.Join(quoted, ", ")))...)
		os.WriteFile(filepath.Join(dir, "baton.toml"), m, 0o644)
	}
}

// recordingRelease appends "start|end RESOURCE BATON_REVISION NANOS" lines to
// log around a short pause, for every resource it holds.
func recordingRelease(log string, resources ...string) string {
	var start, end []string
	for _, r := range resources {
		start = append(start, fmt.Sprintf(`echo "start %s $BATON_REVISION $(date +%%s%%N)" >> %s`, r, log))
		end = append(end, fmt.Sprintf(`echo "end %s $BATON_REVISION $(date +%%s%%N)" >> %s`, r, log))
	}
	return strings.Join(start, "; ") + "; sleep 0.05; " + strings.Join(end, "; ")
}

// assertNoOverlap reads a release log and checks that, per resource, no two
// releases overlapped.
func assertNoOverlap(t testing.TB, log string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	type span struct {
		rev        string
		start, end int64
	}
	spans := map[string]map[string]*span{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("bad release log line %q", line)
		}
		ts, _ := strconv.ParseInt(f[3], 10, 64)
		if spans[f[1]] == nil {
			spans[f[1]] = map[string]*span{}
		}
		s := spans[f[1]][f[2]]
		if s == nil {
			s = &span{rev: f[2]}
			spans[f[1]][f[2]] = s
		}
		if f[0] == "start" {
			s.start = ts
		} else {
			s.end = ts
		}
	}
	counts := map[string]int{}
	for res, byRev := range spans {
		var list []*span
		for _, s := range byRev {
			list = append(list, s)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].start < list[j].start })
		for i := 1; i < len(list); i++ {
			if list[i].start < list[i-1].end {
				t.Fatalf("releases of %s and %s overlapped on resource %s", list[i-1].rev, list[i].rev, res)
			}
		}
		counts[res] = len(list)
	}
	return counts
}

// TestReleaseSharedResource: two apps whose releases touch postgres:main
// never overlap; while one holds it, the other waits in phase
// waiting-for-resource, and 409s and `resources list` name the holder.
func TestReleaseSharedResource(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	log := filepath.Join(t.TempDir(), "release.log")
	for _, app := range []string{"a1", "a2"} {
		if _, err := c.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	g := newGate(t)
	held := deploy(t, c, "a1", appDir(t, "v1", withRelease(fmt.Sprintf("while [ ! -e %s ]; do sleep 0.02; done; %s", g, recordingRelease(log, "postgres:main")), "postgres:main")), api.DeployOptions{})
	waitPhase(t, c, held.ID, baton.PhaseReleasing)
	waiter := deploy(t, c, "a2", appDir(t, "v1", withRelease(recordingRelease(log, "postgres:main"), "postgres:main")), api.DeployOptions{})
	waitPhase(t, c, waiter.ID, baton.PhaseWaitingForResource)

	_, err := deployErr(c, "a2", appDir(t, "v2"), api.DeployOptions{Policy: baton.PolicyFail})
	msg := baton.ErrorMessage(err)
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(msg, "postgres:main") || !strings.Contains(msg, held.ID) || !strings.Contains(msg, "app a1") {
		t.Fatalf("409 while waiting for a resource does not name it and its holder: %v", err)
	}
	out, code := runCLI(t, b, "resources", "list")
	if code != 0 || !strings.Contains(out, "postgres:main") || !strings.Contains(out, held.ID) || !strings.Contains(out, waiter.ID) {
		t.Fatalf("resources list: %d\n%s", code, out)
	}
	g.open(t)
	for _, id := range []string{held.ID, waiter.ID} {
		if d := waitFinal(t, c, id); d.State != baton.StateSucceeded {
			t.Fatalf("%s: %s %s", id, d.State, d.Error)
		}
	}
	if n := assertNoOverlap(t, log)["postgres:main"]; n != 2 {
		t.Fatalf("%d releases recorded, want 2", n)
	}
	noLocks(t, c)
}

// TestReleaseDisjointResourcesOverlap: releases of apps with disjoint
// resources run at the same time (each waits for the other's marker, which
// would time out if they were serialized).
func TestReleaseDisjointResourcesOverlap(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	dir := t.TempDir()
	rendezvous := func(mine, theirs string) string {
		return fmt.Sprintf(`touch %s/%s; i=0; while [ ! -e %s/%s ]; do i=$((i+1)); [ $i -gt 1500 ] && exit 1; sleep 0.02; done`, dir, mine, dir, theirs)
	}
	var ids []string
	for app, res := range map[string]string{"b1": "queue:x", "b2": "queue:y"} {
		if _, err := c.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		other := map[string]string{"b1": "b2", "b2": "b1"}[app]
		ids = append(ids, deploy(t, c, app, appDir(t, "v1", withRelease(rendezvous(app, other), res)), api.DeployOptions{}).ID)
	}
	for _, id := range ids {
		if d := waitFinal(t, c, id); d.State != baton.StateSucceeded {
			t.Fatalf("%s: %s %s (disjoint releases did not run together)", id, d.State, d.Error)
		}
	}
}

// TestReleaseNoDeadlock: three apps with overlapping resource sets declared
// in different orders, 30 concurrent deployments: all finish, no overlap.
func TestReleaseNoDeadlock(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	log := filepath.Join(t.TempDir(), "release.log")
	sets := map[string][]string{"d1": {"r1", "r2"}, "d2": {"r3", "r2"}, "d3": {"r1", "r3"}}
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for app, res := range sets {
		if _, err := c.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			dir := appDir(t, fmt.Sprint("v", i), withRelease(recordingRelease(log, res...), res...))
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := deployErr(c, app, dir, api.DeployOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, d.ID)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	for _, id := range ids {
		if d := waitFinal(t, c, id); d.State != baton.StateSucceeded {
			t.Fatalf("%s: %s %s", id, d.State, d.Error)
		}
	}
	counts := assertNoOverlap(t, log)
	for _, r := range []string{"r1", "r2", "r3"} {
		if counts[r] != 20 {
			t.Errorf("resource %s: %d releases, want 20", r, counts[r])
		}
	}
	noLocks(t, c)
}

// TestReleaseFailureAndCrash: a failing release leaves the old revision live
// and every lock released; kill -9 during releasing leaves no resource lock
// and no process of the release command after the restart.
func TestReleaseFailureAndCrash(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "rf"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "rf", appDir(t, "v1"))
	d := waitFinal(t, c, deploy(t, c, "rf", appDir(t, "v2", withRelease(`echo migrating; echo "relation exists" >&2; exit 3`, "postgres:main")), api.DeployOptions{}).ID)
	if d.State != baton.StateFailed || !strings.Contains(d.Error, "release command failed") {
		t.Fatalf("failing release: %s %q", d.State, d.Error)
	}
	logText, _ := c.Log(ctx, d.ID)
	if !strings.Contains(logText, "release: relation exists") {
		t.Errorf("release output missing from the log:\n%s", logText)
	}
	if a := ask(t, newProxyClient(b.proxyAddr), "rf.localhost"); a.Version != "v1" {
		t.Fatalf("after failed release: %+v", a)
	}
	noLocks(t, c)

	g := newGate(t)
	held := deploy(t, c, "rf", appDir(t, "v3", withRelease(fmt.Sprintf("while [ ! -e %s ]; do sleep 0.02; done", g), "postgres:main")), api.DeployOptions{})
	waitPhase(t, c, held.ID, baton.PhaseReleasing)
	killAtCleanup(t, string(g))
	b.restart(syscall.SIGKILL)
	c = b.client()
	noProcessWith(t, string(g))
	if ls, _ := c.Locks(ctx); len(ls) != 0 {
		t.Fatalf("locks after kill -9 in releasing and restart: %+v", ls)
	}
	if got, _ := c.Deployment(ctx, held.ID); got.State != baton.StateFailed || !strings.HasPrefix(got.Error, baton.ReasonInterrupted) {
		t.Fatalf("interrupted release: %s %q", got.State, got.Error)
	}
	eventually(t, 20*time.Second, "v1 serves after restart", func() bool {
		status, body, err := newProxyClient(b.proxyAddr).get("rf.localhost", "/")
		return err == nil && status == 200 && version(body) == "v1"
	})
}

// noLocks waits until no lease is recorded: a worker releases its lease
// just after recording the final state.
func noLocks(t testing.TB, c *api.Client) {
	t.Helper()
	eventually(t, 10*time.Second, "no locks held", func() bool {
		ls, err := c.Locks(context.Background())
		return err == nil && len(ls) == 0
	})
}
