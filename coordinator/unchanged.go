package coordinator

import (
	"context"
	"maps"

	"github.com/batonhq/baton"
)

// A deploy request changes nothing when its artifact and the settings a new
// revision would carry already serve the slot: then no deployment is
// recorded and the answer says so (Submit with Force deploys anyway).
//
// "The settings a new revision would carry" are the slot's non-sticky
// settings, compared with the live revision's snapshot (Revision.Env).
// Sticky settings are not part of a revision: the live instances read them
// from the slot when they start, and every change to a setting is a
// settings operation that restarts the live revision with it — so they are
// what a redeploy would give, unless such an operation changed them and
// then did not go live (failed or was cancelled). That case counts as a
// change (settingsPending): the instances that serve may not run with the
// slot's settings, and a redeploy would change that. (If they picked them
// up since, by a restart, the deployment is merely redundant.)
//
// The comparison reads several records; what makes it one consistent look
// is that it begins with nothing of the app queued or running and the
// app's newest deployment Seq, and Enqueue, in the transaction that would
// otherwise queue the request, checks that still nothing is queued or
// running, nothing newer than Seq exists and the revision still serves
// with its weight (baton.LiveCheck). Revisions, routing and settings only
// change through the app's deployments (deleting a slot deactivates its
// revisions), so nothing compared can have changed in between: the answer
// is as if given at that moment, and a deploy racing it is queued after
// it as usual.

// unchanged compares a deploy of digest to app's slot, asking for weight
// (multiple mode), with what serves there. It returns what Enqueue must
// find still true, or nil when the deploy would change something, or when
// it cannot tell (then the deploy goes ahead: the worst case of not
// knowing is one redundant deployment).
func (c *Coordinator) unchanged(ctx context.Context, app, slot, digest string, weight int) *baton.LiveCheck {
	check, err := c.compareLive(ctx, app, slot, digest, weight)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("compare a deploy with what serves; deploying it", "app", app, "slot", slot, "err", err)
		}
		return nil
	}
	return check
}

func (c *Coordinator) compareLive(ctx context.Context, app, slot, digest string, weight int) (*baton.LiveCheck, error) {
	st := c.cfg.Store
	// Newest first, then the busy check: anything accepted after this
	// look has a greater Seq.
	newest, err := st.Deployments(ctx, baton.DeploymentFilter{App: app, Limit: 1})
	if err != nil || len(newest) == 0 {
		return nil, err
	}
	busy, err := st.Deployments(ctx, baton.DeploymentFilter{App: app, States: []baton.State{baton.StateQueued, baton.StateRunning}, Limit: 1})
	if err != nil || len(busy) > 0 {
		return nil, err
	}
	a, err := st.App(ctx, app)
	if err != nil {
		return nil, err
	}
	revs, err := st.Revisions(ctx, app)
	if err != nil {
		return nil, err
	}
	var active []baton.Revision
	for _, r := range revs {
		if r.Active && r.Slot == slot {
			active = append(active, r)
		}
	}
	env, err := c.nonStickyEnv(ctx, app, slot)
	if err != nil {
		return nil, err
	}
	r, ok := standIn(a.RevisionMode, active, weight, func(r baton.Revision) bool {
		return r.ArtifactDigest == digest && maps.Equal(r.Env, env)
	})
	if !ok {
		return nil, nil
	}
	if pending, err := c.settingsPending(ctx, r); err != nil || pending {
		return nil, err
	}
	return &baton.LiveCheck{Revision: r.Name, Weight: r.Weight, Seq: newest[0].Seq}, nil
}

// standIn returns the revision that makes a new one, equal to it by same,
// redundant: when after the deploy every request would still reach the
// same artifact with the same settings, and no other revision would be
// added or stopped. active are the slot's active revisions. The heaviest
// equal revision is returned.
//
//   - The new revision takes 100 % and the others stop (single mode, a
//     weight of 100, or nothing has traffic yet): redundant when every
//     active revision is equal and they carry the slot's 100 %.
//   - Multiple mode, no weight asked: it joins with 0 %; redundant when an
//     equal revision is already active.
//   - Multiple mode, a weight between: the others are scaled down to make
//     room for it; redundant when every revision with traffic is equal.
func standIn(mode string, active []baton.Revision, weight int, same func(baton.Revision) bool) (baton.Revision, bool) {
	var best *baton.Revision
	total, allSame, trafficSame := 0, true, true
	for i, r := range active {
		total += r.Weight
		if same(r) {
			if best == nil || r.Weight > best.Weight {
				best = &active[i]
			}
			continue
		}
		allSame = false
		if r.Weight > 0 {
			trafficSame = false
		}
	}
	if best == nil {
		return baton.Revision{}, false
	}
	var ok bool
	switch {
	case mode != baton.RevisionsMultiple || weight >= 100 || total == 0:
		ok = allSame && total == 100
	case weight <= 0:
		ok = true
	default:
		ok = trafficSame
	}
	return *best, ok
}

// settingsPending reports whether a settings operation of r's slot began
// after r was created and did not succeed: its settings are the slot's but
// not those the live instances run with.
func (c *Coordinator) settingsPending(ctx context.Context, r baton.Revision) (bool, error) {
	created, err := c.cfg.Store.Deployment(ctx, r.Deployment)
	if err != nil {
		return false, err
	}
	const limit = 100
	ended, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: r.App,
		States: []baton.State{baton.StateFailed, baton.StateCancelled, baton.StateSuperseded}, Limit: limit})
	if err != nil {
		return false, err
	}
	for _, d := range ended {
		if d.Seq <= created.Seq {
			return false, nil
		}
		if d.Kind == baton.KindConfig && d.Slot == r.Slot && d.StartedAt != nil {
			return true, nil
		}
	}
	// Cannot tell beyond the newest ones: count it as pending.
	return len(ended) == limit, nil
}
