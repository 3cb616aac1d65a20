package proxy

import (
	"testing"
	"time"
)

// TestRequestMetricsOff: with NoRequestMetrics the data plane counts no
// request, while the same requests are counted with it on.
func TestRequestMetricsOff(t *testing.T) {
	for _, off := range []bool{false, true} {
		up := startRawUpstream(t, 29)
		p := newTestProxy(t, Config{NoRequestMetrics: off})
		p.SetRoutes([]Route{route1("a.localhost", "a", "a--000001", up)})
		c := newRawClient(t, startServe(t, p), "a.localhost")
		for range 10 {
			if err := c.get(); err != nil {
				t.Fatal(err)
			}
		}
		c.close()
		// A connection serves its next request only once the last one is
		// counted: the first 9 are, whatever the 10th does.
		var twoxx, durations uint64
		for _, s := range p.RequestStats() {
			twoxx, durations = twoxx+s.Requests[1], durations+s.DurationCount
		}
		if off && (twoxx != 0 || durations != 0) {
			t.Errorf("metrics off: counted %d 2xx, %d durations", twoxx, durations)
		}
		if !off && (twoxx < 9 || durations < 9) {
			t.Errorf("metrics on: counted %d 2xx, %d durations; want at least 9 each", twoxx, durations)
		}
	}
}

// BenchmarkObserve is what request metrics add to a request: counting it
// (class, bucket, sum, bytes, upstream bucket) on counters shared by
// every connection, as under load.
func BenchmarkObserve(b *testing.B) {
	s := &reqStats{}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.observe(200, CauseNone, 3*time.Millisecond, 2*time.Millisecond, 0, 29)
		}
	})
}
