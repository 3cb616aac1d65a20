package coordinator

import (
	"context"
	"sort"
	"strings"

	"github.com/batonhq/baton"
)

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

// setTraffic gives the slot's active revisions new weights; only healthy
// revisions may hold traffic, and only one in single revision mode.
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

// stabilize gives one revision of the slot 100 % (by default the newest
// healthy one) and deactivates the others.
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
