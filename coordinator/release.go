package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// release runs the manifest's release command once, in the new revision's
// folder and environment, holding the locks of the resources it declares.
func (p *pipeline) release(m baton.Manifest) error {
	rel := m.Release
	if rel.Command == "" {
		return nil
	}
	c := p.c
	held, err := p.acquireResources(rel.Resources, rel.ResourceWait)
	defer c.releaseResources(held)
	if err != nil {
		return err
	}
	ctx, cancel, err := p.phase(baton.PhaseReleasing)
	if err != nil {
		return err
	}
	defer cancel()
	env, err := c.revisionEnv(ctx, p.revision, p.dir)
	if err != nil {
		return err
	}
	c.logf(p.d.ID, "release: %s", rel.Command)
	if err := p.runCommand(ctx, rel.Command, env, "release"); err != nil {
		return asPhaseError(ctx, baton.Errorf(baton.EUNPROCESSABLE, "release command failed: %v; nothing was switched", err))
	}
	return nil
}

// acquireResources takes the resources' leases in ascending name order,
// waiting at most wait in all. It returns the fences it holds, even on error,
// so the caller releases them.
func (p *pipeline) acquireResources(names []string, wait time.Duration) ([]baton.Fence, error) {
	c := p.c
	sorted := slices.Clone(names)
	sort.Strings(sorted)
	sorted = slices.Compact(sorted)
	var held []baton.Fence
	if len(sorted) == 0 {
		return nil, nil
	}
	deadline := time.Now().Add(wait)
	for _, name := range sorted {
		key := baton.ResourceLeaseKey(name)
		announced := false
		for {
			changed := c.Changes()
			l, err := c.cfg.Store.AcquireLease(p.r.ctx, key, p.d.ID, c.cfg.LeaseTTL)
			if err == nil {
				f := baton.Fence{Key: l.Key, Token: l.Token}
				held = append(held, f)
				p.r.addFence(f)
				c.logf(p.d.ID, "holding resource %s (token %d)", name, l.Token)
				break
			}
			if baton.ErrorCode(err) != baton.ECONFLICT {
				return held, err
			}
			holder := c.describeHolder(key)
			if !announced {
				if err := p.enter(baton.PhaseWaitingForResource); err != nil {
					return held, err
				}
				c.setWaiting(p.d.ID, name, true)
				defer c.setWaiting(p.d.ID, name, false)
				c.logf(p.d.ID, "waiting for resource %s, held by %s (up to %s)", name, holder, wait)
				announced = true
			}
			left := time.Until(deadline)
			if left <= 0 {
				return held, baton.Errorf(baton.ECONFLICT, "gave up waiting %s for resource %s, held by %s; raise [release] resource_wait or retry later", wait, name, holder)
			}
			// Woken by a release here; the timer covers other controllers
			// and expiring leases.
			t := time.NewTimer(min(left, time.Second))
			select {
			case <-changed:
			case <-t.C:
			case <-p.r.ctx.Done():
				t.Stop()
				return held, context.Cause(p.r.ctx)
			}
			t.Stop()
		}
	}
	return held, nil
}

// releaseResources gives resource leases back and wakes their waiters.
func (c *Coordinator) releaseResources(held []baton.Fence) {
	ctx := context.WithoutCancel(c.ctx)
	for i := len(held) - 1; i >= 0; i-- {
		if err := c.cfg.Store.ReleaseLease(ctx, held[i]); err != nil && !errors.Is(err, baton.ErrStaleToken) {
			c.log.Error("release resource lease", "key", held[i].Key, "err", err)
		}
	}
	if len(held) > 0 {
		c.changes.notify()
	}
}

// describeHolder names who holds a lease: app and deployment, phase, age.
func (c *Coordinator) describeHolder(key string) string {
	ctx := context.WithoutCancel(c.ctx)
	l, err := c.cfg.Store.Lease(ctx, key)
	if err != nil {
		return "nobody (just released)"
	}
	d, err := c.cfg.Store.Deployment(ctx, l.Holder)
	if err != nil {
		return l.Holder
	}
	return fmt.Sprintf("app %s, %s", d.App, d.Describe(c.cfg.Now()))
}

// setWaiting records which deployments wait for which resource (for
// GET /api/v1/resources).
func (c *Coordinator) setWaiting(dep, resource string, waiting bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting == nil {
		c.waiting = map[string][]string{}
	}
	list := slices.DeleteFunc(c.waiting[resource], func(s string) bool { return s == dep })
	if waiting {
		list = append(list, dep)
	}
	if len(list) == 0 {
		delete(c.waiting, resource)
	} else {
		c.waiting[resource] = list
	}
}

// Resources lists the shared resources that are held or waited for.
func (c *Coordinator) Resources(ctx context.Context) ([]baton.ResourceStatus, error) {
	leases, err := c.cfg.Store.Leases(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*baton.ResourceStatus{}
	for _, l := range leases {
		name, ok := strings.CutPrefix(l.Key, "resource:")
		if !ok {
			continue
		}
		rs := &baton.ResourceStatus{Name: name, Lease: &l, Waiters: []string{}}
		if d, err := c.cfg.Store.Deployment(ctx, l.Holder); err == nil {
			rs.Holder = &d
		}
		byName[name] = rs
	}
	c.mu.Lock()
	for name, deps := range c.waiting {
		if byName[name] == nil {
			byName[name] = &baton.ResourceStatus{Name: name, Waiters: []string{}}
		}
		byName[name].Waiters = append(byName[name].Waiters, deps...)
	}
	c.mu.Unlock()
	out := make([]baton.ResourceStatus, 0, len(byName))
	for _, rs := range byName {
		out = append(out, *rs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// resourceWaitNote says which resource a deployment waits for and who holds it.
func (c *Coordinator) resourceWaitNote(dep string) string {
	c.mu.Lock()
	var names []string
	for name, deps := range c.waiting {
		if slices.Contains(deps, dep) {
			names = append(names, name)
		}
	}
	c.mu.Unlock()
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("it waits for resource %s, held by %s", n, c.describeHolder(baton.ResourceLeaseKey(n))))
	}
	if len(parts) == 0 {
		return "it waits for a shared resource"
	}
	return strings.Join(parts, "; ")
}
