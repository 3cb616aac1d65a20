package coordinator

import (
	"context"

	"github.com/batonhq/baton"
)

// lockBroken is the cause of a run whose lock an operator broke.
type lockBroken struct{ reason string }

func (l lockBroken) Error() string { return l.reason }

// BreakLock removes the app's lease by hand. The holder, if it runs here,
// is stopped and fails with reason "lock broken"; one left by a stopped
// controller is marked failed. Never needed for recovery; it exists for the
// operator who must act now.
func (c *Coordinator) BreakLock(ctx context.Context, app, why string) (baton.Lease, error) {
	key := baton.AppLeaseKey(app)
	l, err := c.cfg.Store.Lease(ctx, key)
	if err != nil {
		return l, baton.Errorf(baton.ENOTFOUND, "app %q holds no lock; nothing to break", app)
	}
	reason := baton.ReasonLockBroken
	if why != "" {
		reason += ": " + why
	}
	c.mu.Lock()
	r := c.runs[l.Holder]
	c.mu.Unlock()
	if r != nil {
		r.mu.Lock()
		if !r.switching {
			r.cancel(lockBroken{reason})
		}
		r.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
			return l, ctx.Err()
		}
	}
	if _, err := c.cfg.Store.BreakLease(ctx, key); err != nil && baton.ErrorCode(err) != baton.ENOTFOUND {
		return l, err
	}
	if _, err := c.cfg.Store.FailInterrupted(ctx, []string{app}); err != nil {
		return l, err
	}
	c.cfg.Metrics.LockBroken()
	c.changes.notify()
	c.kick(app)
	return l, nil
}
