package coordinator

import (
	"context"
	"fmt"
	"time"

	"github.com/batonhq/baton"
)

// Routing generations (see baton.RoutingState): every change of an app's
// routing advances its generation in the store, in the transaction that
// records it (SetRouting, AssignApp), with a NOTIFY. Each host acks the
// generation its proxy applied: the owner right after it installed its
// own switch (applyRouting), the others when they reload the store's
// routing (refreshRemote). A live host whose ack stays behind is a
// conflict in the app's status.

// ackOwn records that this host's proxy applies app's current routing
// generation; the owner calls it after installing a routing change.
func (c *Coordinator) ackOwn(app string) {
	if !c.cfg.Shared || c.ctx == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.LeaseTTL)
	defer cancel()
	a, err := c.cfg.Store.App(ctx, app)
	if err != nil {
		return // deleted meanwhile, or shutting down
	}
	c.ack(ctx, map[string]int64{app: a.RoutingGeneration})
}

// ack records the generations in gens that differ from what this host
// acked last.
func (c *Coordinator) ack(ctx context.Context, gens map[string]int64) {
	c.mu.Lock()
	news := map[string]int64{}
	for app, g := range gens {
		if acked, ok := c.acked[app]; !ok || acked != g {
			news[app] = g
		}
	}
	c.mu.Unlock()
	if len(news) == 0 {
		return
	}
	if err := c.cfg.Store.AckRouting(ctx, c.cfg.ControllerID, news); err != nil {
		c.log.Warn("ack routing generations", "err", err)
		return
	}
	c.mu.Lock()
	for app, g := range news {
		c.acked[app] = g
	}
	c.mu.Unlock()
}

// ackDeadline is how long a live host may take to apply a new routing
// generation before status reports it: hosts reload on a NOTIFY at once,
// and without one at their next housekeeping tick (LeaseTTL/3).
func (c *Coordinator) ackDeadline() time.Duration { return c.cfg.LeaseTTL }

// laggingHosts returns the live hosts (those with a peer listener that
// are not lost) whose ack of st's generation is missing or older.
func (c *Coordinator) laggingHosts(ctrls []baton.Controller, st baton.RoutingState) []baton.Controller {
	acked := map[string]int64{}
	for _, a := range st.Acks {
		acked[a.Controller] = a.Generation
	}
	var out []baton.Controller
	for _, ct := range ctrls {
		if ct.Peer == "" || c.hostState(ct) == baton.HostLost {
			continue
		}
		if g, ok := acked[ct.ID]; !ok || g < st.Generation {
			out = append(out, ct)
		}
	}
	return out
}

// hostsRouting is what status reads of the hosts' routing when several
// share the store: the apps' routing states and the hosts. Nil without
// other hosts.
type hostsRouting struct {
	states map[string]baton.RoutingState
	// ctrls are the hosts; nil when they could not be read (no lagging
	// host is named then).
	ctrls []baton.Controller
}

// readHostsRouting reads the routing state of app, or of every app
// (app ""), and the hosts: two or three store reads whatever the number
// of apps.
func (c *Coordinator) readHostsRouting(ctx context.Context, app string) *hostsRouting {
	if !c.cfg.Shared {
		return nil
	}
	hr := &hostsRouting{states: map[string]baton.RoutingState{}}
	if app != "" {
		if st, err := c.cfg.Store.RoutingAcks(ctx, app); err == nil {
			hr.states[app] = st
		}
	} else if all, err := c.cfg.Store.AllRoutingAcks(ctx); err == nil {
		for _, st := range all {
			hr.states[st.App] = st
		}
	}
	if ctrls, err := c.cfg.Store.Controllers(ctx); err == nil {
		hr.ctrls = ctrls
	}
	return hr
}

// routingStatus adds to conflicts the live hosts that serve an older
// routing generation of app than the store's, past the deadline.
func (c *Coordinator) routingStatus(hr *hostsRouting, app string, conflicts []baton.Conflict) (*baton.RoutingState, []baton.Conflict) {
	if hr == nil {
		return nil, conflicts
	}
	st, ok := hr.states[app]
	if !ok {
		return nil, conflicts
	}
	if st.Age < c.ackDeadline() {
		return &st, conflicts
	}
	acked := map[string]int64{}
	for _, a := range st.Acks {
		acked[a.Controller] = a.Generation
	}
	for _, ct := range c.laggingHosts(hr.ctrls, st) {
		conflicts = append(conflicts, baton.Conflict{Code: baton.ConflictStaleRouting,
			Message: fmt.Sprintf("host %s (%s) serves routing generation %d of %s, but generation %d was recorded %s ago: its proxy may send requests where the app no longer runs",
				ct.ID, ct.Advertise, acked[ct.ID], app, st.Generation, st.Age.Round(time.Second)),
			Fix: fmt.Sprintf("baton hosts   # then restart baton serve on %s if it stays behind (its proxy reloads the routing at start)", ct.Advertise)})
	}
	return &st, conflicts
}

// awaitAcks waits, after the owner installed a switch of app, until every
// live host applied the app's routing generation, at most ackDeadline,
// and says in the operation's log which hosts did not (status reports
// them as conflicts). It polls the store: this is the switch path of one
// operation, never the request path. depID "" logs nothing.
func (c *Coordinator) awaitAcks(ctx context.Context, depID, app string) {
	if !c.cfg.Shared {
		return
	}
	start := time.Now()
	deadline := start.Add(c.ackDeadline())
	for {
		st, err := c.cfg.Store.RoutingAcks(ctx, app)
		if err != nil {
			c.log.Warn("read routing acks", "app", app, "err", err)
			return
		}
		ctrls, err := c.cfg.Store.Controllers(ctx)
		if err != nil {
			c.log.Warn("read hosts", "err", err)
			return
		}
		lag := c.laggingHosts(ctrls, st)
		if len(lag) == 0 && depID == "" {
			return
		}
		if len(lag) == 0 {
			c.logf(depID, "routing generation %d applied by every live host (%d) in %s", st.Generation, liveHosts(c, ctrls),
				time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) && depID == "" {
			return
		}
		if time.Now().After(deadline) {
			ids := make([]string, len(lag))
			for i, h := range lag {
				ids[i] = h.ID + " (" + h.Advertise + ")"
			}
			c.logf(depID, "routing generation %d not applied within %s by host(s) %v: see `baton status %s`", st.Generation,
				c.ackDeadline(), ids, app)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// liveHosts counts the hosts that take part in routing and are not lost.
func liveHosts(c *Coordinator, ctrls []baton.Controller) int {
	n := 0
	for _, ct := range ctrls {
		if ct.Peer != "" && c.hostState(ct) != baton.HostLost {
			n++
		}
	}
	return n
}
