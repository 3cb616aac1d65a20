package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestReliabilityRestartUnderLoad measures the requests that fail through
// the proxy while `baton serve` restarts after SIGTERM under a constant
// load (4 clients, one request every 5 ms each). The proxy listener is
// closed and opened again, so some failures are expected today: the count
// is recorded in the summary, not asserted.
func TestReliabilityRestartUnderLoad(t *testing.T) {
	t.Parallel()
	counts := scenarioCounts(t)
	b := startRelBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "rs"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "rs", appDir(t, "v1"))
	load := startRelLoad(t, b.proxyAddr, []string{"rs.localhost"}, 4, 5*time.Millisecond)
	eventually(t, 30*time.Second, "100 requests answered before the restart", func() bool { return load.ok.Load() >= 100 })
	before := load.ok.Load()
	start := time.Now()
	b.restart(syscall.SIGTERM)
	restarted := time.Since(start)
	eventually(t, 60*time.Second, "100 requests answered after the restart", func() bool { return load.ok.Load() >= before+100 })
	requests, failed := load.report(t, counts)
	window := load.failureWindow()
	counts.add(func(c *relCounts) { c.Runs++ })
	counts.note("failed requests across a SIGTERM restart", int(failed))
	counts.note("milliseconds from first to last failed request", int(window.Milliseconds()))
	t.Logf("SIGTERM restart of baton under load: %d of %d requests failed over %s (baton was back after %s)",
		failed, requests, window.Round(time.Millisecond), restarted.Round(time.Millisecond))
	checkInvariants(t, b, counts, "rs")
	ds, _ := c.Deployments(ctx, "rs", 1000)
	counts.deployments(ds)
}
