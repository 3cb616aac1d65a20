package coordinator

import (
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// TestPhaseLimitUsesManifestTimeouts: status calls a build or release
// overdue by the running deployment's own manifest, the same deadline the
// pipeline enforces, not by the defaults.
func TestPhaseLimitUsesManifestTimeouts(t *testing.T) {
	c := New(Config{DataDir: t.TempDir(), ExtractTimeout: 2 * time.Minute, DrainTimeout: 7 * time.Second})
	m := baton.Manifest{Build: baton.BuildSpec{Timeout: 30 * time.Second}, Release: baton.ReleaseSpec{Timeout: 45 * time.Minute},
		Health: baton.HealthSpec{StartTimeout: 90 * time.Second}}
	r := &run{}
	r.setManifest(m)
	c.runs["d-1"] = r
	for _, tc := range []struct {
		id    string
		phase baton.Phase
		want  time.Duration
	}{
		{"d-1", baton.PhaseBuilding, 30 * time.Second},
		{"d-1", baton.PhaseReleasing, 45 * time.Minute},
		{"d-1", baton.PhaseStarting, 90 * time.Second},
		{"d-1", baton.PhaseHealthChecking, 90 * time.Second},
		{"d-1", baton.PhaseExtracting, 2 * time.Minute},
		{"d-1", baton.PhaseDraining, 7 * time.Second},
		{"d-1", baton.PhaseSwitching, 0},
		// Not run here and no files: the manifest defaults.
		{"d-2", baton.PhaseBuilding, baton.DefaultBuildTimeout},
		{"d-2", baton.PhaseReleasing, baton.DefaultReleaseTimeout},
	} {
		got := c.phaseLimit(baton.Deployment{ID: tc.id, App: "a", Phase: tc.phase})
		if want := tc.want + overdueMargin; got != want {
			t.Errorf("%s in %s: limit %s, want %s", tc.id, tc.phase, got, want)
		}
	}
	if got := c.phaseLimit(baton.Deployment{ID: "d-1", Phase: baton.PhaseAwaitingCompletion}); got != 0 {
		t.Errorf("awaiting-completion: limit %s, want none (the preview has its own)", got)
	}
}
