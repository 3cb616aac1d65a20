package baton_test

import (
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// TestEstimateWait: Retry-After comes from the running operation itself —
// its kind's recent runs, how long it has run, its phase deadlines — plus
// a typical run of each queued operation; settings changes that take no
// time do not make a build look short.
func TestEstimateWait(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ran := func(kind baton.Kind, secs int) baton.Deployment {
		start := now.Add(-time.Hour)
		end := start.Add(time.Duration(secs) * time.Second)
		return baton.Deployment{Kind: kind, State: baton.StateSucceeded, StartedAt: &start, FinishedAt: &end}
	}
	running := func(kind baton.Kind, phase baton.Phase, ranFor, inPhase time.Duration) *baton.Deployment {
		start, phaseStart := now.Add(-ranFor), now.Add(-inPhase)
		return &baton.Deployment{Kind: kind, State: baton.StateRunning, Phase: phase, StartedAt: &start, PhaseStartedAt: &phaseStart}
	}
	// Builds take 10 s here; settings changes take none.
	recent := []baton.Deployment{ran(baton.KindDeploy, 9), ran(baton.KindDeploy, 10), ran(baton.KindDeploy, 12),
		ran(baton.KindConfig, 0), ran(baton.KindConfig, 0), ran(baton.KindConfig, 0), ran(baton.KindConfig, 0)}
	limits := func(ph baton.Phase) (time.Duration, bool) {
		if ph == baton.PhaseDraining {
			return 5 * time.Second, true
		}
		return time.Minute, true
	}
	for _, tc := range []struct {
		name string
		f    baton.WaitFacts
		want time.Duration
	}{
		{"free", baton.WaitFacts{Now: now}, time.Second},
		{"a deploy 2 s into its 10 s", baton.WaitFacts{Holder: running(baton.KindDeploy, baton.PhaseBuilding, 2*time.Second, time.Second), Recent: recent, Now: now, Limit: limits}, 8 * time.Second},
		{"and two queued deploys", baton.WaitFacts{Holder: running(baton.KindDeploy, baton.PhaseBuilding, 2*time.Second, time.Second),
			Queued: []baton.Deployment{{Kind: baton.KindDeploy}, {Kind: baton.KindDeploy}}, Recent: recent, Now: now, Limit: limits}, 28 * time.Second},
		{"a deploy past its typical run", baton.WaitFacts{Holder: running(baton.KindDeploy, baton.PhaseBuilding, 30*time.Second, 20*time.Second), Recent: recent, Now: now, Limit: limits}, 3 * time.Second},
		{"capped by its phase deadlines", baton.WaitFacts{Holder: running(baton.KindDeploy, baton.PhaseDraining, time.Second, 4*time.Second), Recent: recent, Now: now, Limit: limits}, time.Second},
		{"no history: the kind's default", baton.WaitFacts{Holder: running(baton.KindSwap, baton.PhaseWarming, 5*time.Second, time.Second), Now: now}, 15 * time.Second},
		{"a queued holder", baton.WaitFacts{Holder: &baton.Deployment{Kind: baton.KindConfig, State: baton.StateQueued}, Recent: recent, Now: now}, time.Second},
	} {
		if got := baton.EstimateWait(tc.f); got != tc.want {
			t.Errorf("%s: EstimateWait = %s, want %s", tc.name, got, tc.want)
		}
	}
}
