package coordinator

import (
	"context"
	"os"

	"github.com/batonhq/baton"
)

// activate starts an inactive revision in the slot and routes it with
// weight 0, so traffic can be moved to it.
func (c *Coordinator) activate(ctx context.Context, p *pipeline, name string) error {
	r, err := c.cfg.Store.Revision(ctx, name)
	if err != nil || r.App != p.d.App {
		return baton.Errorf(baton.ENOTFOUND, "revision %s of app %s does not exist", name, p.d.App)
	}
	if r.Active {
		return baton.Errorf(baton.ECONFLICT, "revision %s is already active in slot %s", name, r.Slot)
	}
	if _, err := os.Stat(c.revisionDir(r.App, r.Name)); err != nil && (r.ArtifactDigest == "" || c.localArtifact(ctx, r.ArtifactDigest) != nil) {
		// A folder alone is unpacked again (revisionFiles); not without
		// its artifact.
		return baton.Errorf(baton.ECONFLICT, "the files and the artifact of revision %s were removed (baton serve --retain-revisions and --disk-budget say what is kept); deploy its code again", name)
	}
	r.Slot = p.d.Slot
	if err := p.enter(baton.PhaseStarting); err != nil {
		return err
	}
	in, err := c.startRevision(ctx, revisionStart{rev: r, dep: p.d.ID})
	if err != nil {
		return err
	}
	in.log.Detach()
	slots := map[string][]baton.RevisionWeight{p.d.Slot: append(c.slotRouting(p.d.App, p.d.Slot), baton.RevisionWeight{Revision: name, Weight: 0})}
	installed, err := p.switchTo(switchRoutes{slots: slots, start: []*instances{in}, notes: c.describeSlots(p.d.App, slots)})
	if !installed {
		_ = in.stop()
	}
	return err
}

// deactivate removes a revision without traffic from the slot's routing;
// its instances drain and stop.
func (c *Coordinator) deactivate(ctx context.Context, p *pipeline, name string) error {
	cur := c.slotRouting(p.d.App, p.d.Slot)
	var next []baton.RevisionWeight
	found := false
	for _, rw := range cur {
		if rw.Revision == name {
			found = true
			if rw.Weight > 0 {
				return baton.Errorf(baton.ECONFLICT, "revision %s still has %d%% of the traffic; move it first (`baton traffic set %s …`) or use `baton stabilize %s`", name, rw.Weight, p.d.App, p.d.App)
			}
			continue
		}
		next = append(next, rw)
	}
	if !found {
		return baton.Errorf(baton.ECONFLICT, "revision %s is not active in slot %s", name, p.d.Slot)
	}
	return c.route(p, map[string][]baton.RevisionWeight{p.d.Slot: next})
}

// restartRevision starts fresh instances of an active revision, moves its
// routes to them, and drains the old ones.
func (c *Coordinator) restartRevision(ctx context.Context, p *pipeline, name string) error {
	old := c.runningOf(name, p.d.Slot)
	var rev baton.Revision
	switch {
	case old != nil && old.rev.App == p.d.App:
		rev = old.rev
	case contains(c.slotRouting(p.d.App, p.d.Slot), name):
		// Routed but not running: its start after a restart failed.
		r, err := c.cfg.Store.Revision(ctx, name)
		if err != nil {
			return err
		}
		rev = r
	default:
		return baton.Errorf(baton.ECONFLICT, "revision %s is not running; activate it instead", name)
	}
	if err := p.enter(baton.PhaseStarting); err != nil {
		return err
	}
	in, err := c.startRevision(ctx, revisionStart{rev: rev, dep: p.d.ID})
	if err != nil {
		return err
	}
	in.log.Detach()
	// The routing stays as it is: the new instances replace the old ones
	// under the revision's name, and the old ones drain.
	installed, err := p.switchTo(switchRoutes{start: []*instances{in}})
	if !installed {
		_ = in.stop()
	}
	return err
}

// InstanceHealth reports how many instances of a revision run and how many
// pass their health check (0, 0 when it is not running).
func (c *Coordinator) InstanceHealth(rev string) (healthy, total int) {
	c.mu.Lock()
	var groups []*instances
	for k, in := range c.running {
		if k.rev == rev {
			groups = append(groups, in)
		}
	}
	c.mu.Unlock()
	for _, in := range groups {
		for _, st := range in.group.Status() {
			total++
			if st.Healthy {
				healthy++
			}
		}
	}
	return healthy, total
}

// RevisionLog returns the last max bytes of a revision's instance output.
func (c *Coordinator) RevisionLog(app, rev string, max int64) ([]byte, error) {
	f, err := os.Open(c.instanceLogPath(app, rev))
	if err != nil {
		return nil, baton.Errorf(baton.ENOTFOUND, "revision %s of %s has no instance output", rev, app)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	_, err = f.ReadAt(buf, off)
	return buf, err
}
