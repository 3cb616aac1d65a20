package coordinator

import (
	"context"
	"fmt"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
)

// configure applies a settings change (KindConfig) and turns the
// operation into a redeploy of the slot's live artifact with the new
// environment. redeploy is false when there is nothing live to restart.
func (p *pipeline) configure() (redeploy bool, err error) {
	c := p.c
	ch, err := baton.DecodeParams[baton.SettingsChange](p.d.Kind, p.d.Params)
	if err != nil {
		return false, err
	}
	ctx := p.r.ctx
	for _, s := range ch.Set {
		s.App, s.Slot = p.d.App, p.d.Slot
		if err := c.cfg.Store.PutSetting(ctx, p.fence, s); err != nil {
			return false, err
		}
		c.logf(p.d.ID, "set %s=%s%s", s.Key, s.Masked().Value, flags(s))
	}
	for _, k := range ch.Unset {
		if err := c.cfg.Store.DeleteSetting(ctx, p.fence, p.d.App, p.d.Slot, k); err != nil {
			return false, err
		}
		c.logf(p.d.ID, "unset %s", k)
	}
	c.forgetSecrets(p.d.App)
	for _, s := range ch.Set {
		p.changed = append(p.changed, s.Key)
	}
	p.changed = append(p.changed, ch.Unset...)
	live := heaviest(c.slotRouting(p.d.App, p.d.Slot))
	if live == "" {
		c.logf(p.d.ID, "slot %s has no live revision; the settings apply to its next deployment", p.d.Slot)
		return false, nil
	}
	rev, err := c.cfg.Store.Revision(ctx, live)
	if err != nil {
		return false, err
	}
	// An adopted app's artifact may be only in the shared store.
	if err := c.localArtifact(ctx, rev.ArtifactDigest); err != nil {
		return false, fmt.Errorf("artifact of %s: %w", live, err)
	}
	kind := baton.ArtifactImage
	if !baton.IsImageDigest(rev.ArtifactDigest) {
		if kind, err = artifact.DetectType(c.cfg.Artifacts.Path(rev.ArtifactDigest)); err != nil {
			return false, fmt.Errorf("artifact of %s: %w", live, err)
		}
	}
	p.d.ArtifactDigest, p.d.ArtifactType, p.replaces = rev.ArtifactDigest, kind, live
	c.logf(p.d.ID, "restarting %s's artifact as a new revision with the new settings", live)
	return true, nil
}

func flags(s baton.Setting) string {
	out := ""
	if s.Sticky {
		out += " (sticky)"
	}
	if s.Secret {
		out += " (secret)"
	}
	return out
}

// SetSettings changes settings of a slot through the app's queue and lock
// (a settings change restarts the slot's live revision as a new revision).
func (c *Coordinator) SetSettings(ctx context.Context, req baton.OpRequest, ch baton.SettingsChange) (baton.Deployment, error) {
	for i, s := range ch.Set {
		s.App, s.Slot = req.App, req.Slot
		if err := baton.ValidateSetting(s); err != nil {
			return baton.Deployment{}, err
		}
		ch.Set[i] = s
	}
	req.Kind, req.Params = baton.KindConfig, ch
	return c.SubmitOp(ctx, req)
}
