package coordinator

import (
	"context"
	"fmt"
	"strings"

	"github.com/batonhq/baton"
)

// rollbackCandidates bounds how many revisions a refused rollback names.
const rollbackCandidates = 5

// Rollback queues a rollback of the request's slot: an ordinary operation
// (lease, conflict policy, health-gated switch, drain), allowed while the
// app is frozen. The target is chosen now, so the operation runs what the
// operator saw: rp.To as a revision name or the id of the deployment that
// created it, or without it the revision that served before the current
// one. A target that cannot be rolled back to (another app's, one that
// never went live, one whose artifact is gone) is refused now, naming the
// revisions that can.
func (c *Coordinator) Rollback(ctx context.Context, req baton.OpRequest, rp baton.RollbackParams) (baton.Deployment, error) {
	if req.Slot == "" {
		req.Slot = baton.ProductionSlot
	}
	target, err := c.rollbackTarget(ctx, req.App, req.Slot, rp.To)
	if err != nil {
		return baton.Deployment{}, err
	}
	rp.To = target.Name
	req.Kind, req.Params = baton.KindRollback, rp
	if req.Message == "" {
		req.Message = "rollback to " + target.Name
	}
	return c.SubmitOp(ctx, req)
}

// rollbackTarget resolves what a rollback of app's slot goes back to, and
// checks that it can: a revision of the app, created by a deployment that
// succeeded, whose artifact is still kept (its folder may be gone: it is
// unpacked and built again), and that does not serve the slot alone now.
func (c *Coordinator) rollbackTarget(ctx context.Context, app, slot, to string) (baton.Revision, error) {
	history, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, Limit: 200})
	if err != nil {
		return baton.Revision{}, err
	}
	serving := c.servingRevision(app, slot)
	name := to
	switch {
	case to == "":
		for _, d := range history { // newest first
			if d.Slot == slot && d.State == baton.StateSucceeded && d.Revision != "" && d.Revision != serving && putsLive(d.Kind) {
				name = d.Revision
				break
			}
		}
		if name == "" {
			return baton.Revision{}, c.noRollback(ctx, app, slot, history, fmt.Sprintf("slot %s has no earlier revision that served it", slot))
		}
	case strings.HasPrefix(to, "d-"):
		d, err := c.cfg.Store.Deployment(ctx, to)
		if err != nil || d.App != app || d.Revision == "" {
			return baton.Revision{}, c.noRollback(ctx, app, slot, history, fmt.Sprintf("deployment %s did not create a revision of app %s", to, app))
		}
		name = d.Revision
	}
	r, err := c.cfg.Store.Revision(ctx, name)
	if err != nil || r.App != app {
		return baton.Revision{}, c.noRollback(ctx, app, slot, history, fmt.Sprintf("%s is not a revision of app %s", name, app))
	}
	if !wentLive(history, r) {
		return baton.Revision{}, c.noRollback(ctx, app, slot, history, fmt.Sprintf("%s never went live (its deployment did not succeed)", name))
	}
	if name == serving {
		return baton.Revision{}, c.noRollback(ctx, app, slot, history, fmt.Sprintf("%s already serves slot %s", name, slot))
	}
	if r.ArtifactDigest == "" || c.localArtifact(ctx, r.ArtifactDigest) != nil {
		return baton.Revision{}, c.noRollback(ctx, app, slot, history, fmt.Sprintf("the artifact of %s is no longer kept", name))
	}
	return r, nil
}

// putsLive reports whether a succeeded operation of kind k made its
// revision serve its slot.
func putsLive(k baton.Kind) bool {
	return k == baton.KindDeploy || k == baton.KindConfig || k == baton.KindRollback
}

// wentLive reports whether r was created by a deployment that succeeded,
// or served its slot through a rollback.
func wentLive(history []baton.Deployment, r baton.Revision) bool {
	for _, d := range history {
		if d.State == baton.StateSucceeded && (d.ID == r.Deployment || d.Revision == r.Name) {
			return true
		}
	}
	return false
}

// servingRevision is the revision that holds the slot's traffic alone,
// "" when several share it or none does.
func (c *Coordinator) servingRevision(app, slot string) string {
	serving := ""
	for _, rw := range c.slotRouting(app, slot) {
		if rw.Weight > 0 {
			if serving != "" {
				return ""
			}
			serving = rw.Revision
		}
	}
	return serving
}

// noRollback is the refusal of a rollback: why, and which revisions of the
// slot can be rolled back to.
func (c *Coordinator) noRollback(ctx context.Context, app, slot string, history []baton.Deployment, why string) error {
	serving := c.servingRevision(app, slot)
	seen := map[string]bool{serving: true}
	var can []string
	for _, d := range history {
		if len(can) == rollbackCandidates {
			break
		}
		if d.Slot != slot || d.State != baton.StateSucceeded || !putsLive(d.Kind) || d.Revision == "" || seen[d.Revision] {
			continue
		}
		seen[d.Revision] = true
		if r, err := c.cfg.Store.Revision(ctx, d.Revision); err == nil && r.ArtifactDigest != "" && c.localArtifact(ctx, r.ArtifactDigest) == nil {
			can = append(can, fmt.Sprintf("%s (%s)", d.Revision, d.ID))
		}
	}
	list := "none"
	if len(can) > 0 {
		list = strings.Join(can, ", ")
	}
	return baton.Errorf(baton.EUNPROCESSABLE, "cannot roll back %s/%s: %s. Revisions it can roll back to, newest first: %s", app, slot, why, list)
}

// rollback runs a KindRollback operation: the target revision (its folder
// unpacked and built again from its artifact if it was pruned) starts with
// the settings it was deployed with, or as a new revision with the slot's
// settings of now (CurrentSettings); once healthy it takes 100 % of the
// slot and everything else there drains and stops.
func (c *Coordinator) rollback(ctx context.Context, p *pipeline, rp baton.RollbackParams) error {
	target, err := c.rollbackTarget(ctx, p.d.App, p.d.Slot, rp.To)
	if err != nil {
		return err
	}
	if rp.CurrentSettings {
		env, err := c.nonStickyEnv(ctx, p.d.App, p.d.Slot)
		if err != nil {
			return err
		}
		fresh, err := c.cfg.Store.CreateRevision(ctx, p.fence, baton.Revision{
			App: p.d.App, Slot: p.d.Slot, Deployment: p.d.ID, ArtifactDigest: target.ArtifactDigest, Env: env, Source: target.Name})
		if err != nil {
			return err
		}
		c.logf(p.d.ID, "rollback: the code of %s with the slot's current settings, as %s", target.Name, fresh.Name)
		target = fresh
	} else {
		c.logf(p.d.ID, "rollback: %s with the settings it was deployed with", target.Name)
	}
	target.Slot = p.d.Slot
	p.rev = target.Name
	if err := p.enter(baton.PhaseStarting); err != nil {
		return err
	}
	in, err := c.startRevision(ctx, revisionStart{rev: target, dep: p.d.ID})
	if err != nil {
		return err
	}
	in.log.Detach()
	slots := map[string][]baton.RevisionWeight{p.d.Slot: {{Revision: target.Name, Weight: 100}}}
	installed, err := p.switchTo(switchRoutes{slots: slots, start: []*instances{in}, notes: c.describeSlots(p.d.App, slots)})
	if !installed {
		_ = in.stop()
	}
	return err
}
