package metrics_test

import (
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/poll"
	"github.com/batonhq/baton/metrics"
	"github.com/batonhq/baton/proxy"
)

// TestRatesPerRevision: real requests through the proxy to two revisions,
// one of which answers 500, show as per-revision traffic: counts, rate,
// error rate and a p99 within the histogram's range; requests from before
// the window's first sample are not counted.
func TestRatesPerRevision(t *testing.T) {
	ok := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	bad := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	p := proxy.New(proxy.Config{})
	t.Cleanup(func() { p.Close() })
	p.SetRoutes([]proxy.Route{
		{Host: "web.localhost", App: "web", Slot: "production",
			Backends: []proxy.Backend{{Revision: "web--000001", Weight: 100, Addrs: []string{addrOf(ok)}}}},
		{Host: "web-staging.localhost", App: "web", Slot: "staging",
			Backends: []proxy.Backend{{Revision: "web--000002", Weight: 100, Addrs: []string{addrOf(bad)}}}},
	})
	base := startPlane(t, p, "Serve")
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(host string, n int) {
		t.Helper()
		for range n {
			req, _ := http.NewRequest("GET", base+"/", nil)
			req.Host = host
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	send("web.localhost", 3) // before the first sample: not in the window
	r := metrics.NewRates(p, time.Hour, 2*time.Hour)
	r.Open()
	t.Cleanup(func() { r.Close() })
	send("web.localhost", 10)
	send("web-staging.localhost", 4)
	// The proxy counts a request once its answer is written: the client
	// may read it first.
	var got map[string]float64
	poll.Until(t, 5*time.Second, "requests per revision 10 and 4", func() bool {
		ts := r.App("web", 5*time.Minute)
		got = map[string]float64{}
		for _, tr := range ts {
			got[tr.Revision] = float64(tr.Requests)
			if tr.Revision == "web--000002" && tr.Requests == 4 && tr.ErrorRate != 1 {
				t.Fatalf("staging error rate %v, want 1", tr.ErrorRate)
			}
			if tr.Revision == "web--000001" && tr.Requests == 10 {
				if tr.ErrorRate != 0 || tr.RequestsPerSecond <= 0 || tr.P99Seconds < 0 || tr.P99Seconds > 60 || tr.Slot != "production" {
					t.Fatalf("production traffic %+v", tr)
				}
			}
		}
		return got["web--000001"] == 10 && got["web--000002"] == 4
	})
	if other := r.App("other", time.Minute); len(other) != 0 {
		t.Fatalf("another app's traffic: %+v", other)
	}
}

// TestQuantileFromBuckets: the p99 falls in the bucket that holds the
// 99th percentile, interpolated within it.
func TestQuantileFromBuckets(t *testing.T) {
	var s proxy.RequestStats
	// 100 requests: 98 within 1 ms, 2 between 0.1 s and 0.25 s.
	for i := range s.DurationCounts {
		switch {
		case proxy.DurationBuckets[i] < 0.25:
			s.DurationCounts[i] = 98
		default:
			s.DurationCounts[i] = 100
		}
	}
	s.DurationCount = 100
	s.Requests[1] = 100
	p := metrics.Quantile(0.99, s, proxy.RequestStats{})
	if math.Abs(p-0.175) > 1e-9 { // halfway into (0.1, 0.25]
		t.Fatalf("p99 = %v, want 0.175", p)
	}
	if p := metrics.Quantile(0.99, s, s); p != -1 {
		t.Fatalf("p99 without requests in the window = %v, want -1", p)
	}
}
