package coordinator

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/proxy"
)

// Apps another host owns are routed by this host's proxy too: their
// requests go to the owner's peer listener (Forward routes), whose proxy
// routes them to its instances by the app's revisions and weights. A
// switch on the owner therefore changes what every host serves at once,
// and no request is forwarded twice (peer listeners never forward).

// remoteApp is an app another live host owns, as this host routes it:
// with placements (its instances spread over hosts), by its routing and
// every host's shares; without, by a Forward route to its owner.
type remoteApp struct {
	owner, peer string
	slots       []string
	// routing is the app's routing as the store records it, by slot, when
	// it has placements; nil otherwise.
	routing map[string][]baton.RevisionWeight
}

func (r remoteApp) equal(o remoteApp) bool {
	return r.owner == o.owner && r.peer == o.peer && slices.Equal(r.slots, o.slots) &&
		maps.EqualFunc(r.routing, o.routing, slices.Equal)
}

// refreshRemote reloads from the store which apps other live hosts own,
// where their peer listeners are and where every app's instances run,
// publishes a new routing table when that changed, starts and stops this
// host's shares of other hosts' apps, takes over apps handed to it, and
// acks the routing generations it applied. Housekeeping calls it on each
// tick and on wake-ups (a NOTIFY: routing or placements changed, a lease
// released, an app adopted), never the request path.
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
	var keyless []string // live hosts whose proxies send no peer key
	for _, ct := range ctrls {
		if ct.ID != c.cfg.ControllerID && ct.Peer != "" && c.hostState(ct) != baton.HostLost {
			peers[ct.ID] = ct.Peer
		}
		if !ct.SendsPeerKey && c.hostState(ct) != baton.HostLost {
			keyless = append(keyless, ct.ID)
		}
	}
	c.requirePeerKey(keyless)
	apps, err := c.cfg.Store.Apps(ctx)
	if err != nil {
		c.log.Warn("load apps", "err", err)
		return
	}
	var rows []baton.Placement
	if c.spreads() {
		if rows, err = c.cfg.Store.Placements(ctx, baton.PlacementFilter{}); err != nil {
			c.log.Warn("load placements", "err", err)
			return
		}
	}
	byApp := map[string][]baton.Placement{}
	for _, p := range rows {
		byApp[p.App] = append(byApp[p.App], p)
	}
	next := map[string]remoteApp{}
	gens := map[string]int64{}
	var handed []string
	known := make(map[string]bool, len(apps))
	for _, a := range apps {
		known[a.Name] = true
		if a.Controller == c.cfg.ControllerID && !c.owns(a.Name) {
			handed = append(handed, a.Name)
		}
		if !c.owns(a.Name) {
			gens[a.Name] = a.RoutingGeneration // applied once published below
		}
		peer := peers[a.Controller]
		if c.owns(a.Name) || a.Controller == "" || (peer == "" && len(byApp[a.Name]) == 0) {
			// Ours, unowned, or its host is lost and nothing else runs
			// it: adoption moves it. With shares on other hosts, they
			// serve on meanwhile.
			continue
		}
		r := remoteApp{owner: a.Controller, peer: peer}
		for _, s := range a.Slots {
			r.slots = append(r.slots, s.Name)
		}
		if !slices.Contains(r.slots, baton.ProductionSlot) {
			r.slots = append(r.slots, baton.ProductionSlot)
		}
		slices.Sort(r.slots)
		if len(byApp[a.Name]) > 0 {
			if r.routing, err = c.remoteRouting.of(ctx, c, a); err != nil {
				c.log.Warn("load routing", "app", a.Name, "err", err)
				return
			}
		}
		next[a.Name] = r
	}
	c.remoteRouting.forget(known)
	c.mu.Lock()
	same := maps.EqualFunc(next, c.remote, remoteApp.equal) && maps.Equal(peers, c.peers) &&
		maps.EqualFunc(byApp, c.placements, slices.Equal)
	if !same {
		c.remote, c.peers, c.placements = next, peers, byApp
	}
	c.mu.Unlock()
	for _, app := range handed {
		c.takeOver(app)
	}
	if !same {
		c.publishRoutes()
	}
	c.reconcilePlaced(rows)
	c.ack(ctx, gens)
}

// requirePeerKey has this host's peer listener ask for the cluster's peer
// key once no live host is left that does not send it (keyless: hosts of
// an older baton, mid-upgrade), and says so when that changes.
func (c *Coordinator) requirePeerKey(keyless []string) {
	if !c.cfg.Proxy.SendsPeerKey() || !c.cfg.Proxy.RequirePeerKey(len(keyless) == 0) {
		return
	}
	if len(keyless) == 0 {
		c.log.Info("peer listener: every live host sends the cluster's peer key; requests without it are refused from now on")
	} else {
		c.log.Warn("peer listener: requests without the cluster's peer key are served while these live hosts of an older baton send none; upgrade them", "hosts", keyless)
	}
}

// routingByGeneration keeps the routing refreshRemote last read of each
// app with the app's identity and routing generation at the time. Every
// change of an app's routing advances its generation (the stores' one way
// to write it), so an app whose generation stands is not read again: a
// refresh reads the routing of the apps that changed, not one query per
// app with instances spread over hosts on every tick and wake-up.
type routingByGeneration struct {
	mu   sync.Mutex
	seen map[string]seenRouting
}

type seenRouting struct {
	created    time.Time // an app deleted and created again starts over
	generation int64
	routing    map[string][]baton.RevisionWeight
}

// of returns a's routing: the one read at a's generation, or the store's.
// The map is shared between refreshes: nobody changes it after this.
func (g *routingByGeneration) of(ctx context.Context, c *Coordinator, a baton.App) (map[string][]baton.RevisionWeight, error) {
	g.mu.Lock()
	s, ok := g.seen[a.Name]
	g.mu.Unlock()
	if ok && s.generation == a.RoutingGeneration && s.created.Equal(a.CreatedAt) {
		return s.routing, nil
	}
	routing, err := c.routingOf(ctx, a)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]seenRouting{}
	}
	g.seen[a.Name] = seenRouting{created: a.CreatedAt, generation: a.RoutingGeneration, routing: routing}
	return routing, nil
}

// forget drops what is kept of the apps not in keep (deleted ones).
func (g *routingByGeneration) forget(keep map[string]bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	maps.DeleteFunc(g.seen, func(app string, _ seenRouting) bool { return !keep[app] })
}

// routingOf reads an app's routing as the store records it, by slot.
func (c *Coordinator) routingOf(ctx context.Context, a baton.App) (map[string][]baton.RevisionWeight, error) {
	revs, err := c.cfg.Store.Revisions(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	out := map[string][]baton.RevisionWeight{}
	for _, r := range revs {
		if r.Active {
			out[r.Slot] = append(out[r.Slot], baton.RevisionWeight{Revision: r.Name, Weight: r.Weight})
		}
	}
	for slot := range out {
		slices.SortFunc(out[slot], func(a, b baton.RevisionWeight) int { return strings.Compare(a.Revision, b.Revision) })
	}
	return out, nil
}

// remoteRoutesLocked adds to byHost the routes of the apps other hosts
// own (not those this host owns meanwhile: adopted, or taken back): by
// their routing and placements, or a Forward route to the owner.
func (c *Coordinator) remoteRoutesLocked(byHost map[string]proxy.Route) {
	for app, r := range c.remote {
		if c.apps[app] {
			continue
		}
		for _, slot := range r.slots {
			h := c.host(app, slot)
			if r.routing == nil {
				byHost[h] = proxy.Route{Host: h, App: app, Slot: slot, Forward: true,
					Backends: []proxy.Backend{{Weight: 100, Addrs: []string{r.peer}}}}
				continue
			}
			byHost[h] = c.slotRouteLocked(app, slot, r.routing[slot], func(rev string) []string {
				if g := c.placed[placedKey{app, slot, rev}]; g != nil && g.in != nil {
					return g.in.group.Addrs()
				}
				return nil
			})
		}
	}
}

// slotRouteLocked is the route of a slot: each routed revision served by
// this host's instances (local) and the peers of the hosts running the
// rest, then, without weight, the revisions placed here that the routing
// does not name yet (another host may pin requests to them during a
// switch, before this host applied it).
func (c *Coordinator) slotRouteLocked(app, slot string, rws []baton.RevisionWeight, local func(rev string) []string) proxy.Route {
	r := proxy.Route{Host: c.host(app, slot), App: app, Slot: slot}
	peers := c.peerBackendsLocked(app, slot)
	named := map[string]bool{}
	for _, rw := range rws {
		named[rw.Revision] = true
		addrs, ps := local(rw.Revision), peers[rw.Revision]
		if len(addrs) > 0 || len(ps) > 0 {
			r.Backends = append(r.Backends, proxy.Backend{Revision: rw.Revision, Weight: rw.Weight, Addrs: addrs, Peers: ps})
		}
	}
	for k, g := range c.placed {
		if k.app == app && k.slot == slot && !named[k.rev] && g.in != nil {
			named[k.rev] = true
			r.Backends = append(r.Backends, proxy.Backend{Revision: k.rev, Addrs: g.in.group.Addrs()})
		}
	}
	for in := range c.standby {
		if in.rev.App == app && in.rev.Slot == slot && !named[in.rev.Name] {
			named[in.rev.Name] = true
			r.Backends = append(r.Backends, proxy.Backend{Revision: in.rev.Name, Addrs: in.group.Addrs()})
		}
	}
	return r
}
