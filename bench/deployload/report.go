package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/batonhq/baton/bench/internal/harness"
)

// Buckets of requests, by when they were due.
const (
	steadyState = iota // no operation running
	busy               // an operation running, but no switch within the window
	nearSwitch         // within the window of a production switch
	numBuckets
)

// report is everything the run measured.
// slowRequest is one of the slowest successful requests, with what baton
// was doing when it was due.
type slowRequest struct {
	due     time.Time
	latency time.Duration
	// late is how long after it was due the request was sent: the
	// connection's previous request, or the load's own goroutine, held it.
	late   time.Duration
	offset time.Duration // from the nearest switch
	doing  string
}

type report struct {
	o        options
	started  time.Time
	duration time.Duration
	requests int
	newConns int64
	failures []failure
	// latency of successful requests, from when each was due, and the
	// failed ones, by bucket
	lat       [numBuckets][]time.Duration
	failed    [numBuckets]int
	switches  []switchEvent
	revisions int
	splits    map[opKind][]split
	slowest   []slowRequest
	// byPart is the latency of successful requests by what ran when they
	// were due (partAt).
	byPart  map[string][]time.Duration
	ops     map[opKind]int
	loadAvg string
}

func (r *runner) report(l *load, samples []sample) (*report, error) {
	rep := &report{o: r.o, requests: len(samples), newConns: l.newConns.Load(), splits: map[opKind][]split{}, ops: map[opKind]int{}, byPart: map[string][]time.Duration{}}
	rep.failures = append(rep.failures, l.failures...)
	// The production switches in order: the initial deployment, then
	// every deployment to production and every swap.
	if ev, ok := r.initial.switchOf(r.host); ok {
		rep.switches = append(rep.switches, ev)
	}
	for _, o := range r.ops {
		rep.ops[o.kind]++
		if ev, ok := o.switchOf(r.host); ok {
			rep.switches = append(rep.switches, ev)
		}
		s, err := splitOf(o)
		if err != nil {
			return nil, err
		}
		rep.splits[o.kind] = append(rep.splits[o.kind], s)
	}
	// Each answer must come from a revision that served production at
	// some moment while the request was in flight.
	live := liveSpans(rep.switches)
	idx := newSwitchIndex(rep.switches[1:]) // the initial deployment was before the load
	bucket := func(due time.Time) int {
		if idx.near(due, r.o.window) {
			return nearSwitch
		}
		for _, o := range r.ops {
			if !due.Before(o.t0) && !due.After(o.t2) {
				return busy
			}
		}
		return steadyState
	}
	rep.revisions = len(l.revNames)
	var good []slowRequest // every successful request
	var first, last time.Duration = 1<<63 - 1, 0
	for _, s := range samples {
		first, last = min(first, s.due), max(last, s.done)
		b := bucket(l.at(s.due))
		if s.rev < 0 {
			rep.failed[b]++
			continue
		}
		name := l.revNames[s.rev]
		if !servedLive(live[name], l.at(s.sent), l.at(s.done)) {
			reason := fmt.Sprintf("200 from %s, which never served production", name)
			if sps := live[name]; len(sps) > 0 {
				reason = fmt.Sprintf("200 from %s, which served production only from %s to %s", name,
					sps[0].from.Format("15:04:05.000"), sps[len(sps)-1].until.Format("15:04:05.000"))
			}
			rep.failures = append(rep.failures, failure{conn: -1, sent: l.at(s.sent), done: l.at(s.done), reason: reason})
			rep.failed[b]++
			continue
		}
		rep.lat[b] = append(rep.lat[b], s.done-s.due)
		_, part := r.partAt(l.at(s.due))
		rep.byPart[part] = append(rep.byPart[part], s.done-s.due)
		good = append(good, slowRequest{due: l.at(s.due), latency: s.done - s.due, late: s.sent - s.due})
	}
	// The slowest request of each of the 10 worst moments (operation and
	// part): a stall delays every request due during it.
	sort.Slice(good, func(i, j int) bool { return good[i].latency > good[j].latency })
	seen := map[string]bool{}
	for _, sr := range good {
		if len(rep.slowest) == 10 {
			break
		}
		if sr.doing = r.doingAt(sr.due); seen[sr.doing] {
			continue
		}
		seen[sr.doing] = true
		sr.offset = idx.nearest(sr.due)
		rep.slowest = append(rep.slowest, sr)
	}
	if last > first {
		rep.started, rep.duration = l.at(first), last-first
	}
	sort.Slice(rep.failures, func(i, j int) bool { return rep.failures[i].sent.Before(rep.failures[j].sent) })
	// Every failure, with where it fell relative to the switches.
	for _, f := range rep.failures {
		fmt.Fprintf(os.Stderr, "FAILED request (conn %d) sent %s, answered %s (%+dms from the nearest switch): %s\n",
			f.conn, f.sent.Format("15:04:05.000"), f.done.Format("15:04:05.000"), idx.nearest(f.sent).Milliseconds(), f.reason)
	}
	rep.loadAvg = harness.LoadAvg()
	return rep, nil
}

// doingAt says which operation and phase ran at t.
func (r *runner) doingAt(t time.Time) string {
	o, part := r.partAt(t)
	if o == nil {
		return part
	}
	return fmt.Sprintf("%s (%s): %s", o.kind, o.version, part)
}

// Parts of an operation besides its phases, for partAt.
const (
	partNone     = "no operation (steady state, gaps between operations)"
	partUpload   = "request → queued (upload)"
	partQueued   = "queued → first phase"
	partFinished = "finished → client told"
)

// partAt returns the operation running at t and its part then: a phase
// name or one of the part constants.
func (r *runner) partAt(t time.Time) (*op, string) {
	i := sort.Search(len(r.ops), func(i int) bool { return !r.ops[i].t2.Before(t) })
	if i == len(r.ops) || t.Before(r.ops[i].t0) {
		return nil, partNone
	}
	o := r.ops[i]
	part := partUpload
	if !t.Before(o.d.CreatedAt) {
		part = partQueued
	}
	for _, p := range o.phases {
		if !p.at.After(t) {
			part = p.phase
		}
	}
	if o.d.FinishedAt != nil && t.After(*o.d.FinishedAt) {
		part = partFinished
	}
	return o, part
}

func (rep *report) anyFailed() bool { return len(rep.failures) > 0 }

func (rep *report) markdown() string {
	var w strings.Builder
	o := rep.o
	fmt.Fprintf(&w, "# deployload: requests during %d deployments and %d swaps\n\n", o.deploys, o.swaps)
	fmt.Fprintf(&w, "`deployload -deploys %d -swaps %d -conns %d -rate %g -window %s -steady %s` (`make bench-deploy`) on %s: %d CPUs, %s, load average %s at the end (other work shares the machine). ",
		o.deploys, o.swaps, o.conns, o.rate, o.window, o.steady, rep.started.Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), rep.loadAvg)
	fmt.Fprintf(&w, "Load: %d keep-alive connections (Go net/http), %s, for %s; %d production switches under load (%d deployments and %d swaps, after the initial deployment), %d revisions answered.\n\n",
		o.conns, rateText(o.rate), rep.duration.Round(time.Millisecond), len(rep.switches)-1, o.deploys, o.swaps, rep.revisions)

	var all []time.Duration
	for _, l := range rep.lat {
		all = append(all, l...)
	}
	fmt.Fprintf(&w, "| requests | count | failed | p50 ms | p99 ms | p99.9 ms | max ms |\n|---|---|---|---|---|---|---|\n")
	row := func(name string, lat []time.Duration, failed int) {
		if len(lat) == 0 {
			fmt.Fprintf(&w, "| %s | %d | %d | – | – | – | – |\n", name, failed, failed)
			return
		}
		s := harness.Sorted(lat)
		fmt.Fprintf(&w, "| %s | %d | %d | %s | %s | %s | %s |\n", name, len(lat)+failed, failed,
			harness.Ms(harness.Percentile(s, 0.5)), harness.Ms(harness.Percentile(s, 0.99)), harness.Ms(harness.Percentile(s, 0.999)), harness.Ms(harness.Percentile(s, 1)))
	}
	row("steady state (no operation running)", rep.lat[steadyState], rep.failed[steadyState])
	row(fmt.Sprintf("operation running, over %s from a switch", o.window), rep.lat[busy], rep.failed[busy])
	row(fmt.Sprintf("within ±%s of a switch", o.window), rep.lat[nearSwitch], rep.failed[nearSwitch])
	row("**all**", all, len(rep.failures))
	fmt.Fprintf(&w, "\nFailed requests: **%d** of %d. Connections opened by the load: %d (%d means none was closed under it).\n\n",
		len(rep.failures), rep.requests, rep.newConns, o.conns)
	if len(rep.failures) > 0 {
		fmt.Fprintf(&w, "| sent | answered | reason |\n|---|---|---|\n")
		for _, f := range rep.failures {
			fmt.Fprintf(&w, "| %s | %s | %s |\n", f.sent.Format("15:04:05.000"), f.done.Format("15:04:05.000"), strings.ReplaceAll(f.reason, "|", "\\|"))
		}
		w.WriteString("\n")
	}

	fmt.Fprintf(&w, "By what ran when the request was due (any operation kind):\n\n")
	fmt.Fprintf(&w, "| running then | requests | p50 ms | p99 ms | p99.9 ms | max ms |\n|---|---|---|---|---|---|\n")
	for _, part := range []string{partNone, partUpload, partQueued, "extracting", "building", "releasing", "starting", "health-checking", "warming", "switching", "draining", partFinished} {
		lat := rep.byPart[part]
		if len(lat) == 0 {
			continue
		}
		s := harness.Sorted(lat)
		fmt.Fprintf(&w, "| %s | %d | %s | %s | %s | %s |\n", part, len(s),
			harness.Ms(harness.Percentile(s, 0.5)), harness.Ms(harness.Percentile(s, 0.99)), harness.Ms(harness.Percentile(s, 0.999)), harness.Ms(harness.Percentile(s, 1)))
	}
	w.WriteString("\n")

	fmt.Fprintf(&w, "Slowest requests, one per operation and part (latency from when due, and how much of it passed before the request was sent; offset of that moment from the nearest switch; what ran then):\n\n")
	fmt.Fprintf(&w, "| latency ms | sent late by ms | from switch ms | operation and phase |\n|---|---|---|---|\n")
	for _, sr := range rep.slowest {
		fmt.Fprintf(&w, "| %s | %s | %+d | %s |\n", harness.Ms(sr.latency), harness.Ms(sr.late), sr.offset.Milliseconds(), sr.doing)
	}
	w.WriteString("\n")

	fmt.Fprintf(&w, "## Operation time, split (ms: mean / p50 / p99)\n\n")
	kinds := []opKind{deployProduction, deployStaging, swapToProduction}
	fmt.Fprintf(&w, "| part |")
	for _, k := range kinds {
		if rep.ops[k] > 0 {
			fmt.Fprintf(&w, " %s (n=%d) |", k, rep.ops[k])
		}
	}
	w.WriteString("\n|---|")
	for _, k := range kinds {
		if rep.ops[k] > 0 {
			w.WriteString("---|")
		}
	}
	w.WriteString("\n")
	parts := []struct {
		name string
		get  func(split) time.Duration
	}{
		{"request → queued (upload stored, policy applied)", func(s split) time.Duration { return s.upload }},
		{"queued → first phase (worker, lease)", func(s split) time.Duration { return s.queue }},
		{"extracting", func(s split) time.Duration { return s.extract }},
		{"**app: building + releasing** (its build and release commands)", func(s split) time.Duration { return s.commands }},
		{"**app: starting + health-checking** (swap: + warming, both slots)", func(s split) time.Duration { return s.app }},
		{"switching", func(s split) time.Duration { return s.switching }},
		{"draining + stopping the old instances + final bookkeeping", func(s split) time.Duration { return s.drain }},
		{"other phases", func(s split) time.Duration { return s.other }},
		{"final state → client told (log stream)", func(s split) time.Duration { return s.notice }},
		{"**total** (request → client told)", func(s split) time.Duration { return s.total }},
		{"**baton's overhead** (total − the app's rows)", func(s split) time.Duration { return s.overhead }},
	}
	for _, p := range parts {
		fmt.Fprintf(&w, "| %s |", p.name)
		for _, k := range kinds {
			if rep.ops[k] == 0 {
				continue
			}
			var ds []time.Duration
			for _, s := range rep.splits[k] {
				ds = append(ds, p.get(s))
			}
			s := harness.Sorted(ds)
			fmt.Fprintf(&w, " %s / %s / %s |", harness.Ms(harness.Mean(ds)), harness.Ms(harness.Percentile(s, 0.5)), harness.Ms(harness.Percentile(s, 0.99)))
		}
		w.WriteString("\n")
	}
	w.WriteString(`
How this is computed:

- **Failed** requests: a transport error, a status other than 200, a body that
  is not the example app's JSON for this app's production slot, or an answer
  from a revision that was not live then: revision k counts as live from the
  start of the switching phase that routed production to it until the "now
  serves" log line of the next switch (log timestamps are truncated to the
  millisecond, so 1 ms is added to the latter). Each one is printed above.
- **Latency** is measured from when a request was due (the load is paced),
  so a stall also delays the requests queued behind it. A request is "within
  the window" when it was due within the window before or after a switch,
  whose time is its "now serves" log line; "operation running" when it was
  due while an operation ran (request sent until the client was told) but
  no switch was that close; steady state is the load before the first and
  after the last operation.
- **Split**: the phase timestamps come from each operation's log ("phase X"
  lines), finished_at from the deployment record, and the request and
  end-of-stream times from this program, on the same machine's clock. Each
  phase lasts until the next one starts; the last one until finished_at.
  The parts add up to the total. **App** time is the app's own commands
  (phases building and releasing: its [build] and [release] commands,
  which take what they take; building also holds the revision record and
  the move into place after the build, well under a millisecond) and its
  start (phases starting and health-checking, for a swap also warming,
  for both slots' new instances): from spawning the instances until every
  one passed its health check. The start includes baton's polling of the
  port and the health path (every 5 ms for a starting instance's first
  100 ms, then at doubling waits up to the manifest's interval), so it
  lasts up to a few ms longer than the app takes. **Baton's overhead** is
  everything else: the rows other than the two app rows.
`)
	return w.String()
}
