package coordinator

import (
	"context"
	"sort"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/manifest"
	"github.com/batonhq/baton/supervisor"
)

// launch starts a revision's instances in its slot and waits until they are
// healthy (bounded by start_timeout). dep, if set, receives their output.
func (c *Coordinator) launch(ctx context.Context, r baton.Revision, dep string) (*instances, error) {
	spec, m, out, err := c.revisionSpec(ctx, r, dep)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, m.Health.StartTimeout)
	defer cancel()
	g, err := c.cfg.Supervisor.Start(ctx, spec)
	if err == nil {
		if err = g.WaitHealthy(ctx); err != nil {
			_ = g.Stop(context.WithoutCancel(ctx))
		}
	}
	if err != nil {
		out.Close()
		return nil, err
	}
	return &instances{rev: r, group: g, log: out}, nil
}

// revisionSpec is how the supervisor runs a revision from its folder, with
// its output going to the revision log (and to deployment dep, if set).
// The caller closes the log if it does not hand it to instances.
func (c *Coordinator) revisionSpec(ctx context.Context, r baton.Revision, dep string) (supervisor.Spec, baton.Manifest, *instanceLog, error) {
	dir, err := c.revisionFiles(ctx, r)
	if err != nil {
		return supervisor.Spec{}, baton.Manifest{}, nil, err
	}
	m, err := manifest.Load(dir)
	if err != nil {
		return supervisor.Spec{}, m, nil, err
	}
	env, err := c.revisionEnv(ctx, r, dir)
	if err != nil {
		return supervisor.Spec{}, m, nil, err
	}
	out, err := openInstanceLog(c, r.App, r.Name, dep)
	if err != nil {
		return supervisor.Spec{}, m, nil, err
	}
	return c.groupSpec(r, dir, m, env, out), m, out, nil
}

// startGroup starts a revision's instances without waiting for health.
func (c *Coordinator) startGroup(ctx context.Context, r baton.Revision, dir string, m baton.Manifest, env []string, out *instanceLog) (*supervisor.Group, error) {
	return c.cfg.Supervisor.Start(ctx, c.groupSpec(r, dir, m, env, out))
}

func (c *Coordinator) groupSpec(r baton.Revision, dir string, m baton.Manifest, env []string, out *instanceLog) supervisor.Spec {
	return supervisor.Spec{
		Name:      r.Name,
		Dir:       dir,
		Command:   m.Run.Command,
		Env:       env,
		Instances: m.Run.Instances,
		Health:    supervisor.HealthCheck{Path: m.Health.Path, Interval: m.Health.Interval, Timeout: m.Health.Timeout},
		Output:    out,
		// Health flips reach the proxy at once: no new requests to an
		// instance that stopped answering, while another one can take them.
		OnHealth: c.cfg.Proxy.SetHealthy,
	}
}

// revisionEnv is the environment of a revision's instances: baton's own
// variables, the revision's non-sticky settings, and the sticky settings of
// the slot it runs in.
func (c *Coordinator) revisionEnv(ctx context.Context, r baton.Revision, dir string) ([]string, error) {
	sticky, err := c.cfg.Store.Settings(ctx, r.App, r.Slot)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for k, v := range r.Env {
		vars[k] = v
	}
	for _, s := range sticky {
		if s.Sticky {
			vars[s.Key] = s.Value
		}
	}
	env := instanceEnv(r.App, r.Slot, r.Name, dir)
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+vars[k])
	}
	return env, nil
}

// nonStickyEnv returns the non-sticky settings of a slot: what a new
// revision deployed there carries with it.
func (c *Coordinator) nonStickyEnv(ctx context.Context, app, slot string) (map[string]string, error) {
	settings, err := c.cfg.Store.Settings(ctx, app, slot)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, s := range settings {
		if !s.Sticky {
			env[s.Key] = s.Value
		}
	}
	return env, nil
}

// stop stops a revision's instances and closes its log.
func (in *instances) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := in.group.Stop(ctx)
	in.log.Close()
	return err
}
