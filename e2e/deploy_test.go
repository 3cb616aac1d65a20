package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/batonhq/baton"
)

// TestDeployZeroDowntime is the first slice: deploy v1, then v2 under a
// continuous load through the proxy: every request succeeds and the load
// sees v1 then v2.
func TestDeployZeroDowntime(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	p := newProxyClient(b.proxyAddr)
	status, body, err := p.get("hello.localhost", "/")
	if err != nil || status != 503 || !strings.Contains(body, "no live revision") {
		t.Fatalf("before any deploy: %d %q %v, want a 503 saying there is no live revision", status, body, err)
	}
	d1 := mustSucceed(t, c, "hello", appDir(t, "v1", withBinary))
	if d1.Revision != "hello--000001" {
		t.Fatalf("first revision = %q", d1.Revision)
	}
	status, body, err = p.get("hello.localhost:80", "/")
	if err != nil || status != 200 || version(body) != "v1" {
		t.Fatalf("after v1: %d %q %v", status, body, err)
	}

	l := startLoad(t, p, "hello.localhost", 8)
	eventually(t, 10e9, "load sees v1", func() bool { return l.count("v1") > 50 })
	d2 := mustSucceed(t, c, "hello", appDir(t, "v2", withBinary))
	eventually(t, 10e9, "load sees v2", func() bool { return l.count("v2") > 50 })
	versions, failures := l.finish()
	if len(failures) > 0 {
		t.Fatalf("%d failed requests during the deploy, first: %s", len(failures), failures[0])
	}
	t.Logf("requests per version during the switch: %v", versions)
	if d2.Revision != "hello--000002" {
		t.Fatalf("second revision = %q", d2.Revision)
	}
	log, err := c.Log(ctx, d2.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, phase := range []string{"extracting", "starting", "health-checking", "switching", "draining", "deployment succeeded"} {
		if !strings.Contains(log, phase) {
			t.Errorf("log lacks %q:\n%s", phase, log)
		}
	}
	// The old revision's instances were stopped after the drain.
	if _, err := os.Stat(filepath.Join(b.data, "apps", "hello", "revisions", "hello--000002")); err != nil {
		t.Errorf("live revision folder missing: %v", err)
	}
	unknown, body, _ := p.get("nope.localhost", "/")
	if unknown != 404 || !strings.Contains(body, "nope.localhost") {
		t.Errorf("unknown host: %d %s", unknown, body)
	}
}

// TestRestartRestoresLive: SIGTERM baton, start it again: the live
// revision is back on the proxy; the history is intact.
func TestRestartRestoresLive(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
	d := mustSucceed(t, c, "hello", appDir(t, "v1"))
	b.restart(syscall.SIGTERM)
	p := newProxyClient(b.proxyAddr)
	eventually(t, 30e9, "v1 served again after restart", func() bool {
		status, body, err := p.get("hello.localhost", "/")
		return err == nil && status == 200 && version(body) == "v1"
	})
	got, err := b.client().Deployment(context.Background(), d.ID)
	if err != nil || got.State != baton.StateSucceeded {
		t.Fatalf("deployment after restart: %+v %v", got, err)
	}
	// A redeploy after the restart works and numbers on.
	d2 := mustSucceed(t, b.client(), "hello", appDir(t, "v2"))
	if d2.Revision != "hello--000002" {
		t.Fatalf("revision after restart = %s", d2.Revision)
	}
}
