package coordinator

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/batonhq/baton"
)

// SubmitOp queues an operation under its conflict policy.
func (c *Coordinator) SubmitOp(ctx context.Context, req baton.OpRequest) (baton.Deployment, error) {
	params, err := baton.EncodeParams(req.Kind, req.Params)
	if err != nil {
		return baton.Deployment{}, err
	}
	if req.Slot == "" {
		req.Slot = baton.ProductionSlot
	}
	if req.Policy == "" {
		req.Policy = baton.PolicyQueue
	}
	if _, err := c.cfg.Store.App(ctx, req.App); err != nil {
		return baton.Deployment{}, err
	}
	res, err := c.enqueue(ctx, baton.Deployment{
		ID: baton.NewID("d-"), App: req.App, Slot: req.Slot, Kind: req.Kind, Params: params,
		Policy: req.Policy, Author: req.Author, Message: req.Message,
	}, nil)
	return res.Deployment, err
}

// Wait blocks until the deployment or operation id is final and returns it.
func (c *Coordinator) Wait(ctx context.Context, id string) (baton.Deployment, error) {
	for {
		changed := c.Changes()
		d, err := c.cfg.Store.Deployment(ctx, id)
		if err != nil || d.State.Final() {
			return d, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return d, ctx.Err()
		}
	}
}

// operate runs an operation that is not a deployment. Its params are
// read first: an operation whose stored params cannot be read fails,
// saying why, before it changes anything.
func (c *Coordinator) operate(p *pipeline) error {
	ctx := p.r.ctx
	d := p.d
	switch d.Kind {
	case baton.KindTraffic:
		tp, err := baton.DecodeParams[baton.TrafficParams](d.Kind, d.Params)
		if err != nil {
			return err
		}
		return c.setTraffic(ctx, p, tp.Weights)
	case baton.KindSwap:
		sp, err := baton.DecodeParams[baton.SwapParams](d.Kind, d.Params)
		if err != nil {
			return err
		}
		return c.swap(ctx, p, sp)
	case baton.KindStabilize, baton.KindActivate, baton.KindDeactivate, baton.KindRestart:
		rp, err := baton.DecodeParams[baton.RevisionParams](d.Kind, d.Params)
		if err != nil {
			return err
		}
		switch d.Kind {
		case baton.KindStabilize:
			return c.stabilize(ctx, p, rp.Revision)
		case baton.KindActivate:
			return c.activate(ctx, p, rp.Revision)
		case baton.KindDeactivate:
			return c.deactivate(ctx, p, rp.Revision)
		default:
			return c.restartRevision(ctx, p, rp.Revision)
		}
	}
	return baton.Errorf(baton.EINVALID, "unknown operation %q", d.Kind)
}

// healthyCount is how many instances of a running revision pass their check.
func (c *Coordinator) healthyCount(rev, slot string) int {
	in := c.runningOf(rev, slot)
	if in == nil {
		return 0
	}
	n := 0
	for _, st := range in.group.Status() {
		if st.Healthy {
			n++
		}
	}
	return n
}

func (c *Coordinator) setTraffic(ctx context.Context, p *pipeline, weights map[string]int) error {
	if err := baton.ValidateWeights(weights); err != nil {
		return err
	}
	app, err := c.cfg.Store.App(ctx, p.d.App)
	if err != nil {
		return err
	}
	cur := c.slotRouting(p.d.App, p.d.Slot)
	if w, ok := weights["latest"]; ok {
		delete(weights, "latest")
		latest := newest(cur)
		if latest == "" {
			return baton.Errorf(baton.ECONFLICT, "slot %s has no active revision for \"latest\"", p.d.Slot)
		}
		weights[latest] += w
	}
	active := map[string]bool{}
	for _, rw := range cur {
		active[rw.Revision] = true
	}
	holders := 0
	for rev, w := range weights {
		if !active[rev] {
			return baton.Errorf(baton.ECONFLICT, "revision %s is not an active revision of slot %s (active: %s); activate it first with `baton revisions activate %s %s`",
				rev, p.d.Slot, names(cur), p.d.App, rev)
		}
		if w > 0 {
			holders++
			if c.healthyCount(rev, p.d.Slot) == 0 {
				return baton.Errorf(baton.ECONFLICT, "revision %s has no healthy instance; traffic goes only to healthy revisions", rev)
			}
		}
	}
	if app.RevisionMode != baton.RevisionsMultiple && holders > 1 {
		return baton.Errorf(baton.ECONFLICT, "app %s is in single revision mode: only one revision may hold traffic; set revision_mode to multiple (`baton apps set %s --revision-mode multiple`) to split it", p.d.App, p.d.App)
	}
	next := make([]baton.RevisionWeight, len(cur))
	for i, rw := range cur {
		next[i] = baton.RevisionWeight{Revision: rw.Revision, Weight: weights[rw.Revision]}
	}
	return c.route(p, map[string][]baton.RevisionWeight{p.d.Slot: next})
}

func (c *Coordinator) stabilize(ctx context.Context, p *pipeline, rev string) error {
	cur := c.slotRouting(p.d.App, p.d.Slot)
	if rev == "" {
		for _, name := range byNewest(cur) {
			if c.healthyCount(name, p.d.Slot) > 0 {
				rev = name
				break
			}
		}
		if rev == "" {
			return baton.Errorf(baton.ECONFLICT, "slot %s has no active revision with a healthy instance to stabilize on; deploy one", p.d.Slot)
		}
	} else if !contains(cur, rev) {
		return baton.Errorf(baton.ECONFLICT, "revision %s is not active in slot %s (active: %s)", rev, p.d.Slot, names(cur))
	} else if c.healthyCount(rev, p.d.Slot) == 0 {
		return baton.Errorf(baton.ECONFLICT, "revision %s has no healthy instance; stabilize on another (active: %s)", rev, names(cur))
	}
	var others []string
	for _, rw := range cur {
		if rw.Revision != rev {
			others = append(others, rw.Revision)
		}
	}
	c.logf(p.d.ID, "stabilize: %s takes 100%%; deactivating %s", rev, orNone(others))
	return c.route(p, map[string][]baton.RevisionWeight{p.d.Slot: {{Revision: rev, Weight: 100}}})
}

func (c *Coordinator) activate(ctx context.Context, p *pipeline, name string) error {
	r, err := c.cfg.Store.Revision(ctx, name)
	if err != nil || r.App != p.d.App {
		return baton.Errorf(baton.ENOTFOUND, "revision %s of app %s does not exist", name, p.d.App)
	}
	if r.Active {
		return baton.Errorf(baton.ECONFLICT, "revision %s is already active in slot %s", name, r.Slot)
	}
	if _, err := os.Stat(c.revisionDir(r.App, r.Name)); err != nil {
		return baton.Errorf(baton.ECONFLICT, "the files of revision %s were removed (only the newest %d inactive revisions are kept); deploy its artifact again", name, KeepInactive)
	}
	r.Slot = p.d.Slot
	if err := p.enter(baton.PhaseStarting); err != nil {
		return err
	}
	in, err := c.launch(ctx, r, p.d.ID)
	if err != nil {
		return err
	}
	in.log.Detach()
	in.group.SetLive()
	c.addRunning(in)
	next := append(c.slotRouting(p.d.App, p.d.Slot), baton.RevisionWeight{Revision: name, Weight: 0})
	if err := c.route(p, map[string][]baton.RevisionWeight{p.d.Slot: next}); err != nil {
		c.mu.Lock()
		delete(c.running, runKey{name, p.d.Slot})
		c.mu.Unlock()
		_ = in.stop()
		return err
	}
	return nil
}

func (c *Coordinator) deactivate(ctx context.Context, p *pipeline, name string) error {
	cur := c.slotRouting(p.d.App, p.d.Slot)
	var next []baton.RevisionWeight
	found := false
	for _, rw := range cur {
		if rw.Revision == name {
			found = true
			if rw.Weight > 0 {
				return baton.Errorf(baton.ECONFLICT, "revision %s still has %d%% of the traffic; move it first (`baton traffic set %s …`) or use `baton stabilize %s`", name, rw.Weight, p.d.App, p.d.App)
			}
			continue
		}
		next = append(next, rw)
	}
	if !found {
		return baton.Errorf(baton.ECONFLICT, "revision %s is not active in slot %s", name, p.d.Slot)
	}
	return c.route(p, map[string][]baton.RevisionWeight{p.d.Slot: next})
}

// restartRevision starts fresh instances of an active revision, moves its
// routes to them, and drains the old ones.
func (c *Coordinator) restartRevision(ctx context.Context, p *pipeline, name string) error {
	old := c.runningOf(name, p.d.Slot)
	var rev baton.Revision
	switch {
	case old != nil && old.rev.App == p.d.App:
		rev = old.rev
	case contains(c.slotRouting(p.d.App, p.d.Slot), name):
		// Routed but not running: its start after a restart failed.
		r, err := c.cfg.Store.Revision(ctx, name)
		if err != nil {
			return err
		}
		rev = r
	default:
		return baton.Errorf(baton.ECONFLICT, "revision %s is not running; activate it instead", name)
	}
	if err := p.enter(baton.PhaseStarting); err != nil {
		return err
	}
	in, err := c.launch(ctx, rev, p.d.ID)
	if err != nil {
		return err
	}
	in.log.Detach()
	sctx, err := p.beginSwitch()
	if err != nil {
		_ = in.stop()
		return err
	}
	in.group.SetLive()
	c.addRunning(in) // replaces old in the running table
	c.publishRoutes()
	if old != nil {
		_ = p.enterUncancellable(sctx, baton.PhaseDraining)
		c.retire(old, p.d.ID)
	}
	return nil
}

func contains(rws []baton.RevisionWeight, rev string) bool {
	for _, rw := range rws {
		if rw.Revision == rev {
			return true
		}
	}
	return false
}

func names(rws []baton.RevisionWeight) string {
	out := make([]string, len(rws))
	for i, rw := range rws {
		out[i] = rw.Revision
	}
	return orNone(out)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// byNewest orders revision names newest first (names sort by number).
func byNewest(rws []baton.RevisionWeight) []string {
	out := make([]string, len(rws))
	for i, rw := range rws {
		out[i] = rw.Revision
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

func newest(rws []baton.RevisionWeight) string {
	if n := byNewest(rws); len(n) > 0 {
		return n[0]
	}
	return ""
}

// InstanceHealth reports how many instances of a revision run and how many
// pass their health check (0, 0 when it is not running).
func (c *Coordinator) InstanceHealth(rev string) (healthy, total int) {
	c.mu.Lock()
	var groups []*instances
	for k, in := range c.running {
		if k.rev == rev {
			groups = append(groups, in)
		}
	}
	c.mu.Unlock()
	for _, in := range groups {
		for _, st := range in.group.Status() {
			total++
			if st.Healthy {
				healthy++
			}
		}
	}
	return healthy, total
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
	for _, in := range c.applyRouting(app, nil) {
		c.retire(in, "")
	}
	return nil
}

// KeepInactive is how many inactive revisions keep their files for
// reactivation; older ones are removed after each deployment.
const KeepInactive = 10

// pruneRevisions removes the files of inactive revisions beyond the newest
// KeepInactive. Their records stay in history; activating one says its
// files are gone.
func (c *Coordinator) pruneRevisions(ctx context.Context, app string) {
	revs, err := c.cfg.Store.Revisions(ctx, app) // newest first
	if err != nil {
		return
	}
	kept := 0
	for _, r := range revs {
		if r.Active {
			continue
		}
		if kept < KeepInactive {
			kept++
			continue
		}
		_ = os.RemoveAll(c.revisionDir(app, r.Name))
	}
}

// RevisionLog returns the last max bytes of a revision's instance output.
func (c *Coordinator) RevisionLog(app, rev string, max int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(c.appDir(app), "logs", rev+".log"))
	if err != nil {
		return nil, baton.Errorf(baton.ENOTFOUND, "revision %s of %s has no instance output", rev, app)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	_, err = f.ReadAt(buf, off)
	return buf, err
}

// NextDeployment waits until the app has a deployment or operation accepted
// after seq and returns the oldest such; ok is false when ctx ended first.
func (c *Coordinator) NextDeployment(ctx context.Context, app string, seq int64) (d baton.Deployment, ok bool, err error) {
	for {
		changed := c.Changes()
		recent, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, Limit: 50})
		if err != nil {
			return d, false, err
		}
		for _, r := range recent { // newest first: keep the oldest after seq
			if r.Seq > seq {
				d, ok = r, true
			}
		}
		if ok {
			return d, true, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return d, false, nil
		}
	}
}
