package coordinator

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/supervisor"
)

// HandedGroup is the running instances of one revision in one slot, handed
// from this baton process to the next (see Handoff).
type HandedGroup struct {
	App       string                      `json:"app"`
	Slot      string                      `json:"slot"`
	Revision  string                      `json:"revision"`
	Instances []supervisor.HandedInstance `json:"instances"`
	// Placed marks this host's share of an app another host owns.
	Placed bool `json:"placed,omitempty"`
}

// Pause prepares the hand-over of this process's apps to the next baton
// process: workers stop after their current deployment; queued ones stay
// queued for the next process. If a deployment is still running when ctx
// ends, Pause gives up and work resumes.
func (c *Coordinator) Pause(ctx context.Context) error {
	c.mu.Lock()
	c.pausing = true
	var workers []*worker
	for _, w := range c.workers {
		select {
		case w.wake <- struct{}{}: // out of a restore back-off
		default:
		}
		workers = append(workers, w)
	}
	c.mu.Unlock()
	for _, w := range workers {
		select {
		case <-w.done:
		case <-ctx.Done():
			busy := c.describeRuns()
			c.mu.Lock()
			c.pausing = false
			apps := make([]string, 0, len(c.apps))
			for a := range c.apps {
				apps = append(apps, a)
			}
			c.mu.Unlock()
			for _, a := range apps {
				c.kick(a)
			}
			return baton.Errorf(baton.ECONFLICT, "%s; try again when it has finished, or cancel it", busy)
		}
	}
	return nil
}

// Handoff, after Pause, ends the background work and detaches the
// instances of every running revision from the supervisor, without
// stopping them, for the next process to adopt (Config.Adopt). The
// coordinator can only be closed afterwards.
func (c *Coordinator) Handoff() []HandedGroup {
	c.stopBackground()

	c.mu.Lock()
	keys := make([]runKey, 0, len(c.running))
	all := make([]*instances, 0, len(c.running))
	for k, in := range c.running {
		keys = append(keys, k)
		all = append(all, in)
		delete(c.running, k)
	}
	placed := map[*instances]bool{}
	for k, g := range c.placed {
		if g.in != nil {
			keys = append(keys, runKey{k.rev, k.slot})
			all = append(all, g.in)
			placed[g.in] = true
		}
	}
	c.placed = map[placedKey]*placedGroup{}
	c.handedOff = true
	c.mu.Unlock()
	// Outside the lock: detaching waits for the output readers, which log.
	out := make([]HandedGroup, 0, len(all))
	for i, in := range all {
		handed, err := in.group.Handoff()
		in.log.Close()
		if err != nil {
			c.log.Warn("hand off instances", "revision", keys[i].rev, "slot", keys[i].slot, "err", err)
			continue
		}
		out = append(out, HandedGroup{App: in.rev.App, Slot: keys[i].slot, Revision: keys[i].rev, Instances: handed, Placed: placed[in]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision+out[i].Slot < out[j].Revision+out[j].Slot })
	return out
}

// describeRuns names the deployments running here, for an error.
func (c *Coordinator) describeRuns() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, r := range c.runs {
		parts = append(parts, fmt.Sprintf("%s %s of %s", r.d.Kind, r.d.ID, r.d.App))
	}
	sort.Strings(parts)
	switch len(parts) {
	case 0:
		return "a deployment is still running"
	case 1:
		return parts[0] + " is still running"
	}
	return strings.Join(parts, ", ") + " are still running"
}

// adoptHanded takes over the instances handed by the previous process
// (Config.Adopt) and routes their apps as the store records, so they serve
// as soon as this process accepts requests. Instances of a revision that
// no longer serves there are stopped; those that cannot be adopted are
// left to ReapOrphans.
func (c *Coordinator) adoptHanded(ctx context.Context) {
	adopted := map[string]bool{}
	for _, h := range c.cfg.Adopt {
		c.mu.Lock()
		own := c.apps[h.App]
		c.mu.Unlock()
		r, err := c.cfg.Store.Revision(ctx, h.Revision)
		if err != nil || (!own && !h.Placed) {
			closeOutputs(h.Instances)
			c.log.Warn("handed instances of an unknown revision or app; they will be stopped", "app", h.App, "revision", h.Revision, "err", err)
			continue
		}
		r.Slot = h.Slot
		spec, _, _, out, err := c.revisionSpec(ctx, r, "")
		if err != nil {
			closeOutputs(h.Instances)
			c.log.Warn("adopt handed instances; they will be stopped", "revision", h.Revision, "err", err)
			continue
		}
		g, err := c.cfg.Supervisor.Adopt(spec, h.Instances)
		if err != nil {
			out.Close()
			closeOutputs(h.Instances) // Adopt has let go of them: its group stopped
			c.log.Warn("adopt handed instances; they will be stopped", "revision", h.Revision, "err", err)
			continue
		}
		in := &instances{rev: r, group: g, log: out}
		if !own {
			// A share of another host's app: it serves on as one
			// (reconcilePlaced stops it if it is no longer placed here).
			c.mu.Lock()
			c.placed[placedKey{h.App, h.Slot, h.Revision}] = &placedGroup{in: in, count: len(g.Addrs())}
			c.mu.Unlock()
			g.SetLive()
			c.log.Info("adopted running instances placed here", "app", h.App, "slot", h.Slot, "revision", h.Revision, "addrs", g.Addrs())
			continue
		}
		c.addRunning(in)
		adopted[h.App] = true
		c.log.Info("adopted running instances", "app", h.App, "slot", h.Slot, "revision", h.Revision, "addrs", g.Addrs())
	}
	for app := range adopted {
		slots, _, err := c.storeRouting(app)
		if err != nil {
			c.log.Warn("route adopted instances", "app", app, "err", err)
			continue
		}
		for _, in := range c.applyRouting(app, slots) {
			_ = in.stop() // handed, but no longer routed
		}
	}
}

// closeOutputs closes the output pipes of handed instances nobody adopts;
// ReapOrphans stops their processes.
func closeOutputs(handed []supervisor.HandedInstance) {
	for _, h := range handed {
		if h.Output != nil {
			h.Output.Close()
		}
	}
}
