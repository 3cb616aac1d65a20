package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// runCLI runs the baton binary against b with b's admin token and
// returns output and exit code.
func runCLI(t testing.TB, b *batonProc, args ...string) (string, int) {
	t.Helper()
	return runCLIEnv(t, b, []string{"BATON_TOKEN=" + b.token}, args...)
}

// runCLIEnv is runCLI with env added to (and overriding) the environment.
func runCLIEnv(t testing.TB, b *batonProc, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(batonBin, args...)
	cmd.Env = append(append(os.Environ(), "BATON_URL=http://"+b.apiAddr), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// TestCLIDeployWait drives the CLI end to end: apps create, deploy --wait
// (exit 0 with the phases printed), a failing deploy (exit 3), listings.
func TestCLIDeployWait(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	if out, code := runCLI(t, b, "apps", "create", "hello"); code != 0 {
		t.Fatalf("apps create: %d\n%s", code, out)
	}
	if out, code := runCLI(t, b, "apps", "create", "Bad_Name"); code != 1 || !strings.Contains(out, "DNS label") {
		t.Fatalf("bad app name: %d\n%s", code, out)
	}
	out, code := runCLI(t, b, "deploy", "hello", appDir(t, "v1"), "--wait", "-m", "first", "--commit", "c0ffee")
	if code != 0 {
		t.Fatalf("deploy --wait: exit %d\n%s", code, out)
	}
	for _, want := range []string{"phase extracting", "phase health-checking", "phase switching", "deployment succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy --wait output lacks %q:\n%s", want, out)
		}
	}
	out, code = runCLI(t, b, "deploy", "hello", appDir(t, "v2", unhealthy, withManifest("[run]\ncommand = \""+helloBin+"\"\n[health]\npath = \"/healthz\"\nstart_timeout = \"1s\"\n")), "--wait")
	if code != 3 || !strings.Contains(out, "failed") {
		t.Fatalf("failing deploy --wait: exit %d, want 3\n%s", code, out)
	}
	out, code = runCLI(t, b, "deployments", "list", "hello")
	if code != 0 || !strings.Contains(out, "succeeded") || !strings.Contains(out, "c0ffee") || !strings.Contains(out, "first") {
		t.Fatalf("deployments list: %d\n%s", code, out)
	}
	out, code = runCLI(t, b, "apps", "list", "--json")
	if code != 0 || !strings.Contains(out, `"live_revision": "hello--000001"`) {
		t.Fatalf("apps list --json: %d\n%s", code, out)
	}
	out, code = runCLI(t, b, "deployments", "show", "nope")
	if code != 1 || !strings.Contains(out, "does not exist") {
		t.Fatalf("show unknown: %d\n%s", code, out)
	}
}

// TestBreakLockAndCancelFinished: breaking a lock fails its holder with
// "lock broken", is audited, and the app deploys again; cancelling a
// finished deployment is a 409 saying so.
func TestBreakLockAndCancelFinished(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "lk"); err != nil {
		t.Fatal(err)
	}
	g := newGate(t)
	held := deploy(t, c, "lk", appDir(t, "v1", buildWaitsFor(g)), api.DeployOptions{})
	waitPhase(t, c, held.ID, baton.PhaseBuilding)
	ls, err := c.Locks(ctx)
	if err != nil || len(ls) != 1 || ls[0].Holder != held.ID || ls[0].Key != "app:lk" {
		t.Fatalf("locks while running: %+v %v", ls, err)
	}
	out, code := runCLI(t, b, "locks", "break", "lk", "--reason", "operator test")
	if code != 0 || !strings.Contains(out, held.ID) {
		t.Fatalf("locks break: %d\n%s", code, out)
	}
	d, _ := c.Deployment(ctx, held.ID)
	if d.State != baton.StateFailed || !strings.HasPrefix(d.Error, baton.ReasonLockBroken) {
		t.Fatalf("holder after break: %s %q", d.State, d.Error)
	}
	if ls, _ := c.Locks(ctx); len(ls) != 0 {
		t.Fatalf("locks after break: %+v", ls)
	}
	if out, code := runCLI(t, b, "locks", "list"); code != 0 || strings.Contains(out, "app:lk") {
		t.Fatalf("locks list after break: %d\n%s", code, out)
	}
	after := mustSucceed(t, c, "lk", appDir(t, "v2"))
	_, err = c.Cancel(ctx, after.ID, "")
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "already finished") {
		t.Fatalf("cancel of a finished deployment: %v", err)
	}
	entries := auditEntries(t, b)
	if !strings.Contains(entries, "lock.break") || !strings.Contains(entries, "operator test") {
		t.Fatalf("audit log lacks the lock break:\n%s", entries)
	}
}

func auditEntries(t testing.TB, b *batonProc) string {
	t.Helper()
	es, err := b.client().Audit(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(es)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
