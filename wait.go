package baton

import (
	"slices"
	"time"
)

// WaitFacts is what EstimateWait decides from: the operation that holds an
// app, those queued behind it, and the app's recent history.
type WaitFacts struct {
	// Holder is the running operation (or, with none running, the oldest
	// queued one); nil when the app is free.
	Holder *Deployment
	// Queued are the operations that run after Holder and before the
	// request, oldest first.
	Queued []Deployment
	// Recent is the app's recent operations, any kind and state; only the
	// succeeded ones count.
	Recent []Deployment
	Now    time.Time
	// Limit is the phase-deadline table for Holder's run (how long a phase
	// may take); nil: no cap.
	Limit func(Phase) (time.Duration, bool)
}

// pipelinePhases is the order a deployment's phases run in.
var pipelinePhases = []Phase{PhaseExtracting, PhaseBuilding, PhaseWaitingForResource, PhaseReleasing,
	PhaseStarting, PhaseHealthChecking, PhaseWarming, PhaseSwitching, PhaseDraining}

// EstimateWait is how long until the app can take a new operation, for
// Retry-After: what the holder has left, plus a typical run of each queued
// operation. An operation's typical run is the median of the app's recent
// successful ones of the same kind (a settings change does not stand for a
// build), else a default by kind. What the holder has left is its typical
// run less the time it has run, never less than a quarter of a typical run
// (it already ran long: it may run longer), and never more than its phase
// deadlines allow: the rest of its current phase and every phase after it.
// The answer is at least a second.
func EstimateWait(f WaitFacts) time.Duration {
	if f.Holder == nil {
		return time.Second
	}
	h := f.Holder
	typ := typicalRun(h.Kind, f.Recent)
	left := max(typ-h.Duration(f.Now), typ/4)
	if limit, ok := phaseBudget(h, f.Now, f.Limit); ok {
		left = min(left, limit)
	}
	for _, q := range f.Queued {
		left += typicalRun(q.Kind, f.Recent)
	}
	return max(left.Round(time.Second), time.Second)
}

// typicalRun is the median duration of recent succeeded operations of
// kind, or a default for the kind when there are none.
func typicalRun(kind Kind, recent []Deployment) time.Duration {
	if kind == "" {
		kind = KindDeploy
	}
	var ds []time.Duration
	for _, d := range recent {
		if (d.Kind == kind || (kind == KindDeploy && d.Kind == "")) && d.State == StateSucceeded && d.StartedAt != nil && d.FinishedAt != nil {
			ds = append(ds, d.FinishedAt.Sub(*d.StartedAt))
		}
	}
	if len(ds) == 0 {
		switch kind {
		case KindDeploy, KindConfig:
			return 30 * time.Second
		case KindSwap, KindRollback:
			return 20 * time.Second
		}
		return 5 * time.Second
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// phaseBudget is the most the running holder may still take by its phase
// deadlines; false when it cannot be told (not running, a phase outside
// the pipeline, no table).
func phaseBudget(h *Deployment, now time.Time, limit func(Phase) (time.Duration, bool)) (time.Duration, bool) {
	if limit == nil || h.State != StateRunning {
		return 0, false
	}
	i := slices.Index(pipelinePhases, h.Phase)
	if i < 0 {
		return 0, false
	}
	var budget time.Duration
	for _, ph := range pipelinePhases[i:] {
		d, ok := limit(ph)
		if !ok {
			return 0, false
		}
		budget += d
	}
	if h.PhaseStartedAt != nil {
		budget -= now.Sub(*h.PhaseStartedAt)
	}
	return max(budget, 0), true
}
