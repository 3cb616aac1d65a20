package coordinator

import (
	"fmt"
	"strings"
	"sync"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/proxy"
)

// host is the proxy host name of a slot.
func (c *Coordinator) host(app, slot string) string {
	if slot == baton.ProductionSlot {
		return app + "." + c.cfg.Domain
	}
	return app + "-" + slot + "." + c.cfg.Domain
}

// applyRouting installs the routing of the given slots of app (already
// recorded in the store), publishes it, and returns the running revisions of
// the app that are no longer routed anywhere: the caller drains and stops them.
func (c *Coordinator) applyRouting(app string, slots map[string][]baton.RevisionWeight) []*instances {
	c.mu.Lock()
	for slot, rws := range slots {
		c.routes[slotKey{app, slot}] = append([]baton.RevisionWeight(nil), rws...)
	}
	routed := map[runKey]bool{}
	for k, rws := range c.routes {
		if k.app == app {
			for _, rw := range rws {
				routed[runKey{rw.Revision, k.slot}] = true
			}
		}
	}
	var retired []*instances
	for k, in := range c.running {
		if in.rev.App == app && !routed[k] {
			retired = append(retired, in)
			delete(c.running, k)
			c.standbyLocked(in)
		}
	}
	c.mu.Unlock()
	c.publishRoutes()
	c.ackOwn(app)
	return retired
}

// slotRouting returns the current routing of a slot.
func (c *Coordinator) slotRouting(app, slot string) []baton.RevisionWeight {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]baton.RevisionWeight(nil), c.routes[slotKey{app, slot}]...)
}

// runningOf returns the instances of a revision running for a slot, nil if none.
func (c *Coordinator) runningOf(rev, slot string) *instances {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running[runKey{rev, slot}]
}

// addRunning records instances under their revision and slot, replacing
// (and returning) what ran there before.
func (c *Coordinator) addRunning(in *instances) *instances {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := runKey{in.rev.Name, in.rev.Slot}
	old := c.running[k]
	c.running[k] = in
	return old
}

// publishRoutes installs in the proxy a routing table built from the
// routes and running instances as they are now (or later) and returns once
// it is installed: a caller that changed them can rely on the proxy
// routing by them (draining depends on it). Callers arriving while a table
// is being built share the next build, so a thousand apps restored at once
// cost a few builds, not a thousand; builds are serialized, so an older
// table is never installed after a newer one.
func (c *Coordinator) publishRoutes() { c.pub.publish(c.buildRoutes) }

// publisher coalesces table builds: see publishRoutes.
type publisher struct {
	mu        sync.Mutex
	cond      *sync.Cond
	requested uint64 // publish calls so far
	built     uint64 // the requests covered by the last installed table
	building  bool
}

// publish returns once a build that started after this call has installed
// its table, running that build itself if no other caller is.
func (p *publisher) publish(build func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cond == nil {
		p.cond = sync.NewCond(&p.mu)
	}
	p.requested++
	mine := p.requested
	for p.built < mine {
		if p.building {
			p.cond.Wait()
			continue
		}
		p.building = true
		covers := p.requested // every change made before these calls is visible to build
		p.mu.Unlock()
		build()
		p.mu.Lock()
		p.building = false
		p.built = covers
		p.cond.Broadcast()
	}
}

// buildRoutes builds the routing table and installs it in the proxy.
func (c *Coordinator) buildRoutes() {
	c.mu.Lock()
	byHost := map[string]proxy.Route{}
	for app := range c.apps {
		h := c.host(app, baton.ProductionSlot)
		byHost[h] = proxy.Route{Host: h, App: app, Slot: baton.ProductionSlot}
	}
	for k, rws := range c.routes {
		if !c.apps[k.app] {
			continue
		}
		r := c.slotRouteLocked(k.app, k.slot, rws, func(rev string) []string {
			if in := c.running[runKey{rev, k.slot}]; in != nil {
				return in.group.Addrs()
			}
			// Not running yet: started for a routed revision, on standby
			// until it is (startRevision).
			for in := range c.standby {
				if in.rev.App == k.app && in.rev.Slot == k.slot && in.rev.Name == rev {
					return in.group.Addrs()
				}
			}
			return nil
		})
		byHost[r.Host] = r
	}
	c.remoteRoutesLocked(byHost)
	// Custom domains after the slots' own hosts: each serves what its
	// slot's host serves (a slot without routing yet answers like one).
	for name, k := range c.domains {
		if _, remote := c.remote[k.app]; !c.apps[k.app] && !remote {
			continue
		}
		r, ok := byHost[c.host(k.app, k.slot)]
		if !ok {
			r = proxy.Route{App: k.app, Slot: k.slot}
		}
		r.Host = name
		byHost[name] = r
	}
	c.mu.Unlock()
	out := make([]proxy.Route, 0, len(byHost))
	for _, r := range byHost {
		out = append(out, r)
	}
	c.cfg.Proxy.SetRoutes(out)
}

// heaviest returns the revision with the most traffic, "" if none.
func heaviest(rws []baton.RevisionWeight) string {
	best, top := "", -1
	for _, rw := range rws {
		if rw.Weight > top {
			best, top = rw.Revision, rw.Weight
		}
	}
	return best
}

// nextRouting is a slot's routing after rev goes live. In single mode rev
// takes 100 %. In multiple mode it joins the active revisions with the
// requested weight (the others scaled to make room), or takes the place of
// the revision it replaces, or takes 100 % when nothing had traffic.
func nextRouting(mode string, cur []baton.RevisionWeight, rev, replaces string, weight int) []baton.RevisionWeight {
	total := 0
	for _, rw := range cur {
		total += rw.Weight
	}
	if mode != baton.RevisionsMultiple || total == 0 {
		return []baton.RevisionWeight{{Revision: rev, Weight: 100}}
	}
	if replaces != "" {
		next := make([]baton.RevisionWeight, 0, len(cur))
		for _, rw := range cur {
			if rw.Revision == replaces {
				rw.Revision = rev
			}
			next = append(next, rw)
		}
		return next
	}
	if weight <= 0 {
		return append(cur, baton.RevisionWeight{Revision: rev, Weight: 0})
	}
	if weight >= 100 {
		return []baton.RevisionWeight{{Revision: rev, Weight: 100}}
	}
	next := scaleWeights(cur, 100-weight)
	return append(next, baton.RevisionWeight{Revision: rev, Weight: weight})
}

// scaleWeights rescales weights to sum to target, keeping their proportions;
// rounding leftovers go to the heaviest.
func scaleWeights(cur []baton.RevisionWeight, target int) []baton.RevisionWeight {
	total := 0
	for _, rw := range cur {
		total += rw.Weight
	}
	next := make([]baton.RevisionWeight, len(cur))
	sum, heaviest := 0, 0
	for i, rw := range cur {
		w := 0
		if total > 0 {
			w = rw.Weight * target / total
		}
		next[i] = baton.RevisionWeight{Revision: rw.Revision, Weight: w}
		sum += w
		if rw.Weight > cur[heaviest].Weight {
			heaviest = i
		}
	}
	if len(next) > 0 {
		next[heaviest].Weight += target - sum
	}
	return next
}

func describeRouting(rws []baton.RevisionWeight) string {
	parts := make([]string, len(rws))
	for i, rw := range rws {
		parts[i] = fmt.Sprintf("%s %d%%", rw.Revision, rw.Weight)
	}
	return strings.Join(parts, ", ")
}

// install makes instances serve in one step: they enter the running
// table (each replacing what ran under its revision and slot), the given
// slots get their new routing, and the proxy table is published (with nil
// slots, the routing is as it was). It returns the instances that no
// longer serve: those replaced, and those no longer routed. See switchTo.
func (c *Coordinator) install(app string, add []*instances, slots map[string][]baton.RevisionWeight) []*instances {
	var retired []*instances
	c.mu.Lock()
	for _, in := range add {
		k := runKey{in.rev.Name, in.rev.Slot}
		if old := c.running[k]; old != nil && !sameGroup(old, add) {
			retired = append(retired, old)
			c.standbyLocked(old)
		}
		c.running[k] = in
		delete(c.standby, in)
	}
	c.mu.Unlock()
	if slots == nil {
		c.publishRoutes()
		return retired
	}
	for _, in := range c.applyRouting(app, slots) {
		// A previewed group also ran under the source's key; it lives on.
		if !sameGroup(in, add) {
			retired = append(retired, in)
		}
	}
	return retired
}

func sameGroup(in *instances, list []*instances) bool {
	for _, o := range list {
		if o.group == in.group {
			return true
		}
	}
	return false
}
