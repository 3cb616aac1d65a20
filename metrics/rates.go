package metrics

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/proxy"
)

// Rates samples the proxy's request counters at an interval and answers,
// per revision, the request rate, error rate and p99 over a recent window
// (the dashboard's traffic panel). New builds it, Open starts sampling,
// Close stops and waits.
type Rates struct {
	src      RequestSource
	interval time.Duration
	keep     int

	mu      sync.Mutex
	samples []rateSample // oldest first

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
}

type rateSample struct {
	at    time.Time
	stats map[rateKey]proxy.RequestStats
}

type rateKey struct{ app, slot, revision string }

// NewRates samples src every interval, keeping span of samples.
func NewRates(src RequestSource, interval, span time.Duration) *Rates {
	r := &Rates{src: src, interval: interval, keep: int(span/interval) + 1}
	r.ctx, r.cancel = context.WithCancelCause(context.Background())
	return r
}

// Open takes a first sample and starts sampling.
func (r *Rates) Open() {
	r.sample(time.Now())
	r.wg.Go(func() {
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-r.ctx.Done():
				return
			case now := <-t.C:
				r.sample(now)
			}
		}
	})
}

// Close stops sampling and waits.
func (r *Rates) Close() error {
	r.cancel(errors.New("rates: closed"))
	r.wg.Wait()
	return nil
}

func (r *Rates) sample(now time.Time) {
	all := r.src.RequestStats()
	m := make(map[rateKey]proxy.RequestStats, len(all))
	for _, s := range all {
		m[rateKey{s.App, s.Slot, s.Revision}] = s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, rateSample{at: now, stats: m})
	if len(r.samples) > r.keep {
		r.samples = append(r.samples[:0], r.samples[len(r.samples)-r.keep:]...)
	}
}

// App returns the traffic of app's revisions over the last window (as
// far back as the samples go), live counters included: the newest
// figures are read now, not at the last sample.
func (r *Rates) App(app string, window time.Duration) []baton.RevisionTraffic {
	now := time.Now()
	r.mu.Lock()
	var base *rateSample
	for i := range r.samples {
		if now.Sub(r.samples[i].at) <= window+r.interval/2 {
			base = &r.samples[i]
			break
		}
	}
	if base == nil && len(r.samples) > 0 {
		base = &r.samples[len(r.samples)-1]
	}
	var from time.Time
	var then map[rateKey]proxy.RequestStats
	if base != nil {
		from, then = base.at, base.stats
	}
	r.mu.Unlock()
	secs := now.Sub(from).Seconds()
	var out []baton.RevisionTraffic
	for _, s := range r.src.RequestStats() {
		if s.App != app {
			continue
		}
		old := then[rateKey{s.App, s.Slot, s.Revision}]
		t := baton.RevisionTraffic{Slot: s.Slot, Revision: s.Revision, WindowSeconds: secs, P99Seconds: -1}
		var fivexx uint64
		for c := range s.Requests {
			t.Requests += s.Requests[c] - min(old.Requests[c], s.Requests[c])
		}
		fivexx = s.Requests[4] - min(old.Requests[4], s.Requests[4])
		if secs > 0 {
			t.RequestsPerSecond = float64(t.Requests) / secs
		}
		if t.Requests > 0 {
			t.ErrorRate = float64(fivexx) / float64(t.Requests)
		}
		if t.Requests == 0 && s.Revision == "" {
			continue // no answer before a revision was chosen: no row
		}
		t.P99Seconds = quantile(0.99, s, old)
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Slot != out[j].Slot {
			return out[i].Slot < out[j].Slot
		}
		return out[i].Revision < out[j].Revision
	})
	return out
}

// quantile estimates quantile q of the durations counted between old and
// s from the histogram's cumulative buckets, interpolating linearly
// within a bucket as Prometheus's histogram_quantile does; -1 without
// samples. Past the last finite bound it answers that bound.
func quantile(q float64, s, old proxy.RequestStats) float64 {
	total := s.DurationCount - min(old.DurationCount, s.DurationCount)
	if total == 0 {
		return -1
	}
	rank := q * float64(total)
	lower, prev := 0.0, uint64(0)
	for i, le := range proxy.DurationBuckets {
		cum := s.DurationCounts[i] - min(old.DurationCounts[i], s.DurationCounts[i])
		if float64(cum) >= rank {
			in := cum - prev
			if in == 0 {
				return le
			}
			return lower + (le-lower)*(rank-float64(prev))/float64(in)
		}
		lower, prev = le, cum
	}
	return proxy.DurationBuckets[len(proxy.DurationBuckets)-1]
}

// Series returns app's traffic per revision per sampling interval over
// the last window, oldest first, the live counters as the last point:
// the dashboard's charts.
func (r *Rates) Series(app string, window time.Duration) []baton.TrafficPoint {
	now := time.Now()
	live := make(map[rateKey]proxy.RequestStats)
	for _, s := range r.src.RequestStats() {
		if s.App == app {
			live[rateKey{s.App, s.Slot, s.Revision}] = s
		}
	}
	r.mu.Lock()
	var samples []rateSample
	for _, s := range r.samples {
		if now.Sub(s.at) <= window+r.interval/2 {
			samples = append(samples, s)
		}
	}
	r.mu.Unlock()
	samples = append(samples, rateSample{at: now, stats: live})
	var out []baton.TrafficPoint
	for i := 1; i < len(samples); i++ {
		prev, cur := samples[i-1], samples[i]
		secs := cur.at.Sub(prev.at).Seconds()
		if secs <= 0 {
			continue
		}
		keys := make([]rateKey, 0, len(cur.stats))
		for k := range cur.stats {
			if k.app == app && k.revision != "" {
				keys = append(keys, k)
			}
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].slot+"/"+keys[i].revision < keys[j].slot+"/"+keys[j].revision })
		for _, k := range keys {
			s, old := cur.stats[k], prev.stats[k]
			var n uint64
			for c := range s.Requests {
				n += s.Requests[c] - min(old.Requests[c], s.Requests[c])
			}
			p := baton.TrafficPoint{At: cur.at, Slot: k.slot, Revision: k.revision, RequestsPerSecond: float64(n) / secs, P99Seconds: quantile(0.99, s, old)}
			if n > 0 {
				p.ErrorRate = float64(s.Requests[4]-min(old.Requests[4], s.Requests[4])) / float64(n)
			}
			out = append(out, p)
		}
	}
	return out
}
