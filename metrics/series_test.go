package metrics

import (
	"testing"
	"time"

	"github.com/batonhq/baton/proxy"
)

// fakeSource is counters a test sets by hand.
type fakeSource struct{ stats []proxy.RequestStats }

func (f *fakeSource) RequestStats() []proxy.RequestStats { return f.stats }
func (f *fakeSource) Stats() proxy.Stats                 { return proxy.Stats{} }

// TestSeriesPerInterval: each sampling interval is a point per revision
// with that interval's rate and error share; another app's and an unchosen
// revision's counters are left out; the live counters are the last point.
func TestSeriesPerInterval(t *testing.T) {
	src := &fakeSource{}
	r := NewRates(src, 5*time.Second, time.Minute)
	set := func(ok, fail uint64) {
		src.stats = []proxy.RequestStats{
			{App: "web", Slot: "production", Revision: "web--000001", Requests: [5]uint64{0, ok, 0, 0, fail}, DurationCount: ok + fail},
			{App: "web", Slot: "production", Revision: "", Requests: [5]uint64{0, 0, 0, 0, 3}},
			{App: "other", Slot: "production", Revision: "other--000001", Requests: [5]uint64{0, 7}},
		}
	}
	now := time.Now()
	set(0, 0)
	r.sample(now.Add(-10 * time.Second))
	set(40, 10) // 50 requests in 5 s, a fifth failed
	r.sample(now.Add(-5 * time.Second))
	set(40, 10) // none in the next interval
	r.sample(now.Add(-10 * time.Millisecond))
	ps := r.Series("web", time.Minute)
	if len(ps) != 3 {
		t.Fatalf("series = %+v, want 3 points of web--000001", ps)
	}
	for _, p := range ps {
		if p.Revision != "web--000001" || p.Slot != "production" {
			t.Fatalf("a point of %s/%s", p.Slot, p.Revision)
		}
	}
	if p := ps[0]; p.RequestsPerSecond != 10 || p.ErrorRate != 0.2 {
		t.Fatalf("first interval %+v, want 10/s and 20%% errors", p)
	}
	if p := ps[1]; p.RequestsPerSecond != 0 || p.ErrorRate != 0 || p.P99Seconds != -1 {
		t.Fatalf("quiet interval %+v", p)
	}
	if !ps[0].At.Before(ps[1].At) || !ps[1].At.Before(ps[2].At) {
		t.Fatalf("points out of order: %v %v %v", ps[0].At, ps[1].At, ps[2].At)
	}
	if got := r.Series("web", 6*time.Second); len(got) != 2 {
		t.Fatalf("a 6 s window has %d points, want 2 (the last sample and now)", len(got))
	}
}
