package e2e

import (
	"context"
	"fmt"
	"testing"
)

// TestBackToBackDeploysUnderLoad: deployments one after the other while 16,
// then 64 keep-alive connections load the app through the proxy: not one
// request fails, and every version in turn serves.
func TestBackToBackDeploysUnderLoad(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "btb"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "btb", appDir(t, "v0"))
	p := newProxyClient(b.proxyAddr)
	version := 0
	for _, conns := range []int{16, 64} {
		l := startLoad(t, p, "btb.localhost", conns)
		for i := 0; i < 3; i++ {
			version++
			v := fmt.Sprintf("v%d", version)
			mustSucceed(t, c, "btb", appDir(t, v))
			eventually(t, 10e9, "the load sees "+v, func() bool { return l.count(v) > 20 })
		}
		versions, failures := l.finish()
		if len(failures) > 0 {
			t.Fatalf("%d connections: %d failed requests across 3 back-to-back deployments, first: %s", conns, len(failures), failures[0])
		}
		t.Logf("%d connections: requests per version %v, none failed", conns, versions)
	}
}
