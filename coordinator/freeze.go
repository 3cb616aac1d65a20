package coordinator

import (
	"context"

	"github.com/batonhq/baton"
)

// Freeze stops new deployments of an app; with cancelRunning the running
// operation is cancelled too (emergency stop).
func (c *Coordinator) Freeze(ctx context.Context, app string, f baton.Freeze, cancelRunning bool) (baton.App, error) {
	f.At = c.cfg.Now()
	if err := c.cfg.Store.SetFrozen(ctx, app, &f); err != nil {
		return baton.App{}, err
	}
	if cancelRunning {
		running, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, States: []baton.State{baton.StateRunning, baton.StateQueued}})
		if err != nil {
			return baton.App{}, err
		}
		for _, d := range running {
			if _, err := c.Cancel(ctx, d.ID, "cancelled by freeze: "+f.Reason); err != nil && baton.ErrorCode(err) != baton.ECONFLICT {
				return baton.App{}, err
			}
		}
	}
	c.changes.notify()
	return c.cfg.Store.App(ctx, app)
}

// Unfreeze lets an app deploy again.
func (c *Coordinator) Unfreeze(ctx context.Context, app string) (baton.App, error) {
	if err := c.cfg.Store.SetFrozen(ctx, app, nil); err != nil {
		return baton.App{}, err
	}
	c.changes.notify()
	return c.cfg.Store.App(ctx, app)
}
