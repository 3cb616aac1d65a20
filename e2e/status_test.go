package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// conflictFix waits until `baton status APP --check` reports the conflict
// code (exit 2) and returns its fix command.
func conflictFix(t testing.TB, b *batonProc, app, code string) string {
	t.Helper()
	fix := ""
	eventually(t, 30*time.Second, "conflict "+code, func() bool {
		out, exit := runCLI(t, b, "status", app, "--check", "--json")
		if exit != 2 {
			return false
		}
		var st baton.AppStatus
		if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
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

// runFix runs a conflict's fix command through the CLI (PATH replaced by
// a deployable folder) and waits until `status --check` exits 0.
func runFix(t testing.TB, b *batonProc, app, fix, path string) {
	t.Helper()
	args := strings.Fields(strings.Replace(fix, "PATH", path, 1))
	if args[0] != "baton" {
		t.Fatalf("fix %q is not a baton command", fix)
	}
	if out, code := runCLI(t, b, args[1:]...); code != 0 {
		t.Fatalf("fix %q: exit %d\n%s", fix, code, out)
	}
	eventually(t, 30*time.Second, "no conflicts after "+fix, func() bool {
		_, code := runCLI(t, b, "status", app, "--check")
		return code == 0
	})
}

// TestConflictCatalogue builds each conflict for real, checks that
// `status --check` exits 2 on it, runs the fix it suggests, and checks it
// exits 0 after.
func TestConflictCatalogue(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()

	t.Run(baton.ConflictFrozen, func(t *testing.T) {
		if _, err := c.CreateApp(ctx, "fz"); err != nil {
			t.Fatal(err)
		}
		if out, code := runCLI(t, b, "freeze", "fz", "--reason", "incident 7"); code != 0 {
			t.Fatalf("freeze: %d %s", code, out)
		}
		_, err := deployErr(c, "fz", appDir(t, "v1"), api.DeployOptions{})
		if baton.ErrorCode(err) != baton.EFROZEN || !strings.Contains(baton.ErrorMessage(err), "incident 7") {
			t.Fatalf("deploy while frozen: %v", err)
		}
		if out, code := runCLI(t, b, "deploy", "fz", appDir(t, "v1")); code != 5 {
			t.Fatalf("CLI deploy while frozen: exit %d, want 5\n%s", code, out)
		}
		runFix(t, b, "fz", conflictFix(t, b, "fz", baton.ConflictFrozen), "")
		mustSucceed(t, c, "fz", appDir(t, "v1"))
	})

	t.Run(baton.ConflictMultipleActive, func(t *testing.T) {
		// No command makes this conflict: single mode with two active
		// revisions is refused, naming the stabilize that fixes it.
		revs := multipleApp(t, b, "ma", 2)
		_, err := c.SetRevisionMode(ctx, "ma", baton.RevisionsSingle)
		if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "baton stabilize ma --revision") {
			t.Fatalf("single mode with two active revisions: %v", err)
		}
		runFix(t, b, "ma", "baton stabilize ma --revision "+revs[1], "")
		if got := routingOf(t, c, "ma"); len(got) != 1 {
			t.Fatalf("after the fix: %v (revisions %v)", got, revs)
		}
	})

	t.Run(baton.ConflictWeightsNot100, func(t *testing.T) {
		if _, err := c.CreateApp(ctx, "wn"); err != nil {
			t.Fatal(err)
		}
		d := mustSucceed(t, c, "wn", appDir(t, "v1"))
		mustSucceed(t, c, "wn", appDir(t, "v2"))
		if _, err := c.CreateSlot(ctx, "wn", "staging"); err != nil {
			t.Fatal(err)
		}
		// The old revision activated in an empty slot runs with 0 %.
		if _, err := c.RevisionOp(ctx, "wn", d.Revision, "activate", "staging", ""); err != nil {
			t.Fatal(err)
		}
		runFix(t, b, "wn", conflictFix(t, b, "wn", baton.ConflictWeightsNot100), "")
		if a := ask(t, newProxyClient(b.proxyAddr), "wn-staging.localhost"); a.Version != "v1" {
			t.Fatalf("staging after the fix: %+v", a)
		}
	})

	t.Run(baton.ConflictTrafficUnhealthy, func(t *testing.T) {
		if _, err := c.CreateApp(ctx, "tu"); err != nil {
			t.Fatal(err)
		}
		d := mustSucceed(t, c, "tu", appDir(t, "v1"))
		pids := b.processesOf(d.Revision)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGSTOP)
		}
		defer func() {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGCONT)
			}
		}()
		runFix(t, b, "tu", conflictFix(t, b, "tu", baton.ConflictTrafficUnhealthy), "")
	})

	t.Run(baton.ConflictCrashLooping, func(t *testing.T) {
		if _, err := c.CreateApp(ctx, "cl"); err != nil {
			t.Fatal(err)
		}
		d := mustSucceed(t, c, "cl", appDir(t, "v1"))
		killed := map[int]bool{}
		eventually(t, 60*time.Second, "crash loop detected", func() bool {
			for _, pid := range b.processesOf(d.Revision) {
				if !killed[pid] {
					killed[pid] = true
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			st, err := c.Status(ctx, "cl")
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
		runFix(t, b, "cl", conflictFix(t, b, "cl", baton.ConflictCrashLooping), "")
	})

	t.Run(baton.ConflictLongQueue, func(t *testing.T) {
		if _, err := c.CreateApp(ctx, "lq"); err != nil {
			t.Fatal(err)
		}
		g := newGate(t)
		held := deploy(t, c, "lq", appDir(t, "v0", buildWaitsFor(g)), api.DeployOptions{})
		waitPhase(t, c, held.ID, baton.PhaseBuilding)
		for i := 0; i <= 10; i++ {
			deploy(t, c, "lq", appDir(t, fmt.Sprint("q", i)), api.DeployOptions{})
		}
		fix := conflictFix(t, b, "lq", baton.ConflictLongQueue)
		// The supersede deploy stays queued behind the held one; let it go.
		args := strings.Fields(strings.Replace(fix, "PATH", appDir(t, "v9"), 1))
		if out, code := runCLI(t, b, args[1:]...); code != 0 {
			t.Fatalf("fix %q: %d\n%s", fix, code, out)
		}
		g.open(t)
		if out, code := runCLI(t, b, "wait", "lq", "--timeout", "60s"); code != 0 {
			t.Fatalf("wait: %d\n%s", code, out)
		}
		if _, code := runCLI(t, b, "status", "lq", "--check"); code != 0 {
			t.Fatal("conflicts remain after the queue drained")
		}
		if a := ask(t, newProxyClient(b.proxyAddr), "lq.localhost"); a.Version != "v9" {
			t.Fatalf("after supersede: %+v", a)
		}
	})

	// Without an app: one line per app, and --check over all of them.
	out, code := runCLI(t, b, "status")
	if code != 0 || !strings.Contains(out, "APP") || !strings.Contains(out, "lq") {
		t.Fatalf("status: %d\n%s", code, out)
	}
}

// TestWaitAndStatusDisplay: `baton wait APP` returns once the queue drains;
// the human status shows the running operation and the history.
func TestWaitAndStatusDisplay(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "wt"); err != nil {
		t.Fatal(err)
	}
	g := newGate(t)
	held := deploy(t, c, "wt", appDir(t, "v1", buildWaitsFor(g)), api.DeployOptions{Author: "carol", Commit: "feedbeef"})
	waitPhase(t, c, held.ID, baton.PhaseBuilding)
	out, code := runCLI(t, b, "status", "wt")
	if code != 0 || !strings.Contains(out, "RUNNING  deploy "+held.ID) || !strings.Contains(out, "phase building") || !strings.Contains(out, "carol") {
		t.Fatalf("status while running: %d\n%s", code, out)
	}
	if _, code := runCLI(t, b, "wait", "wt", "--timeout", "1s"); code != 6 {
		t.Fatalf("wait with a short timeout: exit %d, want 6", code)
	}
	done := make(chan int, 1)
	go func() {
		_, code := runCLI(t, b, "wait", "wt", "--timeout", "60s")
		done <- code
	}()
	g.open(t)
	if code := <-done; code != 0 {
		t.Fatalf("wait: exit %d", code)
	}
	if d, _ := c.Deployment(context.Background(), held.ID); !d.State.Final() {
		t.Fatalf("wait returned while %s is %s", held.ID, d.State)
	}
	if _, code := runCLI(t, b, "wait", held.ID); code != 0 {
		t.Fatalf("wait ID of a succeeded deployment: exit %d", code)
	}
}
