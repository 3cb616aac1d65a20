package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// syncBuffer is a bytes.Buffer safe to read while a child writes it.
type syncBuffer struct {
	ch  chan struct{}
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.ch <- struct{}{}
	defer func() { <-s.ch }()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.ch <- struct{}{}
	defer func() { <-s.ch }()
	return s.buf.String()
}

// TestCLIDeployWaitCtrlC: Ctrl-C on `baton deploy --wait` left the
// deployment running with no word. The real binary, interrupted with
// SIGINT while the deployment holds in phase starting, says that it goes
// on on the server, its id and how to cancel it, exits 130, and the
// deployment does go on.
func TestCLIDeployWaitCtrlC(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "intr"); err != nil {
		t.Fatal(err)
	}
	gate := newGate(t) // closed: the instances wait before they listen
	cmd := exec.Command(batonBin, "deploy", "intr", appDir(t, "v1", withListenGate(string(gate))), "--wait")
	cmd.Env = append(os.Environ(), "BATON_URL=http://"+b.apiAddr, "BATON_TOKEN="+b.token)
	out := &syncBuffer{ch: make(chan struct{}, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "deploy --wait streams phase starting", func() bool { return strings.Contains(out.String(), "phase starting") })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("deploy --wait after Ctrl-C: %v, want exit 130\n%s", err, out)
	}
	ds, err := c.Deployments(ctx, "intr", 1)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deployments: %v %v", ds, err)
	}
	id := ds[0].ID
	for _, want := range []string{"deployment " + id + " goes on on the server (running, phase starting)", "baton logs -f " + id, "baton deployments cancel " + id} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
	gate.open(t)
	if d := waitFinal(t, c, id); d.State != baton.StateSucceeded {
		t.Fatalf("the interrupted deployment %s: %s %s", id, d.State, d.Error)
	}
}
