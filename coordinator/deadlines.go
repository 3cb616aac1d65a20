package coordinator

import (
	"time"

	"github.com/batonhq/baton"
)

// phaseDeadline is the one table of how long each phase may take: the
// pipeline cuts a phase off at it, and status calls an operation overdue a
// margin after it. m is the revision's manifest (nil: the manifest
// defaults). It reports false for a phase with no deadline of its own
// (awaiting-completion ends at the swap's preview timeout, see status).
func (c *Coordinator) phaseDeadline(ph baton.Phase, m *baton.Manifest) (time.Duration, bool) {
	if m == nil {
		m = new(baton.Manifest)
	}
	mf := m.WithDefaults()
	switch ph {
	case baton.PhaseExtracting:
		return c.cfg.ExtractTimeout, true
	case baton.PhaseBuilding:
		return mf.Build.Timeout, true
	case baton.PhaseWaitingForResource:
		return mf.Release.ResourceWait, true
	case baton.PhaseReleasing:
		return mf.Release.Timeout, true
	case baton.PhaseStarting, baton.PhaseHealthChecking:
		// One deadline covers both: start_timeout, from the start.
		return mf.Health.StartTimeout, true
	case baton.PhaseWarming:
		// Every warm-up path is tried up to retries times per instance.
		return time.Duration(mf.Warmup.Retries*len(mf.Warmup.Paths)*max(mf.Run.Instances, 1)) * mf.Warmup.Timeout, true
	case baton.PhaseSwitching:
		return 0, true // one store write and a table swap: no time at all
	case baton.PhaseDraining:
		return c.cfg.DrainTimeout, true
	}
	return 0, false
}

// overdueMargin is how long past its deadline a phase may run before
// status reports it: the cut-off itself and the clean-up take a moment.
const overdueMargin = time.Minute

// runManifest is the manifest whose timeouts bound the running operation
// d: the one its run here loaded, else that of its revision's folder if
// this controller has it, else nil (the defaults).
func (c *Coordinator) runManifest(d baton.Deployment) *baton.Manifest {
	c.mu.Lock()
	r := c.runs[d.ID]
	c.mu.Unlock()
	if r != nil {
		r.mu.Lock()
		m := r.manifest
		r.mu.Unlock()
		if m != nil {
			return m
		}
	}
	if d.Revision != "" {
		if m, err := loadManifest(c.revisionDir(d.App, d.Revision)); err == nil {
			return &m
		}
	}
	return nil
}
