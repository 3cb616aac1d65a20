package e2e

import (
	"context"
	"strings"
	"testing"
)

// TestRequestMetricsOff: baton serve --request-metrics=false proxies as
// usual but /metrics has no request series, while the deployment metrics
// stay.
func TestRequestMetricsOff(t *testing.T) {
	t.Parallel()
	b := startBaton(t, "--request-metrics=false")
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "quiet"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "quiet", appDir(t, "v1"))
	p := newProxyClient(b.proxyAddr)
	for range 5 {
		if status, body, err := p.get("quiet.localhost", "/"); err != nil || status != 200 {
			t.Fatalf("GET: %d %s %v", status, body, err)
		}
	}
	fams := scrape(t, b)
	for name := range fams {
		if strings.HasPrefix(name, "baton_proxy_") {
			t.Errorf("/metrics has %s with request metrics off", name)
		}
	}
	if value(fams, "baton_deployments_total", map[string]string{"app": "quiet"}) < 1 {
		t.Errorf("/metrics lost the deployment counters: %v", fams["baton_deployments_total"])
	}
}
