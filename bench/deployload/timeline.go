package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// opKind is what one operation of the run does.
type opKind string

const (
	deployProduction opKind = "deploy to production"
	deployStaging    opKind = "deploy to staging"
	swapToProduction opKind = "swap staging → production"
)

// op is one operation the bench ran and what it learned about it.
type op struct {
	kind    opKind
	version string
	// t0: before the request; t2: the log stream reported the final
	// state. Clock of this program.
	t0, t2 time.Time
	d      baton.Deployment
	phases []phaseMark
	serves []servesMark
}

// phaseMark is a "phase X" line of a deployment log.
type phaseMark struct {
	phase string
	at    time.Time
}

// servesMark is one "R now serves HOST" statement of a deployment log.
type servesMark struct {
	rev, host string
	at        time.Time
}

const logTime = "2006-01-02T15:04:05.000Z07:00"

// parseLog reads the phase and "now serves" lines of a deployment log
// (each line: timestamp, space, text).
func parseLog(text string) (phases []phaseMark, serves []servesMark, err error) {
	for _, line := range strings.Split(text, "\n") {
		ts, msg, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		at, perr := time.Parse(logTime, ts)
		if perr != nil {
			continue // a continuation of a multi-line entry
		}
		if ph, ok := strings.CutPrefix(msg, "phase "); ok {
			phases = append(phases, phaseMark{phase: strings.TrimSpace(ph), at: at})
			continue
		}
		if !strings.Contains(msg, " now serves ") {
			continue
		}
		// Deploy: "R now serves HOST: ROUTING"; swap: "R1 now serves H1; R2 now serves H2".
		for _, part := range strings.Split(msg, "; ") {
			rev, rest, ok := strings.Cut(part, " now serves ")
			if !ok {
				continue
			}
			f := strings.Fields(rest)
			if len(f) == 0 {
				return nil, nil, fmt.Errorf("unexpected log line %q", line)
			}
			serves = append(serves, servesMark{rev: rev, host: strings.TrimSuffix(f[0], ":"), at: at})
		}
	}
	return phases, serves, nil
}

// switchEvent is a change of the revision serving the loaded host: it
// happened after lo (the switching phase began) and before hi (the "now
// serves" line, plus the log's millisecond truncation).
type switchEvent struct {
	rev    string
	lo, hi time.Time
}

// switchOf returns the switch of host an operation made, if it made one.
func (o *op) switchOf(host string) (switchEvent, bool) {
	for _, s := range o.serves {
		if s.host != host {
			continue
		}
		lo := s.at
		for _, p := range o.phases {
			if p.phase == string(baton.PhaseSwitching) && !p.at.After(s.at) {
				lo = p.at
			}
		}
		return switchEvent{rev: s.rev, lo: lo, hi: s.at.Add(time.Millisecond)}, true
	}
	return switchEvent{}, false
}

// span is a time in which a revision may serve the loaded host.
type span struct{ from, until time.Time }

// liveSpans returns, per revision, when it may have served the host:
// revision k from switch k (not before its switching phase began) until
// switch k+1 (at the latest when that one's "now serves" line was
// written); the last one until the end.
func liveSpans(switches []switchEvent) map[string][]span {
	live := map[string][]span{}
	for k, ev := range switches {
		until := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		if k+1 < len(switches) {
			until = switches[k+1].hi
		}
		live[ev.rev] = append(live[ev.rev], span{ev.lo, until})
	}
	return live
}

// servedLive reports whether a request in flight from sent to done may
// have been served by a revision live during spans.
func servedLive(spans []span, sent, done time.Time) bool {
	for _, sp := range spans {
		if !done.Before(sp.from) && !sent.After(sp.until) {
			return true
		}
	}
	return false
}

// split is an operation's time cut into parts that add up to its total.
type split struct {
	upload    time.Duration // request → recorded as queued (created_at): send, store the artifact, apply the policy
	queue     time.Duration // created_at → first phase: worker wake-up, lease, fencing token
	extract   time.Duration // phase extracting: unpack, manifest (without a build: also revision record, move into place)
	commands  time.Duration // phases building + releasing: the app's own build and release commands
	app       time.Duration // phases starting + health-checking (+ warming for swaps): the app's start
	switching time.Duration // phase switching: routing recorded and the proxy table replaced
	drain     time.Duration // phase draining until the final state is recorded: in-flight requests finish, old instances stop, bookkeeping
	other     time.Duration // any other phase (waiting for a resource, awaiting completion; none in this run)
	notice    time.Duration // final state recorded → the client's log stream reports it
	total     time.Duration // t0 → t2
	overhead  time.Duration // total − commands − app: baton's own share
}

// splitOf computes an operation's split from its phase timeline.
func splitOf(o *op) (split, error) {
	if len(o.phases) == 0 || o.d.FinishedAt == nil {
		return split{}, fmt.Errorf("%s (%s) has no phase timeline", o.d.ID, o.kind)
	}
	s := split{upload: o.d.CreatedAt.Sub(o.t0), queue: o.phases[0].at.Sub(o.d.CreatedAt), notice: o.t2.Sub(*o.d.FinishedAt), total: o.t2.Sub(o.t0)}
	for i, p := range o.phases {
		end := *o.d.FinishedAt
		if i+1 < len(o.phases) {
			end = o.phases[i+1].at
		}
		dur := end.Sub(p.at)
		switch baton.Phase(p.phase) {
		case baton.PhaseExtracting:
			s.extract += dur
		case baton.PhaseBuilding, baton.PhaseReleasing:
			// The app's own commands, however long they take: like its
			// start, not baton's work. (Building also holds the
			// revision record and the move into place after the
			// command, well under a millisecond.)
			s.commands += dur
		case baton.PhaseStarting, baton.PhaseHealthChecking, baton.PhaseWarming:
			s.app += dur
		case baton.PhaseSwitching:
			s.switching += dur
		case baton.PhaseDraining:
			s.drain += dur
		default:
			s.other += dur
		}
	}
	s.overhead = s.total - s.commands - s.app
	return s, nil
}

// switchIndex finds the switches near a time quickly.
type switchIndex []time.Time // sorted

func newSwitchIndex(evs []switchEvent) switchIndex {
	idx := make(switchIndex, 0, len(evs))
	for _, e := range evs {
		idx = append(idx, e.hi)
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i].Before(idx[j]) })
	return idx
}

// near reports whether t is within w of a switch.
func (idx switchIndex) near(t time.Time, w time.Duration) bool {
	i := sort.Search(len(idx), func(i int) bool { return !idx[i].Before(t) })
	if i < len(idx) && idx[i].Sub(t) <= w {
		return true
	}
	return i > 0 && t.Sub(idx[i-1]) <= w
}

// nearest is the signed offset of t from the closest switch.
func (idx switchIndex) nearest(t time.Time) time.Duration {
	best := time.Duration(1<<63 - 1)
	i := sort.Search(len(idx), func(i int) bool { return !idx[i].Before(t) })
	for _, j := range []int{i - 1, i} {
		if j >= 0 && j < len(idx) {
			if d := t.Sub(idx[j]); abs(d) < abs(best) {
				best = d
			}
		}
	}
	return best
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
