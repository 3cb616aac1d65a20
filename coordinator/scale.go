package coordinator

import (
	"context"
	"fmt"

	"github.com/batonhq/baton"
)

// scale runs a KindScale operation: it records the slot's new scale (a
// rebalance keeps it) and starts each revision serving the slot again,
// placed by that scale over the live hosts. Each host's new share passes
// its health check before it takes traffic (startRevision), then it
// replaces the old one, which drains; a host that loses its share serves
// until every host stopped routing to it.
func (c *Coordinator) scale(ctx context.Context, p *pipeline, sp baton.ScaleParams) error {
	app, slot := p.d.App, p.d.Slot
	if sp.Rebalance {
		c.logf(p.d.ID, "placing the instances of %s again: %s", c.host(app, slot), sp.Reason)
	} else {
		s := baton.Scale{App: app, Slot: slot, Instances: sp.Instances, MaxPerHost: sp.MaxPerHost}
		if err := s.Validate(); err != nil {
			return err
		}
		if s.Instances < 1 {
			return baton.Errorf(baton.EINVALID, "a scale needs at least 1 instance, got %d", s.Instances)
		}
		if err := c.cfg.Store.SetScale(ctx, p.fence, s); err != nil {
			return err
		}
		c.logf(p.d.ID, "scale of %s: %s", c.host(app, slot), describeScale(s))
	}
	var revs []baton.Revision
	for _, rw := range c.slotRouting(app, slot) {
		if in := c.runningOf(rw.Revision, slot); in != nil {
			revs = append(revs, in.rev)
		}
	}
	if len(revs) == 0 {
		c.logf(p.d.ID, "nothing runs in %s: the next deployment starts that many", c.host(app, slot))
		return nil
	}
	if err := p.enter(baton.PhaseStarting); err != nil {
		return err
	}
	// fresh are the groups started now; kept ones serve on, whatever
	// happens to the scale.
	var started, fresh []*instances
	stopFresh := func() {
		for _, in := range fresh {
			_ = in.stop()
		}
	}
	for _, rev := range revs {
		running := c.runningOf(rev.Name, slot)
		in, err := c.startRevision(ctx, revisionStart{rev: rev, dep: p.d.ID, keep: running})
		if err != nil {
			stopFresh()
			return err
		}
		started = append(started, in)
		if in == running {
			c.logf(p.d.ID, "%s keeps its %d instance(s) here", rev.Name, len(in.group.Addrs()))
			continue
		}
		fresh = append(fresh, in)
		in.log.Detach()
		c.logf(p.d.ID, "%s runs %d instance(s) here", rev.Name, len(in.group.Addrs()))
	}
	// The routing stays as it is: the new instances replace the old ones
	// under their revisions' names, and the old ones drain.
	installed, err := p.switchTo(switchRoutes{start: started})
	if !installed {
		stopFresh()
	}
	return err
}

func describeScale(s baton.Scale) string {
	out := fmt.Sprintf("%d instance(s) per revision", s.Instances)
	if s.MaxPerHost > 0 {
		out += fmt.Sprintf(", at most %d per host", s.MaxPerHost)
	}
	return out
}

// takeOver makes this host run app, which its previous owner handed to
// it (that host was asked to drain): the app's worker restores its
// revisions, making the shares this host runs of them its own.
func (c *Coordinator) takeOver(app string) {
	if !c.claim(app) {
		return
	}
	c.log.Info("took over an app handed to this host", "app", app)
	c.startWorker(app, true)
}

// handOver, while an operator asks this host to drain, hands each app it
// owns and is not working on to the live host that owns the fewest: its
// instances here become this host's shares of it (they serve on), and the
// new owner places them elsewhere (restore, then a rebalance).
func (c *Coordinator) handOver(ctx context.Context, ctrls []baton.Controller) {
	me := c.cfg.ControllerID
	var target string
	draining := false
	for _, ct := range ctrls {
		if ct.ID == me {
			draining = ct.DrainRequested
		}
	}
	if !draining {
		return
	}
	apps, err := c.cfg.Store.Apps(ctx)
	if err != nil {
		return
	}
	owned := map[string]int{}
	for _, a := range apps {
		owned[a.Controller]++
	}
	for _, ct := range ctrls {
		if ct.ID == me || ct.Peer == "" || ct.DrainRequested || c.hostState(ct) != baton.HostLive {
			continue
		}
		if target == "" || owned[ct.ID] < owned[target] {
			target = ct.ID
		}
	}
	if target == "" {
		return // nowhere to go: the apps stay (status shows the host draining)
	}
	for _, a := range apps {
		if a.Controller != me {
			continue
		}
		if err := c.keepShares(ctx, a.Name); err != nil {
			c.log.Warn("hand over an app: record its shares", "app", a.Name, "err", err)
			continue
		}
		c.mu.Lock()
		if c.workers[a.Name] != nil || !c.apps[a.Name] {
			c.mu.Unlock()
			continue // busy: handed over at a later tick
		}
		delete(c.apps, a.Name)
		c.demoteRunningLocked(a.Name)
		c.mu.Unlock()
		if err := c.cfg.Store.AssignApp(ctx, a.Name, me, target); err != nil {
			c.log.Warn("hand over an app", "app", a.Name, "to", target, "err", err)
			c.promotePlaced(a.Name)
			c.mu.Lock()
			c.apps[a.Name] = true
			c.mu.Unlock()
			continue
		}
		c.log.Info("handed an app over: this host is draining", "app", a.Name, "to", target)
	}
	// Route the handed apps as another host's at once, from the store
	// (refreshRemote publishes the table): published before that, the
	// table would have no route for them until this host's next refresh,
	// and every request for them would be answered 404 meanwhile.
	c.refreshRemote(ctx)
	c.publishRoutes()
}

// keepShares records, for each revision app runs here without a share in
// the store (deployed before its hosts spread it), this host's share, so
// it keeps serving once another host owns the app.
func (c *Coordinator) keepShares(ctx context.Context, app string) error {
	me := c.cfg.ControllerID
	c.mu.Lock()
	var mine []*instances
	for _, in := range c.running {
		if in.rev.App == app {
			mine = append(mine, in)
		}
	}
	c.mu.Unlock()
	for _, in := range mine {
		rows, err := c.cfg.Store.Placements(ctx, baton.PlacementFilter{App: app, Slot: in.rev.Slot, Revision: in.rev.Name})
		if err != nil {
			return err
		}
		found := false
		for _, p := range rows {
			found = found || p.Host == me
		}
		if found {
			continue
		}
		rows = append(rows, baton.Placement{App: app, Slot: in.rev.Slot, Revision: in.rev.Name, Host: me,
			Instances: len(in.group.Addrs()), State: baton.PlacementHealthy})
		if err := c.setPlacements(ctx, app, in.rev.Slot, in.rev.Name, rows); err != nil {
			return err
		}
	}
	return nil
}

// DrainHost records that an operator asked host id to drain (drain) or
// to take instances again: while it drains, the apps it owns move to
// other hosts and every app's instances on it are placed elsewhere, each
// serving until its replacement does; undrained, it takes new instances
// again (existing ones stay where they are).
func (c *Coordinator) DrainHost(ctx context.Context, id string, drain bool) error {
	if err := c.cfg.Store.SetHostDrain(ctx, id, drain); err != nil {
		if baton.ErrorCode(err) == baton.ENOTFOUND {
			return baton.Errorf(baton.ENOTFOUND, "no host %q shares this store: `baton hosts` lists them", id)
		}
		return err
	}
	c.log.Info("host drain requested", "host", id, "drain", drain)
	return nil
}
