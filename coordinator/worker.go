package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/batonhq/baton"
)

// worker runs one app's queue, one deployment at a time, under the app lease.
type worker struct {
	app     string
	pending bool // guarded by Coordinator.mu: work arrived since the last look
	wake    chan struct{}
	done    chan struct{}
}

// run is a deployment being executed by this controller.
type run struct {
	d      baton.Deployment
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}

	mu sync.Mutex
	// switching is set when routing starts to change; from then on the
	// deployment completes and cancels are ignored.
	switching bool
	// resume receives the completion of a swap awaiting it (preview).
	resume chan struct{}
	// fences are resource leases held besides the app lease; the heartbeat
	// renews them too.
	fences []baton.Fence
	// manifest is the manifest of the revision the run works on, once
	// known: its timeouts are the phases' deadlines (see phaseDeadline).
	manifest *baton.Manifest
}

func (r *run) setManifest(m baton.Manifest) {
	r.mu.Lock()
	r.manifest = &m
	r.mu.Unlock()
}

func (r *run) addFence(f baton.Fence) {
	r.mu.Lock()
	r.fences = append(r.fences, f)
	r.mu.Unlock()
}

// cancelled is the cause of a run's context when someone cancelled it.
type cancelled struct{ reason string }

func (c cancelled) Error() string { return c.reason }

// lostLease is the cause when the heartbeat finds the lease taken over.
var errLostLease = errors.New("the deployment lost its lock: its lease expired and was taken over")

// maxRestoreBackoff bounds the wait between attempts to start a routed
// revision that failed to start after a restart.
const maxRestoreBackoff = 30 * time.Second

// kick makes sure a worker looks at app's queue soon.
func (c *Coordinator) kick(app string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.workers[app]; w != nil {
		w.pending = true
		select {
		case w.wake <- struct{}{}:
		default:
		}
		return
	}
	c.startWorkerLocked(app, false)
}

func (c *Coordinator) startWorker(app string, restore bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startWorkerLocked(app, restore)
}

func (c *Coordinator) startWorkerLocked(app string, restore bool) {
	if c.closed || !c.apps[app] || c.workers[app] != nil {
		return
	}
	w := &worker{app: app, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.workers[app] = w
	c.wg.Add(1)
	go c.work(w, restore)
}

func (c *Coordinator) work(w *worker, restore bool) {
	defer c.wg.Done()
	defer close(w.done)
	// A routed revision that failed to start again (its port was taken
	// meanwhile, say) is retried while the queue is empty, backing off.
	restoring := restore && !c.restoreApp(w.app)
	backoff := time.Second
	for c.ctx.Err() == nil {
		c.mu.Lock()
		w.pending = false
		if c.pausing {
			c.mu.Unlock()
			break // Handoff: the next process works the queue
		}
		c.mu.Unlock()
		next, err := c.cfg.Store.Deployments(c.ctx, baton.DeploymentFilter{
			App: w.app, States: []baton.State{baton.StateQueued}, Oldest: true, Limit: 1})
		if err != nil {
			c.log.Error("read queue", "app", w.app, "err", err)
			if !sleepCtx(c.ctx, time.Second) {
				break
			}
			continue
		}
		if len(next) == 0 && restoring {
			select {
			case <-c.ctx.Done():
			case <-w.wake:
			case <-time.After(backoff):
				backoff = min(2*backoff, maxRestoreBackoff)
			}
			c.mu.Lock()
			pausing := c.pausing
			c.mu.Unlock()
			if !pausing && c.ctx.Err() == nil { // else the loop ends the worker
				restoring = !c.restoreApp(w.app)
			}
			continue
		}
		if len(next) == 0 {
			c.mu.Lock()
			if w.pending {
				c.mu.Unlock()
				continue
			}
			delete(c.workers, w.app)
			c.mu.Unlock()
			return
		}
		c.runDeployment(next[0])
	}
	c.mu.Lock()
	delete(c.workers, w.app)
	c.mu.Unlock()
}

// acquire takes the app lease for holder, waiting while another holder's
// lease is alive (another controller, or one not yet expired after a crash).
func (c *Coordinator) acquire(app, holder string) (baton.Fence, error) {
	for {
		l, err := c.cfg.Store.AcquireLease(c.ctx, baton.AppLeaseKey(app), holder, c.cfg.LeaseTTL)
		if err == nil {
			return baton.Fence{Key: l.Key, Token: l.Token}, nil
		}
		if baton.ErrorCode(err) != baton.ECONFLICT {
			return baton.Fence{}, err
		}
		wait := time.Second
		if cur, lerr := c.cfg.Store.Lease(c.ctx, baton.AppLeaseKey(app)); lerr == nil {
			if until := cur.ExpiresAt.Sub(c.cfg.Now()); until > 0 && until < wait {
				wait = until
			}
		}
		if !sleepCtx(c.ctx, wait) {
			return baton.Fence{}, context.Cause(c.ctx)
		}
	}
}

func (c *Coordinator) runDeployment(d baton.Deployment) {
	waitStart := time.Now()
	fence, err := c.acquire(d.App, d.ID)
	c.cfg.Metrics.ObserveLeaseWait(time.Since(waitStart))
	if err != nil {
		if c.ctx.Err() == nil {
			c.log.Error("acquire app lease", "app", d.App, "err", err)
		}
		return
	}
	bg := context.WithoutCancel(c.ctx)
	release := func() {
		if err := c.cfg.Store.ReleaseLease(bg, fence); err != nil && !errors.Is(err, baton.ErrStaleToken) {
			c.log.Error("release app lease", "app", d.App, "err", err)
		}
	}
	ctx, cancel := context.WithCancelCause(c.ctx)
	defer cancel(nil)
	r := &run{d: d, ctx: ctx, cancel: cancel, done: make(chan struct{}), resume: make(chan struct{}, 1)}
	// Registered before it starts, so a cancel that finds it queued in the
	// store but started here still reaches it.
	c.mu.Lock()
	c.runs[d.ID] = r
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.runs, d.ID)
		c.mu.Unlock()
		close(r.done)
		c.changes.notify()
	}()
	d, err = c.cfg.Store.StartDeployment(ctx, fence, d.ID)
	if err != nil {
		release() // cancelled or superseded while we took the lock
		return
	}
	r.d = d
	c.depApps.Store(d.ID, d.App)
	c.forgetSecrets(d.App) // read again: another controller may have changed them
	c.logf(d.ID, "started (lock token %d)", fence.Token)
	c.changes.notify()

	hbDone := make(chan struct{})
	hbStop := make(chan struct{})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(hbDone)
		c.heartbeat(r, fence, hbStop)
	}()

	// Collection leaves the app's files alone while it runs.
	g := c.gate(d.App)
	g.Lock()
	state, reason := c.execute(r, fence)
	g.Unlock()
	close(hbStop)
	<-hbDone
	reason = c.masker(d.App).Mask(reason) // it may quote output

	// The last log line goes before the state, so a reader that sees the
	// final state has every line.
	if reason != "" {
		c.logf(d.ID, "deployment %s: %s", state, reason)
	} else {
		c.logf(d.ID, "deployment %s", state)
	}
	// Finishing releases the lease in the same write; only if that failed
	// is the lease released on its own (or left to expire).
	if err := c.cfg.Store.FinishDeployment(bg, fence, d.ID, state, reason); err != nil {
		c.log.Error("record deployment result", "deployment", d.ID, "err", err)
		release()
	}
	c.cfg.Metrics.ObserveFinished(d.App, string(d.Kind), string(state), d.Duration(c.cfg.Now()))
	if c.cfg.OnFinished != nil {
		if fd, err := c.cfg.Store.Deployment(bg, d.ID); err != nil {
			c.log.Warn("read finished deployment for its event", "deployment", d.ID, "err", err)
		} else {
			c.cfg.OnFinished(fd)
		}
	}
	c.requestCollect()
	c.log.Info("deployment finished", "deployment", d.ID, "app", d.App, "state", state, "reason", reason)
}

// heartbeat renews the lease every TTL/3 until stop; if the lease has been
// taken over it cancels the run, whose writes would be refused anyway.
func (c *Coordinator) heartbeat(r *run, f baton.Fence, stop <-chan struct{}) {
	t := time.NewTicker(c.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		fences := append([]baton.Fence{f}, r.fences...)
		r.mu.Unlock()
		for _, fe := range fences {
			_, err := c.cfg.Store.RenewLease(context.WithoutCancel(r.ctx), fe, c.cfg.LeaseTTL)
			if errors.Is(err, baton.ErrStaleToken) && fe == f {
				r.cancel(errLostLease)
				return
			}
			if err != nil && !errors.Is(err, baton.ErrStaleToken) {
				c.log.Warn("renew lease", "deployment", r.d.ID, "key", fe.Key, "err", err)
			}
		}
	}
}

// Cancel stops a queued or running deployment and returns it in its final
// state. A running deployment past the start of switching completes instead.
func (c *Coordinator) Cancel(ctx context.Context, id, reason string) (baton.Deployment, error) {
	if reason == "" {
		reason = "cancelled by request"
	}
	for {
		d, err := c.cfg.Store.Deployment(ctx, id)
		if err != nil {
			return d, err
		}
		if d.State.Final() {
			return d, baton.Errorf(baton.ECONFLICT, "deployment %s already finished: it %s at %s; nothing to cancel",
				id, d.State, d.FinishedAt.Format(time.RFC3339))
		}
		if d.State == baton.StateQueued {
			d, err = c.cfg.Store.CancelQueued(ctx, id, reason)
			if err == nil {
				c.cfg.Store.AppendLog(ctx, id, "cancelled: "+reason)
				c.changes.notify()
				return d, nil
			}
			if baton.ErrorCode(err) != baton.ECONFLICT {
				return d, err
			}
			continue // it started meanwhile
		}
		changed := c.Changes()
		c.mu.Lock()
		r := c.runs[id]
		c.mu.Unlock()
		if r == nil && !c.owns(d.App) {
			a, _ := c.cfg.Store.App(ctx, d.App)
			return d, baton.Errorf(baton.ECONFLICT, "deployment %s runs on controller %s, which alone can stop it; cancel it through that controller's API (see `baton controllers`)", id, a.Controller)
		}
		if r == nil {
			// Running but not here: about to be recorded as finished, or
			// held by a controller that stopped (recovered on its lease's expiry).
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return d, ctx.Err()
			}
		}
		c.cancelRun(id, reason)
		select {
		case <-r.done:
		case <-ctx.Done():
			return d, ctx.Err()
		}
		d, err = c.cfg.Store.Deployment(ctx, id)
		if err == nil && d.State != baton.StateCancelled {
			return d, baton.Errorf(baton.ECONFLICT, "deployment %s had already started switching traffic when the cancel arrived; it finished as %s", id, d.State)
		}
		return d, err
	}
}

// cancelRun cancels a run unless it is switching.
func (c *Coordinator) cancelRun(id, reason string) {
	c.mu.Lock()
	r := c.runs[id]
	c.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.switching {
		r.cancel(cancelled{reason})
	}
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *Coordinator) logf(id, format string, args ...any) {
	// Every line of a deployment log passes here or through logMasked:
	// build, release and app output included. A secret setting's value
	// never reaches the log.
	c.logMasked(id, c.maskLog(id, fmt.Sprintf(format, args...)))
}

// logMasked appends a line whose secrets its caller hid already (command
// and instance output, masked once where it is read for every use).
func (c *Coordinator) logMasked(id, line string) {
	if err := c.cfg.Store.AppendLog(context.WithoutCancel(c.ctx), id, line); err != nil {
		c.log.Warn("append deployment log", "deployment", id, "err", err)
	}
	c.changes.notify()
}
