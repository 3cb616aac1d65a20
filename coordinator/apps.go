package coordinator

import (
	"context"
	"fmt"
	"os"

	"github.com/batonhq/baton"
)

// CreateApp registers an app with its production slot.
func (c *Coordinator) CreateApp(ctx context.Context, name string) (baton.App, error) {
	if err := baton.ValidateName("app", name); err != nil {
		return baton.App{}, err
	}
	// Run by this controller from the start: created unassigned, another
	// controller's search for orphans could adopt it before this one
	// assigned it (a whole run met that).
	a, err := c.cfg.Store.CreateAppFor(ctx, name, c.cfg.ControllerID)
	if err != nil {
		return a, err
	}
	if err := os.MkdirAll(c.appDir(name), 0o755); err != nil {
		return a, fmt.Errorf("create app dir: %w", err)
	}
	c.mu.Lock()
	c.apps[name] = true
	c.mu.Unlock()
	c.publishRoutes()
	c.namesChanged()
	return a, nil
}

// DeleteApp cancels the app's deployments, stops its instances, removes its
// routes, records and files.
func (c *Coordinator) DeleteApp(ctx context.Context, name string) error {
	a, err := c.cfg.Store.App(ctx, name)
	if err != nil {
		return err
	}
	if a.Controller != "" && a.Controller != c.cfg.ControllerID {
		return baton.Errorf(baton.ECONFLICT, "app %q runs on controller %s, which stops its instances; delete it through that controller's API (see `baton controllers`)", name, a.Controller)
	}
	c.mu.Lock()
	delete(c.apps, name) // no new worker starts for it from now on
	w := c.workers[name]
	c.mu.Unlock()
	active, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: name, States: []baton.State{baton.StateQueued, baton.StateRunning}})
	if err != nil {
		return err
	}
	for _, d := range active {
		if _, err := c.Cancel(ctx, d.ID, "the app was deleted"); err != nil && baton.ErrorCode(err) != baton.ECONFLICT {
			return err
		}
	}
	if w != nil {
		select {
		case <-w.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var stopping []*instances
	c.mu.Lock()
	for k := range c.routes {
		if k.app == name {
			delete(c.routes, k)
		}
	}
	for k, in := range c.running {
		if in.rev.App == name {
			stopping = append(stopping, in)
			delete(c.running, k)
		}
	}
	c.mu.Unlock()
	c.publishRoutes()
	for _, in := range stopping {
		if err := in.stop(); err != nil {
			c.log.Warn("stop instances of deleted app", "app", name, "err", err)
		}
	}
	if err := c.cfg.Store.DeleteApp(ctx, name); err != nil {
		return err
	}
	c.refreshDomains(ctx)
	c.namesChanged()
	if err := os.RemoveAll(c.appDir(name)); err != nil {
		return fmt.Errorf("remove app files: %w", err)
	}
	c.changes.notify()
	return nil
}

// CreateSlot adds a slot to an app; it is served at APP-SLOT.DOMAIN.
func (c *Coordinator) CreateSlot(ctx context.Context, app, slot string) (baton.Slot, error) {
	if err := baton.ValidateName("slot", slot); err != nil {
		return baton.Slot{}, err
	}
	s, err := c.cfg.Store.CreateSlot(ctx, app, slot)
	if err != nil {
		return s, err
	}
	c.applyRouting(app, map[string][]baton.RevisionWeight{slot: nil})
	c.namesChanged()
	return s, nil
}

// DeleteSlot removes a slot (not production) after stopping what it runs.
func (c *Coordinator) DeleteSlot(ctx context.Context, app, slot string) error {
	if slot == baton.ProductionSlot {
		return baton.Errorf(baton.EINVALID, "the production slot cannot be deleted; delete the app instead")
	}
	if err := c.cfg.Store.DeleteSlot(ctx, app, slot); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.routes, slotKey{app, slot})
	c.mu.Unlock()
	c.refreshDomains(ctx) // the slot's domains went with it
	for _, in := range c.applyRouting(app, nil) {
		c.retire(in, "")
	}
	c.namesChanged()
	return nil
}

// namesChanged tells OnNames that the served names may have changed.
func (c *Coordinator) namesChanged() {
	if c.cfg.OnNames != nil {
		c.cfg.OnNames()
	}
}
