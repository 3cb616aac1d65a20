package coordinator

import (
	"context"

	"github.com/batonhq/baton"
)

// masker returns the Masker of an app's secrets: the values of the secret
// settings of each of its slots, and of the same keys in the environments
// of its active revisions (which may still run with an earlier value). It
// is kept until forgetSecrets; nil when the app has no secret, or when
// the store cannot say (then nothing is hidden, and the next call tries
// again).
func (c *Coordinator) masker(app string) *baton.Masker {
	if app == "" {
		return nil
	}
	c.masksMu.Lock()
	m, ok := c.masks[app]
	c.masksMu.Unlock()
	if ok {
		return m
	}
	ctx := context.WithoutCancel(c.ctx)
	a, err := c.cfg.Store.App(ctx, app)
	if err != nil {
		return nil
	}
	var values []string
	secret := map[string]bool{}
	for _, s := range a.Slots {
		ss, err := c.cfg.Store.Settings(ctx, app, s.Name)
		if err != nil {
			return nil
		}
		for _, st := range ss {
			if st.Secret {
				secret[st.Key] = true
				values = append(values, st.Value)
			}
		}
	}
	if len(secret) > 0 {
		rs, err := c.cfg.Store.Revisions(ctx, app)
		if err != nil {
			return nil
		}
		for _, r := range rs {
			if !r.Active {
				continue
			}
			for k, v := range r.Env {
				if secret[k] {
					values = append(values, v)
				}
			}
		}
	}
	m = baton.NewMasker(values)
	c.masksMu.Lock()
	c.masks[app] = m
	c.masksMu.Unlock()
	return m
}

// forgetSecrets drops an app's Masker: its settings may have changed.
func (c *Coordinator) forgetSecrets(app string) {
	c.masksMu.Lock()
	delete(c.masks, app)
	c.masksMu.Unlock()
}

// appOf is the app of a deployment, for masking its log lines.
func (c *Coordinator) appOf(id string) string {
	if app, ok := c.depApps.Load(id); ok {
		return app.(string)
	}
	d, err := c.cfg.Store.Deployment(context.WithoutCancel(c.ctx), id)
	if err != nil {
		return ""
	}
	c.depApps.Store(id, d.App)
	return d.App
}

// maskLog hides the app's secrets in a line of deployment id's log.
func (c *Coordinator) maskLog(id, line string) string {
	return c.masker(c.appOf(id)).Mask(line)
}
