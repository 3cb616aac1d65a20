package coordinator

import (
	"context"
	"fmt"
	"sort"

	"github.com/batonhq/baton"
)

// switchRoutes is what one operation changes about what serves its app.
type switchRoutes struct {
	// slots is the new routing of the slots the operation changes; nil
	// when the routing stays as it is (a restart replaces a revision's
	// instances, not its routes).
	slots map[string][]baton.RevisionWeight
	// start is the started, healthy instances that serve from the switch
	// on. Each replaces what ran under its revision and slot. Until the
	// switch installs them they are the caller's to stop (see switchTo).
	start []*instances
	// notes are the log lines that say what serves now.
	notes []string
}

// switchTo is the one routine by which every operation changes what
// serves an app: a deployment or settings change going live, a swap,
// traffic, stabilize, activate, deactivate and restart. It reports
// whether it installed sw.start: if not, the caller stops them; if so,
// they belong to the running table, even when an error follows.
//
// The order of its steps is what makes a switch safe, and is the same for
// every operation:
//
//  1. beginSwitch: a cancel that came first wins; from here on cancels are
//     ignored and the phase is switching, so the rest always completes.
//  2. The new routing is recorded in the store under the app's lease
//     (SetRouting carries the fence) before anything serves by it. A
//     stale holder is refused here, having changed nothing. A controller
//     that dies after this point is found switched (baton.InterruptedOutcome)
//     and its successor restores exactly these routes; one that dies
//     before it leaves the previous routing recorded and serving.
//  3. The new instances are marked live (their health flips reach the
//     proxy from now on; the proxy keeps them by address, so none is lost
//     while the table is installed) and enter the running table, then the
//     routes change and the proxy table is published, in that order: the
//     table is built from routes and running instances together, so a
//     route never reaches the proxy without its instances. publishRoutes
//     returns once the table is installed.
//  4. With other hosts on the store, the switch waits (bounded) until
//     every live host acked the app's new routing generation (awaitAcks).
//  5. Only then do the instances that no longer serve drain and stop: no
//     new request can reach them any more, and the requests they have in
//     flight finish (bounded by the drain timeout).
func (p *pipeline) switchTo(sw switchRoutes) (installed bool, err error) {
	c := p.c
	ctx, err := p.beginSwitch()
	if err != nil {
		return false, err
	}
	c.setStandby(sw.start, true)
	if sw.slots != nil {
		if err := c.cfg.Store.SetRouting(ctx, p.fence, sw.slots); err != nil {
			c.setStandby(sw.start, false)
			return false, err
		}
	}
	for _, in := range sw.start {
		in.group.SetLive()
	}
	retired := c.install(p.d.App, sw.start, sw.slots)
	for _, note := range sw.notes {
		c.logf(p.d.ID, "%s", note)
	}
	if sw.slots != nil {
		c.awaitAcks(ctx, p.d.ID, p.d.App)
	}
	return true, p.drain(ctx, retired)
}

// route switches slots of the app to new routing among the instances that
// run already (traffic, stabilize, deactivate).
func (c *Coordinator) route(p *pipeline, slots map[string][]baton.RevisionWeight) error {
	_, err := p.switchTo(switchRoutes{slots: slots, notes: c.describeSlots(p.d.App, slots)})
	return err
}

// describeSlots is a log line per slot, by slot name, saying what serves it.
func (c *Coordinator) describeSlots(app string, slots map[string][]baton.RevisionWeight) []string {
	names := make([]string, 0, len(slots))
	for s := range slots {
		names = append(names, s)
	}
	sort.Strings(names)
	notes := make([]string, len(names))
	for i, s := range names {
		notes[i] = fmt.Sprintf("%s: %s", c.host(app, s), describeRouting(slots[s]))
	}
	return notes
}

// drain moves to phase draining for the instances that no longer serve,
// lets their in-flight requests finish, then stops them. They are drained
// and stopped even if the phase cannot be recorded (the error is
// returned): nothing routes to them any more, and nothing else would stop
// them.
func (p *pipeline) drain(ctx context.Context, retired []*instances) error {
	if len(retired) == 0 {
		return nil
	}
	err := p.enterUncancellable(ctx, baton.PhaseDraining)
	for _, in := range retired {
		p.c.logf(p.d.ID, "%s finishes its in-flight requests (up to %s)", in.rev.Name, p.c.cfg.DrainTimeout)
		p.c.retire(in, p.d.ID)
	}
	return err
}

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

// retire drains a revision that no longer serves, then stops it.
// depID, if set, is the operation whose log records it.
func (c *Coordinator) retire(old *instances, depID string) {
	c.setStandby([]*instances{old}, false) // before its drain: a table naming it again would undo that
	c.withdraw(old.rev.App, old.rev.Slot, old.rev.Name)
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
