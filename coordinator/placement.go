package coordinator

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// Placement across hosts (see baton.Placement). When hosts share the
// store and each has a peer listener, a revision's instances are spread
// over the live hosts: the app's owner decides where (baton.Place),
// records each host's share in the store, starts its own share and waits
// until every host reported its share healthy — or undoes the whole
// placement. Other hosts start what is placed on them (reconcilePlaced)
// and every host's proxy routes each revision to its own instances and to
// the peer listeners of the hosts running the rest. Nothing routes to a
// share before its host reports it healthy, and a share leaves only after
// every host stopped routing to it (a draining row, acknowledged).

// spreads reports whether this host places instances over several hosts.
func (c *Coordinator) spreads() bool { return c.cfg.Shared && c.cfg.PeerAddr != "" }

// placedKey names a revision's share on this host of an app another host
// owns.
type placedKey struct{ app, slot, rev string }

// placedGroup is the share this host runs of an app another host owns.
type placedGroup struct {
	in    *instances // nil until the first start succeeds
	count int        // instances in, or being started
	busy  bool       // a start or replacement runs
}

// placement is where a start put a revision's instances.
type placement struct {
	app, slot, rev string
	// hosts is every host's share, this host's included; nil when alone.
	hosts map[string]int
	local int
	// before is the revision's rows before this placement, to put back
	// when it fails while the revision still serves (a restart, a scale).
	before []baton.Placement
	// draining are rows of hosts that lose their share: they serve until
	// every host stopped routing to them.
	draining bool
}

// scaleOf is how many instances a revision of slot runs in all and at
// most per host: the slot's scale, or the revision's manifest.
func (c *Coordinator) scaleOf(ctx context.Context, app, slot string, m baton.Manifest) (n, perHost int, err error) {
	s, err := c.cfg.Store.Scale(ctx, app, slot)
	if err != nil && baton.ErrorCode(err) != baton.ENOTFOUND {
		return 0, 0, err
	}
	n, perHost = m.Run.Instances, m.Run.MaxPerHost
	if s.Instances > 0 {
		n = s.Instances
	}
	if s.MaxPerHost > 0 {
		perHost = s.MaxPerHost
	}
	return max(n, 1), perHost, nil
}

// placeHosts lists the hosts a placement may use: live, not draining,
// with a peer listener; this host always (it owns the app).
func (c *Coordinator) placeHosts(ctx context.Context) ([]baton.HostLoad, map[string]baton.Controller, error) {
	ctrls, err := c.cfg.Store.Controllers(ctx)
	if err != nil {
		return nil, nil, err
	}
	byID := map[string]baton.Controller{}
	var out []baton.HostLoad
	self := false
	for _, ct := range ctrls {
		byID[ct.ID] = ct
		if ct.ID == c.cfg.ControllerID {
			self = true
			out = append(out, baton.HostLoad{ID: ct.ID, Instances: c.instanceCount()})
			continue
		}
		if ct.Peer == "" || c.hostState(ct) != baton.HostLive || ct.DrainRequested {
			continue
		}
		out = append(out, baton.HostLoad{ID: ct.ID, Instances: ct.Instances})
	}
	if !self {
		out = append(out, baton.HostLoad{ID: c.cfg.ControllerID, Instances: c.instanceCount()})
	}
	return out, byID, nil
}

// place decides where rev's instances run and records it: with other
// hosts, each one's share in the store (the caller then starts the local
// share and calls confirm); alone, just the count.
func (c *Coordinator) place(ctx context.Context, rev baton.Revision, m baton.Manifest, dep string) (*placement, error) {
	n, perHost, err := c.scaleOf(ctx, rev.App, rev.Slot, m)
	if err != nil {
		return nil, err
	}
	me := c.cfg.ControllerID
	pl := &placement{app: rev.App, slot: rev.Slot, rev: rev.Name}
	if !c.spreads() {
		share, err := baton.Place(n, perHost, []baton.HostLoad{{ID: me}}, nil, me)
		if err != nil {
			return nil, err
		}
		pl.local = share[me]
		return pl, nil
	}
	hosts, ctrls, err := c.placeHosts(ctx)
	if err != nil {
		return nil, err
	}
	before, err := c.cfg.Store.Placements(ctx, baton.PlacementFilter{App: rev.App, Slot: rev.Slot, Revision: rev.Name})
	if err != nil {
		return nil, err
	}
	cur := map[string]int{}
	for _, p := range before {
		cur[p.Host] = p.Instances
	}
	if len(before) == 0 {
		// A new revision goes where the slot's busiest one runs: stable
		// across deployments.
		if prev := heaviest(c.slotRouting(rev.App, rev.Slot)); prev != "" {
			rows, err := c.cfg.Store.Placements(ctx, baton.PlacementFilter{App: rev.App, Slot: rev.Slot, Revision: prev})
			if err != nil {
				return nil, err
			}
			for _, p := range rows {
				cur[p.Host] = p.Instances
			}
		}
	}
	share, err := baton.Place(n, perHost, hosts, cur, me)
	if err != nil {
		return nil, err
	}
	pl.hosts, pl.local, pl.before = share, share[me], before
	serving := c.runningOf(rev.Name, rev.Slot) != nil // a restart, a scale
	rows := make([]baton.Placement, 0, len(share))
	for _, h := range sortedHosts(share) {
		st := baton.PlacementStarting
		for _, p := range before {
			if p.Host != h || !p.Serving() || (h == me && !serving) {
				continue
			}
			// A share that stays as it is keeps serving as it stands; one
			// that changes serves on while its replacement starts.
			st = baton.PlacementReplacing
			if h != me && p.Instances == share[h] {
				st = baton.PlacementHealthy
			}
		}
		rows = append(rows, baton.Placement{App: rev.App, Slot: rev.Slot, Revision: rev.Name, Host: h, Instances: share[h], State: st})
	}
	for _, p := range before {
		// A live host losing its share serves until nobody routes to it;
		// a lost one serves nothing.
		if _, kept := share[p.Host]; kept || !p.Serving() || c.hostState(ctrls[p.Host]) == baton.HostLost {
			continue
		}
		p.State = baton.PlacementDraining
		rows = append(rows, p)
		pl.draining = true
	}
	if err := c.setPlacements(ctx, rev.App, rev.Slot, rev.Name, rows); err != nil {
		return nil, err
	}
	if dep != "" && len(share) > 1 {
		c.logf(dep, "placed %d instance(s) of %s: %s", n, rev.Name, baton.DescribePlacement(share))
	}
	return pl, nil
}

// confirm, once this host's share passed its health check, reports it
// healthy and waits (within ctx) until every other host reported its
// share healthy; then hosts that lost their share stop serving it once
// every host stopped routing to them. An error names the host that
// failed: the caller then calls undo.
func (c *Coordinator) confirm(ctx context.Context, pl *placement, dep string) error {
	if pl == nil || pl.hosts == nil {
		return nil
	}
	me := c.cfg.ControllerID
	if err := c.cfg.Store.ReportPlacement(ctx, baton.Placement{App: pl.app, Slot: pl.slot, Revision: pl.rev, Host: me,
		Instances: pl.local, State: baton.PlacementHealthy}); err != nil {
		return err
	}
	if len(pl.hosts) > 1 {
		start := time.Now()
		if err := c.awaitShares(ctx, pl); err != nil {
			return err
		}
		if dep != "" {
			c.logf(dep, "every host's instances of %s healthy (%s) in %s", pl.rev, baton.DescribePlacement(pl.hosts), time.Since(start).Round(time.Millisecond))
		}
	}
	c.refreshRemote(ctx)
	if pl.draining {
		c.awaitAcks(ctx, dep, pl.app)
		rows, err := c.cfg.Store.Placements(ctx, baton.PlacementFilter{App: pl.app, Slot: pl.slot, Revision: pl.rev})
		if err != nil {
			return err
		}
		keep := rows[:0]
		for _, p := range rows {
			if p.State != baton.PlacementDraining {
				keep = append(keep, p)
			}
		}
		if err := c.setPlacements(ctx, pl.app, pl.slot, pl.rev, keep); err != nil {
			return err
		}
	}
	return nil
}

// awaitShares waits until every host's share of pl is healthy, failing
// at once when one reports it failed. It reads the store every few
// milliseconds: this is one operation's start, never the request path.
func (c *Coordinator) awaitShares(ctx context.Context, pl *placement) error {
	var waiting []string // the hosts not healthy at the last look
	late := func() error {
		return unhealthy{fmt.Errorf("host(s) %s did not report their instances of %s healthy in time (%w); nothing switched on any host", strings.Join(waiting, ", "), pl.rev, context.Cause(ctx))}
	}
	for {
		rows, err := c.cfg.Store.Placements(ctx, baton.PlacementFilter{App: pl.app, Slot: pl.slot, Revision: pl.rev})
		if err != nil {
			if ctx.Err() != nil && len(waiting) > 0 {
				return late() // the deadline came during the read: say who was late
			}
			return err
		}
		waiting = waiting[:0]
		for _, p := range rows {
			if _, ok := pl.hosts[p.Host]; !ok {
				continue
			}
			switch p.State {
			case baton.PlacementFailed:
				return unhealthy{fmt.Errorf("the %d instance(s) of %s on host %s failed: %s; nothing switched on any host", p.Instances, pl.rev, p.Host, p.Message)}
			case baton.PlacementHealthy:
			default:
				waiting = append(waiting, p.Host)
			}
		}
		if len(rows) == 0 {
			return fmt.Errorf("the placement of %s was removed while it started", pl.rev)
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return late()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// undo takes back a placement whose start failed: hosts stop what they
// started for it; when the revision still serves here (a restart, a
// scale), its rows as they were before come back.
func (c *Coordinator) undo(pl *placement) {
	if pl == nil || pl.hosts == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), c.cfg.LeaseTTL)
	defer cancel()
	var rows []baton.Placement
	if c.runningOf(pl.rev, pl.slot) != nil {
		rows = pl.before
	}
	if err := c.setPlacements(ctx, pl.app, pl.slot, pl.rev, rows); err != nil {
		c.log.Warn("take back a failed placement", "app", pl.app, "revision", pl.rev, "err", err)
	}
}

// withdraw removes every host's share of a revision that stopped serving
// in a slot here (its routing no longer names it on any host: the switch
// waited for their acks), so the other hosts stop theirs.
func (c *Coordinator) withdraw(app, slot, rev string) {
	if !c.spreads() || !c.owns(app) || c.runningOf(rev, slot) != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), c.cfg.LeaseTTL)
	defer cancel()
	if err := c.setPlacements(ctx, app, slot, rev, nil); err != nil && baton.ErrorCode(err) != baton.ENOTFOUND {
		c.log.Warn("withdraw a placement", "app", app, "revision", rev, "err", err)
	}
}

// setPlacements records the placements of a revision of an app this host
// owns, routes by them here, and acks the routing generation they
// advanced (this host applied it).
func (c *Coordinator) setPlacements(ctx context.Context, app, slot, rev string, rows []baton.Placement) error {
	if err := c.cfg.Store.SetPlacements(ctx, app, slot, rev, rows); err != nil {
		return err
	}
	c.refreshRemote(ctx)
	c.ackOwn(app)
	return nil
}

// reconcilePlaced starts, replaces and stops this host's shares of apps
// other hosts own so that they match the store's placements (rows, every
// host's). Starts run in the background, each reporting when done.
func (c *Coordinator) reconcilePlaced(rows []baton.Placement) {
	me := c.cfg.ControllerID
	want := map[placedKey]baton.Placement{}
	for _, p := range rows {
		if p.Host == me && p.State != baton.PlacementFailed {
			want[placedKey{p.App, p.Slot, p.Revision}] = p
		}
	}
	var (
		retire  []*instances
		start   []baton.Placement
		report  []baton.Placement
		unroute []baton.Placement
	)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	for k, g := range c.placed {
		if _, ok := want[k]; !ok && !g.busy {
			delete(c.placed, k)
			if g.in != nil {
				retire = append(retire, g.in)
			}
		}
	}
	for k, p := range want {
		if c.apps[p.App] {
			continue // ours: our operations start our share
		}
		g := c.placed[k]
		switch {
		case g == nil:
			c.placed[k] = &placedGroup{count: p.Instances, busy: true}
			start = append(start, p)
			if p.Serving() {
				// Recorded as serving, but nothing runs here (this host
				// restarted): the others stop routing to it until it does.
				unroute = append(unroute, p)
			}
		case g.busy || p.State == baton.PlacementDraining:
		case g.count != p.Instances:
			g.busy = true
			start = append(start, p)
		case p.State == baton.PlacementStarting || p.State == baton.PlacementReplacing:
			report = append(report, p)
		}
	}
	c.mu.Unlock()
	for _, p := range unroute {
		c.reportPlaced(p, baton.PlacementStarting, nil)
	}
	c.mu.Lock()
	for _, p := range start {
		c.wg.Add(1)
		go c.startPlaced(p)
	}
	c.mu.Unlock()
	if len(retire) > 0 {
		c.publishRoutes()
	}
	for _, in := range retire {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.log.Info("stopping instances no longer placed here", "app", in.rev.App, "slot", in.rev.Slot, "revision", in.rev.Name)
			c.retire(in, "")
		}()
	}
	for _, p := range report {
		c.reportPlaced(p, baton.PlacementHealthy, nil)
	}
}

// startPlaced starts this host's share p of an app another host owns (or
// replaces the share it runs by one of p's size) and reports how it went.
func (c *Coordinator) startPlaced(p baton.Placement) {
	defer c.wg.Done()
	k := placedKey{p.App, p.Slot, p.Revision}
	rev, err := c.cfg.Store.Revision(c.ctx, p.Revision)
	var in *instances
	if err == nil {
		rev.Slot = p.Slot
		in, err = c.startRevision(c.ctx, revisionStart{rev: rev, count: p.Instances})
	}
	c.mu.Lock()
	g := c.placed[k]
	var old *instances
	switch {
	case g == nil || c.closed:
		// Withdrawn meanwhile (or shutting down): nothing keeps it.
		old, g = in, nil
	case err != nil:
		g.busy = false
		if g.in == nil {
			delete(c.placed, k)
		}
	default:
		old, g.in, g.count, g.busy = g.in, in, p.Instances, false
	}
	c.mu.Unlock()
	if err != nil {
		if c.ctx.Err() == nil {
			c.log.Warn("start instances placed here", "app", p.App, "revision", p.Revision, "err", err)
			c.reportPlaced(p, baton.PlacementFailed, err)
		}
		return
	}
	if g != nil {
		in.group.SetLive()
		c.publishRoutes()
		c.log.Info("started instances placed here", "app", p.App, "slot", p.Slot, "revision", p.Revision, "addrs", in.group.Addrs())
		c.reportPlaced(p, baton.PlacementHealthy, nil)
	}
	if old != nil {
		c.retire(old, "")
	}
}

// reportPlaced tells the app's owner how this host's share p stands:
// state, or failed with err.
func (c *Coordinator) reportPlaced(p baton.Placement, state baton.PlacementState, err error) {
	p.State, p.Message = state, ""
	if err != nil {
		p.State, p.Message = baton.PlacementFailed, baton.ErrorMessage(err)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.LeaseTTL)
	defer cancel()
	if err := c.cfg.Store.ReportPlacement(ctx, p); err != nil && baton.ErrorCode(err) != baton.ENOTFOUND {
		c.log.Warn("report placed instances", "app", p.App, "revision", p.Revision, "err", err)
	}
}

// peerBackends returns, for each revision of app in slot, the peer
// listeners of the other hosts whose share of it serves, one entry
// per instance. The caller holds c.mu.
func (c *Coordinator) peerBackendsLocked(app, slot string) map[string][]string {
	out := map[string][]string{}
	for _, p := range c.placements[app] {
		if p.Slot != slot || !p.Serving() || p.Host == c.cfg.ControllerID {
			continue
		}
		peer := c.peers[p.Host]
		if peer == "" {
			continue // lost, or unknown yet
		}
		for range p.Instances {
			out[p.Revision] = append(out[p.Revision], peer)
		}
	}
	return out
}

// promotePlaced makes this host's shares of app (which it now owns: it
// adopted it, or its owner handed it over) its running instances.
func (c *Coordinator) promotePlaced(app string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.promotePlacedLocked(app)
}

func (c *Coordinator) promotePlacedLocked(app string) {
	for k, g := range c.placed {
		if k.app != app || g.in == nil {
			continue
		}
		delete(c.placed, k)
		if _, taken := c.running[runKey{k.rev, k.slot}]; !taken {
			c.running[runKey{k.rev, k.slot}] = g.in
		}
	}
}

// claim makes this host the owner of app in memory (it adopted the app,
// or the app was handed to it), routing it at once as the store records
// it, with this host's shares as its instances: no routing table is built
// with the app owned and unrouted. It returns false when this host owns
// it already or is closing. The app's worker then restores the rest.
func (c *Coordinator) claim(app string) bool {
	slots, _, err := c.storeRouting(app)
	c.mu.Lock()
	if c.closed || c.apps[app] {
		c.mu.Unlock()
		return false
	}
	c.apps[app] = true
	if err == nil {
		for slot, rws := range slots {
			if rws != nil {
				c.routes[slotKey{app, slot}] = rws
			}
		}
	}
	c.promotePlacedLocked(app)
	c.mu.Unlock()
	c.publishRoutes()
	return true
}

// demoteRunningLocked makes the instances this host runs of app, which another
// host owns from now on, its shares of the app: they serve until the new
// owner places them elsewhere.
func (c *Coordinator) demoteRunningLocked(app string) {
	for k, in := range c.running {
		if in.rev.App != app {
			continue
		}
		delete(c.running, k)
		c.placed[placedKey{app, k.slot, k.rev}] = &placedGroup{in: in, count: len(in.group.Addrs())}
	}
	for k := range c.routes {
		if k.app == app {
			delete(c.routes, k)
		}
	}
}

// placedGroupsLocked returns the instances this host runs for other
// hosts' apps.
func (c *Coordinator) placedGroupsLocked() []*instances {
	out := make([]*instances, 0, len(c.placed))
	for _, g := range c.placed {
		if g.in != nil {
			out = append(out, g.in)
		}
	}
	return out
}

// setStandby adds instances to the standby set (or takes them out) and
// publishes the routing table when that changed anything; alone on the
// store, nothing is kept on standby.
func (c *Coordinator) setStandby(ins []*instances, on bool) {
	if !c.spreads() || len(ins) == 0 {
		return
	}
	c.mu.Lock()
	changed := false
	for _, in := range ins {
		if c.standby[in] != on {
			changed = true
			if on {
				c.standby[in] = true
			} else {
				delete(c.standby, in)
			}
		}
	}
	c.mu.Unlock()
	if changed {
		c.publishRoutes()
	}
}

// standbyLocked keeps in on standby, with other hosts (see standby).
func (c *Coordinator) standbyLocked(in *instances) {
	if c.spreads() {
		c.standby[in] = true
	}
}

// statusRouting is a slot's routing as status shows it: this host's when
// it owns the app, else as loaded from the store for its proxy.
func (c *Coordinator) statusRouting(app, slot string) []baton.RevisionWeight {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apps[app] {
		return append([]baton.RevisionWeight(nil), c.routes[slotKey{app, slot}]...)
	}
	return append([]baton.RevisionWeight(nil), c.remote[app].routing[slot]...)
}

// servingHere returns the instances of a revision in a slot that run on
// this host: the owner's running ones, or this host's share.
func (c *Coordinator) servingHere(app, slot, rev string) *instances {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in := c.running[runKey{rev, slot}]; in != nil {
		return in
	}
	if g := c.placed[placedKey{app, slot, rev}]; g != nil {
		return g.in
	}
	return nil
}

// placementsOf returns the hosts of a revision in a slot, as last loaded.
func (c *Coordinator) placementsOf(app, slot, rev string) []baton.Placement {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []baton.Placement
	for _, p := range c.placements[app] {
		if p.Slot == slot && p.Revision == rev {
			out = append(out, p)
		}
	}
	return out
}

// needsRebalance returns, per slot of the apps this host owns, why their
// instances must be placed again: a share on a host that is lost or
// asked to drain.
func (c *Coordinator) needsRebalance(ctrls []baton.Controller) map[slotKey]string {
	byID := map[string]baton.Controller{}
	for _, ct := range ctrls {
		byID[ct.ID] = ct
	}
	out := map[slotKey]string{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for app, rows := range c.placements {
		if !c.apps[app] {
			continue
		}
		for _, p := range rows {
			ct, known := byID[p.Host]
			switch {
			case p.Host == c.cfg.ControllerID || c.running[runKey{p.Revision, p.Slot}] == nil:
				// Not running here yet: its restore places it anew.
			case !known || c.hostState(ct) == baton.HostLost:
				out[slotKey{app, p.Slot}] = "host " + p.Host + " lost"
			case ct.DrainRequested && p.State != baton.PlacementDraining:
				out[slotKey{app, p.Slot}] = "host " + p.Host + " draining"
			}
		}
	}
	return out
}

// rebalance queues, for each slot that needs it, an operation that
// places its instances again, unless one is queued or running already.
func (c *Coordinator) rebalance(ctx context.Context, ctrls []baton.Controller) {
	need := c.needsRebalance(ctrls)
	if len(need) == 0 {
		return
	}
	keys := slices.SortedFunc(maps.Keys(need), func(a, b slotKey) int { return strings.Compare(a.app+"/"+a.slot, b.app+"/"+b.slot) })
	for _, k := range keys {
		active, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: k.app, States: activeStates})
		if err != nil {
			continue
		}
		pending := false
		for _, d := range active {
			pending = pending || (d.Kind == baton.KindScale && d.Slot == k.slot)
		}
		if pending {
			continue
		}
		d, err := c.SubmitOp(ctx, baton.OpRequest{App: k.app, Slot: k.slot, Kind: baton.KindScale,
			Params: baton.ScaleParams{Rebalance: true, Reason: need[k]}, Author: "baton", Message: need[k]})
		if err != nil {
			c.log.Warn("queue a rebalance", "app", k.app, "slot", k.slot, "err", err)
			continue
		}
		c.log.Info("queued a rebalance", "app", k.app, "slot", k.slot, "why", need[k], "operation", d.ID)
	}
}

func sortedHosts(share map[string]int) []string {
	ids := make([]string, 0, len(share))
	for id := range share {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
