package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/internal/invariants"
)

// gate is a file a test creates to let a waiting build or app continue.
type gate string

func newGate(t testing.TB) gate { return gate(filepath.Join(t.TempDir(), "gate")) }

func (g gate) open(t testing.TB) {
	if err := os.WriteFile(string(g), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildWaitsFor makes a deployment wait in phase building until g opens.
func buildWaitsFor(g gate) func(string) {
	return withBuild(fmt.Sprintf("while [ ! -e %s ]; do sleep 0.02; done", g))
}

// waitPhase polls a deployment until it reaches phase (or fails the test).
func waitPhase(t testing.TB, c *api.Client, id string, phase baton.Phase) baton.Deployment {
	t.Helper()
	var d baton.Deployment
	eventually(t, 60*time.Second, fmt.Sprintf("deployment %s in phase %s", id, phase), func() bool {
		var err error
		d, err = c.Deployment(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if d.State.Final() {
			t.Fatalf("deployment %s ended (%s: %s) before phase %s", id, d.State, d.Error, phase)
		}
		return d.Phase == phase
	})
	return d
}

// assertSerial fails t unless the deployments that ran never overlapped,
// in acceptance order with rising tokens (invariants.Serial).
func assertSerial(t testing.TB, ds []baton.Deployment) {
	t.Helper()
	if err := invariants.Serial(ds); err != nil {
		t.Fatal(err)
	}
}

// TestFailPolicy: while one deployment runs, on_conflict=fail answers 409
// naming the holder and its phase; the CLI prints it readably, exits 5.
func TestFailPolicy(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	g := newGate(t)
	holder := deploy(t, c, "f", appDir(t, "v1", buildWaitsFor(g)), api.DeployOptions{Author: "alice", Commit: "abc123", Message: "slow one"})
	waitPhase(t, c, holder.ID, baton.PhaseBuilding)

	_, err := deployErr(c, "f", appDir(t, "v2"), api.DeployOptions{Policy: baton.PolicyFail})
	var e *baton.Error
	if !errors.As(err, &e) || e.Code != baton.ECONFLICT {
		t.Fatalf("fail policy while busy: %v, want a conflict", err)
	}
	if e.Conflict == nil || e.Conflict.Holder == nil || e.Conflict.Holder.ID != holder.ID || e.Conflict.Holder.Phase != baton.PhaseBuilding {
		t.Fatalf("409 does not name the holder and its phase: %+v", e.Conflict)
	}
	if e.RetryAfterSeconds < 1 || !strings.Contains(e.Message, holder.ID) || !strings.Contains(e.Message, "alice") {
		t.Fatalf("409 message/Retry-After: %q, %d", e.Message, e.RetryAfterSeconds)
	}

	// The same through the CLI: a paragraph, exit code 5.
	cli := exec.Command(batonBin, "deploy", "f", appDir(t, "v3"), "--on-conflict", "fail", "--url", "http://"+b.apiAddr)
	out, err := cli.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Fatalf("CLI exit = %v, want 5; output:\n%s", err, out)
	}
	for _, want := range []string{holder.ID, "phase building", "alice", "abc123", "retry in"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("CLI output lacks %q:\n%s", want, out)
		}
	}
	g.open(t)
	if d := waitFinal(t, c, holder.ID); d.State != baton.StateSucceeded {
		t.Fatalf("holder: %s %s", d.State, d.Error)
	}
	if ds, _ := c.Deployments(ctx, "f", 10); len(ds) != 1 {
		t.Fatalf("refused requests were recorded: %d deployments", len(ds))
	}
}
