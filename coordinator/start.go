package coordinator

import (
	"context"
	"errors"
	"slices"
	"sort"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/supervisor"
)

// revisionStart asks startRevision for a revision's instances.
type revisionStart struct {
	// rev runs in rev.Slot, with that slot's sticky settings.
	rev baton.Revision
	// dir, manifest and image (an image revision's image.json) are the
	// revision's folder and what it holds when the caller has them (a
	// deployment's new revision); without them they are read from the
	// revision's folder, restored from its artifact when missing.
	dir      string
	manifest *baton.Manifest
	image    *imageRecord
	// dep is the operation whose log receives the instances' output; ""
	// for none.
	dep string
	// deployment, for a deployment's new revision, is its pipeline: its
	// log says where the instances started, and it enters phase
	// health-checking once every instance accepts connections.
	deployment *pipeline
	// count, when set, is how many instances to start here because the
	// app's owner placed them here; nothing is placed anywhere else.
	// Otherwise the start places the revision (see place).
	count int
	// keep, when set, is the group running the revision here now (a
	// scale): when the placement leaves this host's share its size, keep
	// is returned as it is instead of new instances.
	keep *instances
}

// portTakenAttempts bounds the starts of a revision's instances when each
// fails because another program took an instance's port first.
const portTakenAttempts = 3

// unhealthy is a start that failed because the instances did not all
// pass their health check (or exited before they did).
type unhealthy struct{ err error }

func (u unhealthy) Error() string { return u.err.Error() }
func (u unhealthy) Unwrap() error { return u.err }

// startRevision is the one routine that starts a revision's instances:
// for a deployment's new revision, an activate, a restart, both sides of
// a swap, a cancelled preview and a restore. It returns them once every
// one passes its health check, bounded by the manifest's start_timeout; a
// health check that fails, or an instance that exits first, fails it at
// once. With other hosts, it places the revision's instances over them
// and returns once every host's share is healthy (see place and
// confirm). On failure nothing it started is left running, on any host.
func (c *Coordinator) startRevision(ctx context.Context, rs revisionStart) (*instances, error) {
	var (
		spec supervisor.Spec
		m    baton.Manifest
		img  = rs.image
		out  *instanceLog
		err  error
	)
	if rs.manifest == nil {
		if spec, m, img, out, err = c.revisionSpec(ctx, rs.rev, rs.dep); err != nil {
			return nil, err
		}
	} else {
		m = *rs.manifest
		env, err := c.revisionEnv(ctx, rs.rev, rs.dir)
		if err != nil {
			return nil, err
		}
		if out, err = openInstanceLog(c, rs.rev.App, rs.rev.Name, rs.dep); err != nil {
			return nil, err
		}
		if spec, err = c.groupSpec(ctx, rs.rev, rs.dir, m, img, env, out); err != nil {
			out.Close()
			return nil, err
		}
	}
	// A deployment's phase context has this deadline already.
	ctx, cancel := context.WithTimeout(ctx, m.Health.StartTimeout)
	defer cancel()
	var pl *placement
	if rs.count > 0 {
		spec.Instances = rs.count
	} else {
		if pl, err = c.place(ctx, rs.rev, m, rs.dep); err != nil {
			out.Close()
			return nil, err
		}
		spec.Instances = pl.local
		if rs.keep != nil && pl.local == len(rs.keep.group.Addrs()) {
			// This host's share stays the size it is: the instances
			// serving it serve on (warm), and only the other hosts'
			// shares change.
			out.Close()
			if err := c.confirm(ctx, pl, rs.dep); err != nil {
				c.undo(pl)
				return nil, err
			}
			return rs.keep, nil
		}
	}
	var g *supervisor.Group
	for attempt := 1; ; attempt++ {
		if g, err = c.cfg.Supervisor.Start(ctx, spec); err != nil {
			out.Close()
			c.undo(pl)
			return nil, err
		}
		err = c.waitStarted(ctx, g, spec.Instances, m, rs.deployment)
		if !errors.Is(err, supervisor.ErrPortTaken) || attempt == portTakenAttempts {
			break
		}
		// Another program bound an instance's port before the app did
		// (the port was free when probed): start again on other ports.
		_ = g.Stop(context.WithoutCancel(ctx))
		c.log.Warn("an instance's port was taken by another program before it listened; starting again on other ports", "revision", rs.rev.Name, "err", err)
		if rs.deployment != nil {
			c.logf(rs.dep, "an instance's port was taken by another program before the app listened there; starting the instances again on other ports")
		}
	}
	in := &instances{rev: rs.rev, group: g, log: out}
	if img != nil {
		in.image = &baton.ImageRef{Ref: img.Ref, Digest: img.Digest}
	}
	// Once confirm reports this host's share healthy, the other hosts send
	// it the requests of a revision that is routed already (an app this
	// host adopted or was handed, restored here): this host's table must
	// hold the share by then. On standby it does, until the caller makes
	// it the revision's running instances.
	standby := err == nil && pl != nil && len(pl.hosts) > 1 && c.routedHereWithoutInstances(rs.rev)
	if standby {
		g.SetLive()
		c.setStandby([]*instances{in}, true)
	}
	if err == nil {
		err = c.confirm(ctx, pl, rs.dep)
	}
	if err != nil {
		if standby {
			c.setStandby([]*instances{in}, false)
		}
		_ = g.Stop(context.WithoutCancel(ctx))
		out.Close()
		c.undo(pl)
		if rs.deployment != nil {
			c.logf(rs.dep, "stopped the new instances")
		}
		return nil, err
	}
	return in, nil
}

// routedHereWithoutInstances reports whether this host routes rev's slot
// to rev but runs no instances of it.
func (c *Coordinator) routedHereWithoutInstances(rev baton.Revision) bool {
	return c.runningOf(rev.Name, rev.Slot) == nil && slices.ContainsFunc(c.slotRouting(rev.App, rev.Slot),
		func(rw baton.RevisionWeight) bool { return rw.Revision == rev.Name })
}

// waitStarted waits until every instance of g passes its health check
// (a failure is unhealthy). For a deployment's new revision (p) it logs
// where they started and, once they all accept connections, enters phase
// health-checking; the health wait runs from the start, so an instance
// that exits fails the start at once, whichever phase p is in.
func (c *Coordinator) waitStarted(ctx context.Context, g *supervisor.Group, n int, m baton.Manifest, p *pipeline) error {
	if p == nil {
		if err := g.WaitHealthy(ctx); err != nil {
			return unhealthy{err}
		}
		return nil
	}
	c.logf(p.d.ID, "started %d instance(s) on %v", n, g.Addrs())
	hctx, cancel := context.WithCancel(ctx)
	var healthErr error
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		healthErr = g.WaitHealthy(hctx)
	}()
	defer func() { cancel(); <-healthDone }()
	if err := waitListening(ctx, g.Addrs(), m.Health.Interval, healthDone); err != nil {
		return err
	}
	select {
	case <-healthDone:
		if healthErr != nil && ctx.Err() != nil {
			// The health wait ran out of time before every instance
			// listened: the phase stays starting (its deadline says so).
			return unhealthy{healthErr}
		}
	default:
	}
	if err := p.enter(baton.PhaseHealthChecking); err != nil {
		return enterFailed{err}
	}
	<-healthDone
	if healthErr != nil {
		return unhealthy{healthErr}
	}
	return nil
}

// enterFailed is a phase that could not be recorded during a start.
type enterFailed struct{ err error }

func (e enterFailed) Error() string { return e.err.Error() }
func (e enterFailed) Unwrap() error { return e.err }

// revisionSpec is how the supervisor runs a revision from its folder, with
// its output going to the revision log (and to deployment dep, if set);
// also the revision's manifest and, for an image, its image.json. The
// caller closes the log if it does not hand it to instances.
func (c *Coordinator) revisionSpec(ctx context.Context, r baton.Revision, dep string) (supervisor.Spec, baton.Manifest, *imageRecord, *instanceLog, error) {
	dir, err := c.revisionFiles(ctx, r)
	if err != nil {
		return supervisor.Spec{}, baton.Manifest{}, nil, nil, err
	}
	m, img, err := loadRevision(dir)
	if err != nil {
		return supervisor.Spec{}, m, nil, nil, err
	}
	env, err := c.revisionEnv(ctx, r, dir)
	if err != nil {
		return supervisor.Spec{}, m, nil, nil, err
	}
	out, err := openInstanceLog(c, r.App, r.Name, dep)
	if err != nil {
		return supervisor.Spec{}, m, nil, nil, err
	}
	spec, err := c.groupSpec(ctx, r, dir, m, img, env, out)
	if err != nil {
		out.Close()
	}
	return spec, m, img, out, err
}

// groupSpec is how the supervisor runs a revision's instances: its
// manifest's command in its folder, or for an image (img) a container.
func (c *Coordinator) groupSpec(ctx context.Context, r baton.Revision, dir string, m baton.Manifest, img *imageRecord, env []string, out *instanceLog) (supervisor.Spec, error) {
	spec := supervisor.Spec{
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
	ct, err := c.container(ctx, img, m.Run.Command, m)
	if ct != nil {
		spec.Container, spec.Command, spec.Env = ct, "", containerEnv(env)
	}
	return spec, err
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
