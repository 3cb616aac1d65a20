package coordinator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/manifest"
	"github.com/batonhq/baton/proxy"
	"github.com/batonhq/baton/supervisor"
)

// extract unpacks the deployment's artifact into dir.
func extract(ctx context.Context, c *Coordinator, d baton.Deployment, dir string) error {
	if err := c.localArtifact(ctx, d.ArtifactDigest); err != nil {
		return err
	}
	if err := artifact.Extract(ctx, c.cfg.Artifacts.Path(d.ArtifactDigest), d.ArtifactType, dir, c.cfg.ExtractLimits); err != nil {
		return err
	}
	c.logf(d.ID, "extracted %s artifact %s", d.ArtifactType, d.ArtifactDigest[:12])
	return nil
}

// stop stops a revision's instances and closes its log.
func (in *instances) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := in.group.Stop(ctx)
	in.log.Close()
	return err
}

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
		}
	}
	c.mu.Unlock()
	c.publishRoutes()
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
		r := proxy.Route{Host: c.host(k.app, k.slot), App: k.app, Slot: k.slot}
		for _, rw := range rws {
			if in := c.running[runKey{rw.Revision, k.slot}]; in != nil {
				r.Backends = append(r.Backends, proxy.Backend{Revision: rw.Revision, Weight: rw.Weight, Addrs: in.group.Addrs()})
			}
		}
		byHost[r.Host] = r
	}
	c.mu.Unlock()
	out := make([]proxy.Route, 0, len(byHost))
	for _, r := range byHost {
		out = append(out, r)
	}
	c.cfg.Proxy.SetRoutes(out)
}

// restoreApp installs the app's routing as the store records it and starts
// the routed revisions that are not running (all of them after baton
// restarted). It reports whether every routed revision runs; the app's
// worker calls it again, backing off, until it does.
func (c *Coordinator) restoreApp(app string) (complete bool) {
	slots, active, err := c.storeRouting(app)
	if baton.ErrorCode(err) == baton.ENOTFOUND {
		return true // deleted meanwhile
	}
	if err != nil {
		c.log.Error("restore: read routing", "app", app, "err", err)
		return c.ctx.Err() != nil
	}
	var missing []baton.Revision
	for _, r := range active {
		if c.runningOf(r.Name, r.Slot) == nil {
			missing = append(missing, r)
		}
	}
	c.keepRestoring(app, missing)
	// Routed before they run, so status shows the traffic that has no
	// healthy instance yet (and the proxy answers 503 for it).
	for _, in := range c.applyRouting(app, slots) {
		c.retire(in, "")
	}
	complete = true
	for _, r := range missing {
		c.setRestoring(r, nil, false)
		c.changes.notify()
		in, err := c.launch(c.ctx, r, "")
		if err != nil {
			if c.ctx.Err() == nil {
				c.log.Error("restore revision; trying again", "app", app, "slot", r.Slot, "revision", r.Name, "err", err)
				c.setRestoring(r, err, false)
				complete = false
			} else {
				c.setRestoring(r, nil, true)
			}
			continue
		}
		in.group.SetLive()
		c.addRunning(in)
		c.setRestoring(r, nil, true)
		c.publishRoutes()
		c.log.Info("restored revision", "app", app, "slot", r.Slot, "revision", r.Name, "weight", r.Weight, "addrs", in.group.Addrs())
	}
	return complete
}

// storeRouting reads an app's routing as the store records it: every slot
// (nil when nothing serves there) and the active revisions.
func (c *Coordinator) storeRouting(app string) (map[string][]baton.RevisionWeight, []baton.Revision, error) {
	a, err := c.cfg.Store.App(c.ctx, app)
	if err != nil {
		return nil, nil, err
	}
	revs, err := c.cfg.Store.Revisions(c.ctx, app)
	if err != nil {
		return nil, nil, err
	}
	slots := map[string][]baton.RevisionWeight{}
	for _, s := range a.Slots {
		slots[s.Name] = nil
	}
	var active []baton.Revision
	for _, r := range revs {
		if r.Active {
			slots[r.Slot] = append(slots[r.Slot], baton.RevisionWeight{Revision: r.Name, Weight: r.Weight})
			active = append(active, r)
		}
	}
	return slots, active, nil
}

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

// instanceLog receives instance output: always appended to the revision's
// log file, and to the deployment log while that deployment runs.
type instanceLog struct {
	c    *Coordinator
	mu   sync.Mutex
	f    *os.File
	dep  string
	line lineWriter
}

func openInstanceLog(c *Coordinator, app, rev, dep string) (*instanceLog, error) {
	path := filepath.Join(c.appDir(app), "logs", rev+".log")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open instance log: %w", err)
	}
	l := &instanceLog{c: c, f: f, dep: dep}
	l.line.emit = func(s string) {
		if l.dep != "" {
			c.logf(l.dep, "app: %s", s)
		}
	}
	return l, nil
}

// Write takes whole lines from the supervisor.
func (l *instanceLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_, _ = l.f.Write(p)
	}
	return l.line.Write(p)
}

// Detach stops copying output into the deployment log.
func (l *instanceLog) Detach() {
	l.mu.Lock()
	l.dep = ""
	l.mu.Unlock()
}

// Close closes the log file.
func (l *instanceLog) Close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	l.dep = ""
}

// lineWriter splits written bytes into lines.
type lineWriter struct {
	buf  []byte
	emit func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.emit(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 {
		w.flush()
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = w.buf[:0]
	}
}
