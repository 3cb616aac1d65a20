package coordinator

import (
	"context"
	"sort"

	"github.com/batonhq/baton"
)

// beginSwitch starts the part of an operation that always completes: from
// here a cancel no longer applies (unless it came first) and the phase is
// switching. It returns the context for the rest, which ignores cancels.
func (p *pipeline) beginSwitch() (context.Context, error) {
	p.r.mu.Lock()
	if err := p.r.ctx.Err(); err != nil {
		p.r.mu.Unlock()
		return nil, err
	}
	p.r.switching = true
	p.r.mu.Unlock()
	ctx := context.WithoutCancel(p.r.ctx)
	return ctx, p.enterUncancellable(ctx, baton.PhaseSwitching)
}

// enterUncancellable records a phase of the part that always completes.
func (p *pipeline) enterUncancellable(ctx context.Context, ph baton.Phase) error {
	p.observePhase()
	p.d.Phase = ph
	if err := p.c.cfg.Store.UpdateRunning(ctx, p.fence, p.d.ID, ph, p.rev); err != nil {
		return err
	}
	p.c.logf(p.d.ID, "phase %s", ph)
	return nil
}

// drain moves to phase draining for the revisions that lost their routes,
// lets their in-flight requests finish, then stops them.
func (p *pipeline) drain(ctx context.Context, retired []*instances) error {
	if len(retired) == 0 {
		return nil
	}
	if err := p.enterUncancellable(ctx, baton.PhaseDraining); err != nil {
		return err
	}
	for _, in := range retired {
		p.c.logf(p.d.ID, "%s finishes its in-flight requests (up to %s)", in.rev.Name, p.c.cfg.DrainTimeout)
		p.c.retire(in, p.d.ID)
	}
	return nil
}

// retire drains a revision that no longer serves, then stops it.
// depID, if set, is the operation whose log records it.
func (c *Coordinator) retire(old *instances, depID string) {
	note := func(format string, args ...any) {
		if depID != "" {
			c.logf(depID, format, args...)
		}
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), c.cfg.DrainTimeout)
	if err := c.cfg.Proxy.Drain(dctx, old.group.Addrs()); err != nil {
		note("drain of %s ended by its timeout: %v", old.rev.Name, err)
	}
	cancel()
	if err := old.stop(); err != nil {
		c.log.Warn("stop old revision", "revision", old.rev.Name, "err", err)
	}
	note("stopped %s", old.rev.Name)
}

// route records and installs a slot's new routing, then drains and stops
// what lost its route. Cancels are ignored from here on.
func (c *Coordinator) route(p *pipeline, slots map[string][]baton.RevisionWeight) error {
	ctx, err := p.beginSwitch()
	if err != nil {
		return err
	}
	if err := c.cfg.Store.SetRouting(ctx, p.fence, slots); err != nil {
		return err
	}
	retired := c.applyRouting(p.d.App, slots)
	names := make([]string, 0, len(slots))
	for s := range slots {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		c.logf(p.d.ID, "%s: %s", c.host(p.d.App, s), describeRouting(slots[s]))
	}
	return p.drain(ctx, retired)
}
