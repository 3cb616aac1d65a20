package coordinator

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// Swap queues a swap of two slots' live revisions through the app's queue
// and lock.
func (c *Coordinator) Swap(ctx context.Context, req baton.OpRequest, sp baton.SwapParams) (baton.Deployment, error) {
	if err := sp.Check(); err != nil {
		return baton.Deployment{}, err
	}
	a, err := c.cfg.Store.App(ctx, req.App)
	if err != nil {
		return baton.Deployment{}, err
	}
	for _, s := range []string{sp.Source, sp.Target} {
		if _, ok := a.Slot(s); !ok {
			return baton.Deployment{}, baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist; create it with `baton slots create %s %s`", s, req.App, req.App, s)
		}
	}
	req.Kind, req.Slot, req.Params = baton.KindSwap, sp.Target, sp
	return c.SubmitOp(ctx, req)
}

// CompleteSwap lets a swap that waits in preview continue to its switch.
func (c *Coordinator) CompleteSwap(ctx context.Context, id string) (baton.Deployment, error) {
	d, err := c.cfg.Store.Deployment(ctx, id)
	if err != nil {
		return d, err
	}
	c.mu.Lock()
	r := c.runs[id]
	c.mu.Unlock()
	if d.Kind != baton.KindSwap || r == nil || d.Phase != baton.PhaseAwaitingCompletion {
		return d, baton.Errorf(baton.ECONFLICT, "%s is not a swap awaiting completion (it is %s %s, phase %s)", id, d.Kind, d.State, orDash(string(d.Phase)))
	}
	select {
	case r.resume <- struct{}{}:
	default:
	}
	return c.Wait(ctx, id)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// swap runs a KindSwap operation: start the source slot's revision with the
// target's sticky settings, warm it up, optionally wait for completion
// (preview), start the target's revision with the source's sticky
// settings, then switch both slots in one step and drain the old instances.
// Any failure before the switch stops what was started: nothing changed.
func (c *Coordinator) swap(ctx context.Context, p *pipeline, sp baton.SwapParams) error {
	app := p.d.App
	src := heaviest(c.slotRouting(app, sp.Source))
	tgt := heaviest(c.slotRouting(app, sp.Target))
	if src == "" {
		return baton.Errorf(baton.ECONFLICT, "slot %s has no live revision to swap into %s; deploy to it first", sp.Source, sp.Target)
	}
	c.logf(p.d.ID, "swap: %s (%s) ⇄ %s (%s)", sp.Source, src, sp.Target, orDash(tgt))

	var started []*instances
	installed := false
	defer func() {
		if !installed {
			for _, in := range started {
				_ = in.stop()
			}
		}
	}()
	// 1. The source revision with the target's sticky settings.
	if err := p.enter(baton.PhaseStarting); err != nil {
		return err
	}
	srcRev, err := c.cfg.Store.Revision(ctx, src)
	if err != nil {
		return err
	}
	srcRev.Slot = sp.Target
	newSrc, err := c.startRevision(ctx, revisionStart{rev: srcRev, dep: p.d.ID})
	if err != nil {
		return fmt.Errorf("start %s with %s's settings: %w", src, sp.Target, err)
	}
	newSrc.log.Detach()
	started = append(started, newSrc)
	c.logf(p.d.ID, "%s runs with %s's sticky settings on %v", src, sp.Target, newSrc.group.Addrs())
	// 2. Warm it up.
	if err := p.enter(baton.PhaseWarming); err != nil {
		return err
	}
	if err := c.warm(ctx, p, newSrc, sp.Target); err != nil {
		return err
	}
	// 3. Preview: the source host serves the new instances until complete.
	if sp.Preview {
		if err := c.preview(ctx, p, sp, newSrc); err != nil {
			return err
		}
	}
	// 4. The target's revision with the source's sticky settings.
	var newTgt *instances
	if tgt != "" {
		if err := p.enter(baton.PhaseStarting); err != nil {
			return err
		}
		tgtRev, err := c.cfg.Store.Revision(ctx, tgt)
		if err != nil {
			return err
		}
		tgtRev.Slot = sp.Source
		if newTgt, err = c.startRevision(ctx, revisionStart{rev: tgtRev, dep: p.d.ID}); err != nil {
			return fmt.Errorf("start %s with %s's settings: %w", tgt, sp.Source, err)
		}
		newTgt.log.Detach()
		started = append(started, newTgt)
		if err := p.enter(baton.PhaseWarming); err != nil {
			return err
		}
		if err := c.warm(ctx, p, newTgt, sp.Source); err != nil {
			return err
		}
	}
	// 5. Switch both slots at once.
	slots := map[string][]baton.RevisionWeight{sp.Target: {{Revision: src, Weight: 100}}, sp.Source: nil}
	add := []*instances{newSrc}
	if newTgt != nil {
		slots[sp.Source] = []baton.RevisionWeight{{Revision: tgt, Weight: 100}}
		add = append(add, newTgt)
	}
	// Not installed, the deferred clean-up stops what was started.
	installed, err = p.switchTo(switchRoutes{slots: slots, start: add, notes: []string{
		fmt.Sprintf("%s now serves %s; %s now serves %s", src, c.host(app, sp.Target), orDash(tgt), c.host(app, sp.Source))}})
	return err
}

// preview routes the source slot to the new instances (the source's code
// with the target's settings) and waits for CompleteSwap; a cancel puts the
// source slot back on its own instances.
func (c *Coordinator) preview(ctx context.Context, p *pipeline, sp baton.SwapParams, newSrc *instances) error {
	app := p.d.App
	pv := *newSrc
	pv.rev.Slot = sp.Source
	old := c.addRunning(&pv)
	c.publishRoutes()
	if old != nil {
		c.retire(old, p.d.ID)
	}
	if err := p.enter(baton.PhaseAwaitingCompletion); err != nil {
		return err
	}
	limit := sp.PreviewLimit()
	c.logf(p.d.ID, "preview: %s serves %s with %s's settings; complete with `baton swap complete %s` or cancel with `baton swap cancel %s` within %s, else it is cancelled",
		c.host(app, sp.Source), pv.rev.Name, sp.Target, p.d.ID, p.d.ID, limit)
	expired := time.NewTimer(limit)
	defer expired.Stop()
	select {
	case <-p.r.resume:
		c.logf(p.d.ID, "preview completed")
		return nil
	case <-ctx.Done():
	case <-expired.C:
		// As `baton swap cancel` does, unless a cancel came first.
		reason := fmt.Sprintf("the preview was not completed within its preview timeout of %s; cancelled by baton", limit)
		c.cancelRun(p.d.ID, reason)
		<-ctx.Done()
		if err := c.cfg.Store.AddAudit(context.WithoutCancel(ctx), baton.AuditEntry{Actor: "baton", Action: "swap.cancel",
			Target: p.d.ID, Detail: "preview expired after " + limit.String(), Outcome: "ok"}); err != nil {
			c.log.Error("write audit entry", "action", "swap.cancel", "err", err)
		}
	}
	// Cancelled: restore the source slot with its own settings.
	rctx := context.WithoutCancel(ctx)
	rev, err := c.cfg.Store.Revision(rctx, pv.rev.Name)
	if err == nil {
		var back *instances
		if back, err = c.startRevision(rctx, revisionStart{rev: rev, dep: p.d.ID}); err == nil {
			back.log.Detach()
			back.group.SetLive()
			c.addRunning(back)
			c.publishRoutes()
			c.logf(p.d.ID, "preview cancelled: %s serves %s with its own settings again", c.host(app, sp.Source), rev.Name)
		}
	}
	if err != nil {
		c.log.Error("restore source slot after a cancelled preview", "app", app, "err", err)
	}
	c.retire(newSrc, "")
	return context.Cause(ctx)
}

// warm requests each warm-up path on each instance (header Baton-Warmup: 1,
// no redirects followed) until it answers acceptably, up to the retry limit.
func (c *Coordinator) warm(ctx context.Context, p *pipeline, in *instances, slot string) error {
	m, err := loadManifest(c.revisionDir(in.rev.App, in.rev.Name))
	if err != nil {
		return err
	}
	w := m.Warmup
	settings, err := c.cfg.Store.Settings(ctx, in.rev.App, slot)
	if err != nil {
		return err
	}
	for _, s := range settings {
		switch s.Key {
		case "BATON_SWAP_WARMUP_PATH":
			w.Paths = strings.Split(s.Value, ",")
		case "BATON_SWAP_WARMUP_STATUSES":
			w.Statuses = nil
			for _, f := range strings.Split(s.Value, ",") {
				if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
					w.Statuses = append(w.Statuses, n)
				}
			}
		}
	}
	client := &http.Client{
		Timeout:       w.Timeout,
		Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	for _, addr := range in.group.Addrs() {
		for _, path := range w.Paths {
			if err := warmOne(ctx, client, addr, strings.TrimSpace(path), w, func(msg string) { c.logf(p.d.ID, "%s", msg) }); err != nil {
				return err
			}
		}
	}
	c.logf(p.d.ID, "warmed up %s on %v (%s)", in.rev.Name, in.group.Addrs(), strings.Join(w.Paths, ", "))
	return nil
}

func warmOne(ctx context.Context, client *http.Client, addr, path string, w baton.WarmupSpec, note func(string)) error {
	last := ""
	for attempt := 1; attempt <= w.Retries; attempt++ {
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Baton-Warmup", "1")
		resp, err := client.Do(req)
		switch {
		case err != nil:
			last = err.Error()
		default:
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if len(w.Statuses) == 0 || slices.Contains(w.Statuses, resp.StatusCode) {
				return nil
			}
			last = warmupStatusRefused(resp, w.Statuses)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		note(fmt.Sprintf("warm-up %s on %s, attempt %d/%d: %s", path, addr, attempt, w.Retries, last))
		if !sleepCtx(ctx, time.Duration(attempt)*200*time.Millisecond) {
			return context.Cause(ctx)
		}
	}
	return baton.Errorf(baton.EUNPROCESSABLE, "warm-up of %s on %s failed %d times (last: %s); the swap is reverted", path, addr, w.Retries, last)
}

// warmupStatusRefused says why a warm-up answer does not count, and for a
// redirect, that warm-ups do not follow redirects and how to accept it.
func warmupStatusRefused(resp *http.Response, statuses []int) string {
	msg := fmt.Sprintf("status %d is not one of %v", resp.StatusCode, statuses)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if loc := resp.Header.Get("Location"); loc != "" {
			msg += fmt.Sprintf(" (a redirect to %s", loc)
		} else {
			msg += " (a redirect"
		}
		msg += fmt.Sprintf("; warm-ups do not follow redirects: add %d to [warmup] statuses in baton.toml or to the slot setting BATON_SWAP_WARMUP_STATUSES, or warm a path that answers itself)", resp.StatusCode)
	}
	return msg
}

// autoSwap queues a swap after a successful deployment into a slot that
// has auto_swap_to set.
func (c *Coordinator) autoSwap(p *pipeline) {
	if p.d.Kind != baton.KindDeploy && p.d.Kind != baton.KindConfig {
		return
	}
	ctx := context.WithoutCancel(p.r.ctx)
	a, err := c.cfg.Store.App(ctx, p.d.App)
	if err != nil {
		return
	}
	s, ok := a.Slot(p.d.Slot)
	if !ok || s.AutoSwapTo == "" {
		return
	}
	d, err := c.Swap(ctx, baton.OpRequest{App: p.d.App, Author: p.d.Author, Message: "auto-swap after " + p.d.ID, Policy: baton.PolicyQueue},
		baton.SwapParams{Source: p.d.Slot, Target: s.AutoSwapTo})
	if err != nil {
		c.logf(p.d.ID, "auto-swap to %s could not be queued: %s", s.AutoSwapTo, baton.ErrorMessage(err))
		return
	}
	c.logf(p.d.ID, "%s%s", baton.AutoSwapPrefix, d.ID)
}
