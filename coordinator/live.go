package coordinator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/manifest"
	"github.com/batonhq/baton/proxy"
	"github.com/batonhq/baton/supervisor"
)

// extract unpacks the deployment's artifact into dir.
func extract(ctx context.Context, c *Coordinator, d baton.Deployment, dir string) error {
	if err := artifact.Extract(ctx, c.cfg.Artifacts.Path(d.ArtifactDigest), d.ArtifactType, dir, c.cfg.ExtractLimits); err != nil {
		return err
	}
	c.logf(d.ID, "extracted %s artifact %s", d.ArtifactType, d.ArtifactDigest[:12])
	return nil
}

// startRevision starts a revision's instances.
func (c *Coordinator) startRevision(ctx context.Context, app, slot, rev, dir string, m baton.Manifest, out *instanceLog) (*supervisor.Group, error) {
	return c.cfg.Supervisor.Start(ctx, supervisor.Spec{
		Name:      rev,
		Dir:       dir,
		Command:   m.Run.Command,
		Env:       instanceEnv(app, slot, rev, dir),
		Instances: m.Run.Instances,
		Health:    supervisor.HealthCheck{Path: m.Health.Path, Interval: m.Health.Interval, Timeout: m.Health.Timeout},
		Output:    out,
	})
}

// setLive installs lr as the slot's live revision, publishes the routing
// table, and returns the revision it replaced.
func (c *Coordinator) setLive(app, slot string, lr *liveRevision) *liveRevision {
	c.mu.Lock()
	k := slotKey{app, slot}
	old := c.live[k]
	c.live[k] = lr
	c.mu.Unlock()
	c.publishRoutes()
	return old
}

// host is the proxy host name of a slot.
func (c *Coordinator) host(app, slot string) string {
	if slot == baton.ProductionSlot {
		return app + "." + c.cfg.Domain
	}
	return app + "-" + slot + "." + c.cfg.Domain
}

// publishRoutes rebuilds the proxy's routing table from the live revisions.
// Serialized so an older table can never be published after a newer one.
func (c *Coordinator) publishRoutes() {
	c.routesMu.Lock()
	defer c.routesMu.Unlock()
	c.mu.Lock()
	var routes []proxy.Route
	for app := range c.apps {
		routes = append(routes, proxy.Route{Host: c.host(app, baton.ProductionSlot), App: app, Slot: baton.ProductionSlot})
	}
	for k, lr := range c.live {
		if !c.apps[k.app] {
			continue
		}
		r := proxy.Route{Host: c.host(k.app, k.slot), App: k.app, Slot: k.slot}
		if lr.group != nil {
			r.Backends = []proxy.Backend{{Revision: lr.name, Weight: 100, Addrs: lr.group.Addrs()}}
		}
		routes = append(routes, r)
	}
	c.mu.Unlock()
	// Later entries win: live slots replace the empty production placeholders.
	sort.SliceStable(routes, func(i, j int) bool { return len(routes[i].Backends) < len(routes[j].Backends) })
	byHost := map[string]proxy.Route{}
	for _, r := range routes {
		byHost[r.Host] = r
	}
	out := make([]proxy.Route, 0, len(byHost))
	for _, r := range byHost {
		out = append(out, r)
	}
	c.cfg.Proxy.SetRoutes(out)
}

// restore starts a slot's live revision again after baton restarted.
func (c *Coordinator) restore(s baton.Slot) {
	dir := c.revisionDir(s.App, s.LiveRevision)
	fail := func(err error) {
		c.log.Error("restore live revision", "app", s.App, "slot", s.Name, "revision", s.LiveRevision, "err", err)
	}
	m, err := manifest.Load(dir)
	if err != nil {
		fail(err)
		return
	}
	out, err := openInstanceLog(c, s.App, s.LiveRevision, "")
	if err != nil {
		fail(err)
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, m.Health.StartTimeout)
	defer cancel()
	g, err := c.startRevision(ctx, s.App, s.Name, s.LiveRevision, dir, m, out)
	if err == nil {
		err = g.WaitHealthy(ctx)
		if err != nil {
			_ = g.Stop(context.WithoutCancel(ctx))
		}
	}
	if err != nil {
		out.Close()
		fail(err)
		return
	}
	g.SetLive()
	c.setLive(s.App, s.Name, &liveRevision{name: s.LiveRevision, group: g, log: out})
	c.log.Info("restored live revision", "app", s.App, "slot", s.Name, "revision", s.LiveRevision, "addrs", g.Addrs())
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
