package coordinator

import (
	"context"
	"time"

	"github.com/batonhq/baton"
)

// silentAfter is how many lease TTLs a controller may miss its heartbeat
// before its apps are adopted by another.
const silentAfter = 3

// housekeep runs until Close: it heartbeats this controller, recovers
// deployments whose controller died, adopts the apps of silent controllers,
// and wakes workers for work queued through other controllers.
func (c *Coordinator) housekeep() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case app, ok := <-c.cfg.Wake:
			if !ok {
				c.cfg.Wake = nil // no more news: the ticker still covers it
				continue
			}
			c.kick(app)
			if !c.owns(app) || c.spreads() {
				// Another host's operation ended, or it adopted an app.
				ctx, cancel := context.WithTimeout(c.ctx, c.cfg.LeaseTTL)
				c.refreshRemote(ctx)
				cancel()
			}
			continue
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.LeaseTTL)
		c.tick(ctx)
		cancel()
	}
}

func (c *Coordinator) tick(ctx context.Context) {
	c.heartbeatHost(ctx)
	if c.cfg.Shared {
		ended, err := c.cfg.Store.FailExpired(ctx)
		if err != nil {
			c.log.Warn("recover expired deployments", "err", err)
		}
		c.noteInterrupted(ctx, ended, "its controller going silent")
		c.adoptOrphans(ctx)
		c.refreshDomains(ctx) // claimed or released through another controller
		c.refreshRemote(ctx)
		if c.spreads() {
			if ctrls, err := c.cfg.Store.Controllers(ctx); err == nil {
				c.handOver(ctx, ctrls)
				c.rebalance(ctx, ctrls)
			}
		}
	}
	// Work queued through another controller's API, if a wake-up was missed.
	queued, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{States: []baton.State{baton.StateQueued}})
	if err == nil {
		seen := map[string]bool{}
		for _, d := range queued {
			if !seen[d.App] {
				seen[d.App] = true
				c.kick(d.App)
			}
		}
	}
}

// adoptOrphans takes over the apps of controllers silent for too long (or
// gone): restores their live revisions here and continues their queues.
func (c *Coordinator) adoptOrphans(ctx context.Context) {
	ctrls, err := c.cfg.Store.Controllers(ctx)
	if err != nil {
		return
	}
	alive := map[string]bool{}
	for _, ct := range ctrls {
		if ct.Silence < silentAfter*c.cfg.LeaseTTL {
			alive[ct.ID] = true
		}
	}
	alive[c.cfg.ControllerID] = true
	apps, err := c.cfg.Store.Apps(ctx)
	if err != nil {
		return
	}
	for _, a := range apps {
		if alive[a.Controller] {
			continue
		}
		if err := c.cfg.Store.AssignApp(ctx, a.Name, a.Controller, c.cfg.ControllerID); err != nil {
			continue // another controller adopted it first
		}
		c.log.Warn("adopted app of a silent controller", "app", a.Name, "from", a.Controller)
		c.claim(a.Name)
		c.startWorker(a.Name, true)
	}
}

// owns reports whether this controller runs app.
func (c *Coordinator) owns(app string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.apps[app]
}

// Controllers lists the controllers sharing the store.
func (c *Coordinator) Controllers(ctx context.Context) ([]baton.Controller, error) {
	return c.cfg.Store.Controllers(ctx)
}
