package coordinator

import (
	"context"

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
	app, err := c.cfg.Store.App(ctx, req.App)
	if err != nil {
		return baton.Deployment{}, err
	}
	if rp, ok := req.Params.(baton.RevisionParams); ok && req.Kind == baton.KindActivate {
		// Refused at once rather than failing in the queue; checked again
		// when it runs (operate).
		if err := c.checkActivate(ctx, app, req.Slot, rp.Revision); err != nil {
			return baton.Deployment{}, err
		}
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
	case baton.KindRollback:
		rp, err := baton.DecodeParams[baton.RollbackParams](d.Kind, d.Params)
		if err != nil {
			return err
		}
		return c.rollback(ctx, p, rp)
	case baton.KindScale:
		sp, err := baton.DecodeParams[baton.ScaleParams](d.Kind, d.Params)
		if err != nil {
			return err
		}
		return c.scale(ctx, p, sp)
	case baton.KindStabilize, baton.KindActivate, baton.KindDeactivate, baton.KindRestart:
		rp, err := baton.DecodeParams[baton.RevisionParams](d.Kind, d.Params)
		if err != nil {
			return err
		}
		switch d.Kind {
		case baton.KindStabilize:
			return c.stabilize(ctx, p, rp.Revision)
		case baton.KindActivate:
			app, err := c.cfg.Store.App(ctx, d.App)
			if err == nil {
				err = c.checkActivate(ctx, app, d.Slot, rp.Revision)
			}
			if err != nil {
				return err
			}
			return c.activate(ctx, p, rp.Revision)
		case baton.KindDeactivate:
			return c.deactivate(ctx, p, rp.Revision)
		default:
			return c.restartRevision(ctx, p, rp.Revision)
		}
	}
	return baton.Errorf(baton.EINVALID, "unknown operation %q", d.Kind)
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

// checkActivate applies baton.CheckActivate to the slot's active
// revisions as the store records them.
func (c *Coordinator) checkActivate(ctx context.Context, app baton.App, slot, rev string) error {
	rs, err := c.cfg.Store.Revisions(ctx, app.Name)
	if err != nil {
		return err
	}
	return baton.CheckActivate(app.Name, slot, app.RevisionMode, rev, baton.ActiveBySlot(rs)[slot])
}
