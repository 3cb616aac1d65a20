package coordinator

import (
	"context"
	"maps"
	"slices"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/proxy"
)

// Apps another host owns are routed by this host's proxy too: their
// requests go to the owner's peer listener (Forward routes), whose proxy
// routes them to its instances by the app's revisions and weights. A
// switch on the owner therefore changes what every host serves at once,
// and no request is forwarded twice (peer listeners never forward).

// remoteApp is an app another live host owns, as this host routes it.
type remoteApp struct {
	owner, peer string
	slots       []string
}

func (r remoteApp) equal(o remoteApp) bool {
	return r.owner == o.owner && r.peer == o.peer && slices.Equal(r.slots, o.slots)
}

// refreshRemote reloads from the store which apps other live hosts own
// and where their peer listeners are, and publishes a new routing table
// when that changed. Housekeeping calls it on each tick and on wake-ups
// (a lease released, an app adopted), never the request path.
func (c *Coordinator) refreshRemote(ctx context.Context) {
	if !c.cfg.Shared {
		return
	}
	ctrls, err := c.cfg.Store.Controllers(ctx)
	if err != nil {
		c.log.Warn("load hosts", "err", err)
		return
	}
	peers := map[string]string{}
	for _, ct := range ctrls {
		if ct.ID != c.cfg.ControllerID && ct.Peer != "" && c.hostState(ct) != baton.HostLost {
			peers[ct.ID] = ct.Peer
		}
	}
	apps, err := c.cfg.Store.Apps(ctx)
	if err != nil {
		c.log.Warn("load apps", "err", err)
		return
	}
	next := map[string]remoteApp{}
	gens := map[string]int64{}
	for _, a := range apps {
		if !c.owns(a.Name) {
			gens[a.Name] = a.RoutingGeneration // applied once published below
		}
		peer := peers[a.Controller]
		if peer == "" {
			continue // ours, unowned, or its host is lost: adoption moves it
		}
		r := remoteApp{owner: a.Controller, peer: peer}
		for _, s := range a.Slots {
			r.slots = append(r.slots, s.Name)
		}
		if !slices.Contains(r.slots, baton.ProductionSlot) {
			r.slots = append(r.slots, baton.ProductionSlot)
		}
		slices.Sort(r.slots)
		next[a.Name] = r
	}
	c.mu.Lock()
	same := maps.EqualFunc(next, c.remote, remoteApp.equal)
	if !same {
		c.remote = next
	}
	c.mu.Unlock()
	if !same {
		c.publishRoutes()
	}
	c.ack(ctx, gens)
}

// remoteRoutesLocked adds to byHost the Forward routes of the apps other
// hosts own (not those this host owns meanwhile: adopted, or taken back).
func (c *Coordinator) remoteRoutesLocked(byHost map[string]proxy.Route) {
	for app, r := range c.remote {
		if c.apps[app] {
			continue
		}
		for _, slot := range r.slots {
			h := c.host(app, slot)
			byHost[h] = proxy.Route{Host: h, App: app, Slot: slot, Forward: true,
				Backends: []proxy.Backend{{Weight: 100, Addrs: []string{r.peer}}}}
		}
	}
}
