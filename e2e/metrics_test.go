package e2e

import (
	"context"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape parses baton's /metrics with the Prometheus text parser.
func scrape(t testing.TB, b *batonProc) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + b.apiAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// value returns the value of the series of family name whose labels
// include want, or 0.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		match := true
		for k, v := range want {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

// TestMetrics: /metrics parses and its counters move as deployments run.
func TestMetrics(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "m"); err != nil {
		t.Fatal(err)
	}
	before := scrape(t, b)
	ok := map[string]string{"app": "m", "kind": "deploy", "result": "succeeded"}
	if v := value(before, "baton_deployments_total", ok); v != 0 {
		t.Fatalf("deployments before any: %v", v)
	}
	mustSucceed(t, c, "m", appDir(t, "v1"))
	mustSucceed(t, c, "m", appDir(t, "v2"))
	after := scrape(t, b)
	if v := value(after, "baton_deployments_total", ok); v != 2 {
		t.Fatalf("baton_deployments_total{app=m,succeeded} = %v, want 2", v)
	}
	for _, phase := range []string{"extracting", "starting", "health-checking", "switching"} {
		if v := value(after, "baton_deployment_phase_duration_seconds", map[string]string{"phase": phase}); v < 2 {
			t.Errorf("phase %s observed %v times, want 2", phase, v)
		}
	}
	if v := value(after, "baton_revision_traffic_percent", map[string]string{"app": "m", "revision": "m--000002"}); v != 100 {
		t.Errorf("traffic gauge of m--000002 = %v", v)
	}
	if v := value(after, "baton_instance_healthy", map[string]string{"app": "m", "revision": "m--000002"}); v != 1 {
		t.Errorf("instance healthy gauge = %v", v)
	}
	if _, ok := after["baton_queue_length"]; !ok {
		t.Error("no baton_queue_length")
	}
}
