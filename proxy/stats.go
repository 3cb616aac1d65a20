package proxy

import (
	"sync/atomic"
	"time"
)

// This file counts requests for the metrics. Each app slot and revision
// gets its counters when SetRoutes builds the table (route.stats for
// answers given before a revision was chosen, backend.stats after), so the
// request path only adds to atomics it already holds: no lock, no label
// lookup, no allocation. Counters outlive tables while their app, slot and
// revision stay routed; a scrape (RequestStats) reads them.

// Cause is why the proxy, not the app, answered a request with an error.
type Cause uint8

// The causes of failed requests. A request the app answered itself, with
// any status, has no cause.
const (
	CauseNone Cause = iota
	// CauseUpstreamRefused: the instance refused the connection (502).
	CauseUpstreamRefused
	// CauseUpstreamFailed: the instance failed otherwise before answering (502).
	CauseUpstreamFailed
	// CauseUpstreamTimeout: the instance did not answer in time (504).
	CauseUpstreamTimeout
	// CauseNoLiveRevision: nothing live can take the request (503).
	CauseNoLiveRevision
	// CauseUnknownRevision: the Baton-Revision header names a revision
	// that is not routed (404).
	CauseUnknownRevision
	// CauseClientGone: the client left before the answer (499 in logs).
	CauseClientGone
	// CauseMalformedRequest: the client's request could not be forwarded
	// (a 4xx, such as a malformed chunked body).
	CauseMalformedRequest

	// NumCauses bounds the causes, for arrays indexed by Cause.
	NumCauses
)

var causeNames = [NumCauses]string{"", "upstream_refused", "upstream_failed", "upstream_timeout",
	"no_live_revision", "unknown_revision", "client_gone", "malformed_request"}

// String is the cause's label value, e.g. "upstream_timeout".
func (c Cause) String() string {
	if c < NumCauses {
		return causeNames[c]
	}
	return "unknown"
}

// DurationBuckets are the upper bounds, in seconds, of the request
// duration histogram.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

const numBuckets = 15 // len(DurationBuckets)

// bucketBounds are DurationBuckets as durations, for the request path.
var bucketBounds = func() (b [numBuckets]time.Duration) {
	for i, s := range DurationBuckets {
		b[i] = time.Duration(s * float64(time.Second))
	}
	return b
}()

// reqStats counts the requests of one app slot and revision ("" for those
// answered before a revision was chosen).
type reqStats struct {
	app, slot, revision string
	// classes counts requests by status class, 1xx at 0 … 5xx at 4.
	classes [5]atomic.Uint64
	causes  [NumCauses]atomic.Uint64
	// buckets counts durations per bucket, not cumulated; the last is +Inf.
	buckets  [numBuckets + 1]atomic.Uint64
	sumNanos atomic.Uint64
	// upBuckets and upSumNanos are the same for the upstream's part: the
	// time to its response head (HTTP/1.1 data plane).
	upBuckets  [numBuckets + 1]atomic.Uint64
	upSumNanos atomic.Uint64
	bytesIn    atomic.Uint64
	bytesOut   atomic.Uint64
	// gen is the SetRoutes that last used the counters (guarded by p.mu).
	gen uint64
}

// observe counts one request that took d, up of it waiting for the
// upstream's response head (0: no upstream answered). status 0 counts
// nothing (no answer was due); status 499 is a client that left.
func (s *reqStats) observe(status int, cause Cause, d, up time.Duration, in, out int64) {
	if status < 100 || status > 599 {
		return
	}
	s.classes[status/100-1].Add(1)
	if cause != CauseNone {
		s.causes[cause].Add(1)
	}
	s.buckets[bucketOf(d)].Add(1)
	s.sumNanos.Add(uint64(max(d, 0)))
	if up > 0 {
		s.upBuckets[bucketOf(up)].Add(1)
		s.upSumNanos.Add(uint64(up))
	}
	if in > 0 {
		s.bytesIn.Add(uint64(in))
	}
	if out > 0 {
		s.bytesOut.Add(uint64(out))
	}
}

// bucketOf is the histogram bucket of d (numBuckets: +Inf).
func bucketOf(d time.Duration) int {
	i := 0
	for i < numBuckets && d > bucketBounds[i] {
		i++
	}
	return i
}

type statsKey struct{ app, slot, revision string }

// statsLocked returns the counters of app, slot and revision, creating
// them, and marks them live in the table being built. p.mu must be held.
func (p *Proxy) statsLocked(app, slot, revision string) *reqStats {
	k := statsKey{app, slot, revision}
	s := p.stats[k]
	if s == nil {
		s = &reqStats{app: app, slot: slot, revision: revision}
		p.stats[k] = s
	}
	s.gen = p.statsGen
	return s
}

// sweepStatsLocked drops the counters the table just built does not use:
// what is no longer routed leaves the metrics (a request still holding
// the old table adds to them unseen). p.mu must be held.
func (p *Proxy) sweepStatsLocked() {
	for k, s := range p.stats {
		if s.gen != p.statsGen {
			delete(p.stats, k)
		}
	}
}

// unrouted counts requests that reached no app.
type unrouted struct {
	unknownHost atomic.Uint64
	badRequest  atomic.Uint64
}

// RequestStats is a snapshot of the request counters of one app slot and
// revision. Revision is empty for requests answered before a revision was
// chosen (no live revision, an unknown pinned revision).
type RequestStats struct {
	App, Slot, Revision string
	// Requests counts answered requests by status class: 1xx at 0, 5xx at 4.
	Requests [5]uint64
	// Errors counts the requests the proxy answered with an error, by Cause.
	Errors [NumCauses]uint64
	// DurationCounts are cumulative counts per DurationBuckets bound;
	// DurationCount and DurationSum (seconds) cover every request.
	DurationCounts [numBuckets]uint64
	DurationCount  uint64
	DurationSum    float64
	// UpstreamCounts, UpstreamCount and UpstreamSum are the same for the
	// time from a request's arrival to its upstream's response head, on
	// the HTTP/1.1 data plane (Serve): the app's part of DurationSum.
	UpstreamCounts [numBuckets]uint64
	UpstreamCount  uint64
	UpstreamSum    float64
	// BodyBytesIn and BodyBytesOut are request and response body bytes
	// (chunked framing included on HTTP/1.1).
	BodyBytesIn, BodyBytesOut uint64
}

// Stats is a snapshot of the proxy-wide counters and gauges.
type Stats struct {
	// OpenConnections are client connections open now (HTTP/1.x, TLS, h2).
	OpenConnections int
	// OpenTunnels are upgraded connections (WebSockets) open now.
	OpenTunnels int
	// UnknownHost and BadRequest count requests that reached no app: for
	// a host no app serves, or refused before routing (malformed, too
	// large a head).
	UnknownHost, BadRequest uint64
	// UpstreamIdle are the keep-alive connections to instances idle in the
	// pools now; UpstreamInFlight the requests instances are serving now.
	UpstreamIdle, UpstreamInFlight int
}

// RequestStats returns the request counters of every routed app slot and
// revision. It is meant for scrapes: it allocates and takes the lock
// SetRoutes takes, never one the request path takes.
func (p *Proxy) RequestStats() []RequestStats {
	p.mu.Lock()
	all := make([]*reqStats, 0, len(p.stats))
	for _, s := range p.stats {
		all = append(all, s)
	}
	p.mu.Unlock()
	out := make([]RequestStats, len(all))
	for i, s := range all {
		r := &out[i]
		r.App, r.Slot, r.Revision = s.app, s.slot, s.revision
		for c := range r.Requests {
			r.Requests[c] = s.classes[c].Load()
		}
		for c := range r.Errors {
			r.Errors[c] = s.causes[c].Load()
		}
		var cum uint64
		for b := range numBuckets {
			cum += s.buckets[b].Load()
			r.DurationCounts[b] = cum
		}
		r.DurationCount = cum + s.buckets[numBuckets].Load()
		r.DurationSum = time.Duration(s.sumNanos.Load()).Seconds()
		cum = 0
		for b := range numBuckets {
			cum += s.upBuckets[b].Load()
			r.UpstreamCounts[b] = cum
		}
		r.UpstreamCount = cum + s.upBuckets[numBuckets].Load()
		r.UpstreamSum = time.Duration(s.upSumNanos.Load()).Seconds()
		r.BodyBytesIn, r.BodyBytesOut = s.bytesIn.Load(), s.bytesOut.Load()
	}
	return out
}

// Stats returns the proxy-wide counters and gauges, read now.
func (p *Proxy) Stats() Stats {
	st := Stats{UnknownHost: p.unrouted.unknownHost.Load(), BadRequest: p.unrouted.badRequest.Load()}
	s := &p.srv
	s.mu.Lock()
	st.OpenConnections = len(s.conns)
	h := s.h2
	s.mu.Unlock()
	if h != nil {
		st.OpenConnections += h.openConns()
	}
	p.mu.Lock()
	ups := make([]*upstream, 0, len(p.reg))
	for _, u := range p.reg {
		ups = append(ups, u)
	}
	p.mu.Unlock()
	for _, u := range ups {
		u.mu.Lock()
		st.OpenTunnels += len(u.tunnels)
		u.mu.Unlock()
		u.pool.mu.Lock()
		st.UpstreamIdle += len(u.pool.idle)
		u.pool.mu.Unlock()
		st.UpstreamInFlight += int(u.inflight.Load())
	}
	return st
}

// countUnrouted counts a request answered with status before it reached
// an app.
func (p *Proxy) countUnrouted(status int) {
	if status == 404 {
		p.unrouted.unknownHost.Add(1)
	} else if status != 0 {
		p.unrouted.badRequest.Add(1)
	}
}
