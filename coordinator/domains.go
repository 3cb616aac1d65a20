package coordinator

import (
	"context"
	"maps"

	"github.com/batonhq/baton"
)

// Custom domains route like their slot's own host: the routing table gets
// one more host per domain, with the slot's backends. A domain names a
// slot, not revisions, so a swap (which moves revisions) leaves it where
// it is.

// AddDomain claims name for a slot of app and routes it at once.
func (c *Coordinator) AddDomain(ctx context.Context, app, slot, name string) (baton.Domain, error) {
	if slot == "" {
		slot = baton.ProductionSlot
	}
	n, err := baton.ValidateDomain(name, c.cfg.Domain)
	if err != nil {
		return baton.Domain{}, err
	}
	d, err := c.cfg.Store.AddDomain(ctx, baton.Domain{Name: n, App: app, Slot: slot})
	if err != nil {
		return d, err
	}
	c.refreshDomains(ctx)
	return d, nil
}

// RemoveDomain releases a domain of app; the proxy stops routing it at once.
func (c *Coordinator) RemoveDomain(ctx context.Context, app, name string) error {
	n, err := baton.ValidateDomain(name, c.cfg.Domain)
	if err != nil {
		n = name // a name no longer valid may still be removed
	}
	if err := c.cfg.Store.DeleteDomain(ctx, app, n); err != nil {
		return err
	}
	c.refreshDomains(ctx)
	return nil
}

// refreshDomains reloads the custom domains from the store and publishes
// a new routing table when they changed (also those changed through
// another controller: housekeeping calls it), then tells OnNames.
func (c *Coordinator) refreshDomains(ctx context.Context) {
	ds, err := c.cfg.Store.Domains(ctx, "")
	if err != nil {
		c.log.Warn("load custom domains", "err", err)
		return
	}
	next := make(map[string]slotKey, len(ds))
	for _, d := range ds {
		next[d.Name] = slotKey{d.App, d.Slot}
	}
	c.mu.Lock()
	same := maps.Equal(next, c.domains)
	if !same {
		c.domains = next
	}
	c.mu.Unlock()
	if !same {
		c.publishRoutes()
		c.namesChanged()
	}
}

// domainsOf lists the custom domains of a slot of app, by name.
func (c *Coordinator) domainsOf(app, slot string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for n, k := range c.domains {
		if k.app == app && k.slot == slot {
			out = append(out, n)
		}
	}
	return out
}

// ServedNames lists every name the proxy should hold a certificate for:
// each slot's APP.DOMAIN / APP-SLOT.DOMAIN and each custom domain, of
// every app in the store (not only this controller's: a load balancer
// may send any name to any controller).
func (c *Coordinator) ServedNames(ctx context.Context) ([]string, error) {
	apps, err := c.cfg.Store.Apps(ctx)
	if err != nil {
		return nil, err
	}
	ds, err := c.cfg.Store.Domains(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range apps {
		for _, s := range a.Slots {
			out = append(out, c.host(a.Name, s.Name))
		}
	}
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out, nil
}
