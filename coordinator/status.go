package coordinator

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/batonhq/baton"
)

// LongQueue is the queue length from which status reports a conflict.
const LongQueue = 10

// recentDeployments is how many of an app's newest operations status shows.
const recentDeployments = 10

// Status gathers an app's slots, revisions, instances, running operation,
// queue, recent history and conflicts.
func (c *Coordinator) Status(ctx context.Context, app string) (baton.AppStatus, error) {
	a, err := c.cfg.Store.App(ctx, app)
	if err != nil {
		return baton.AppStatus{}, err
	}
	active, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, States: activeStates, Oldest: true})
	if err != nil {
		return baton.AppStatus{}, err
	}
	recent, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, Limit: recentDeployments})
	if err != nil {
		return baton.AppStatus{}, err
	}
	var lease *baton.Lease
	if l, err := c.cfg.Store.Lease(ctx, baton.AppLeaseKey(app)); err == nil {
		lease = &l
	}
	st := c.statusOf(a, active, recent, lease, c.readHostsRouting(ctx, app), c.cfg.Now())
	for i := range st.Slots {
		// One app's status says its slots' scales (a list of many apps
		// would pay a read per slot for it: there, it is not shown).
		if s, err := c.cfg.Store.Scale(ctx, app, st.Slots[i].Name); err == nil && s.Instances > 0 {
			st.Slots[i].Scale = &s
		}
	}
	return st, nil
}

// Statuses is Status for each of apps, in their order, in three store
// reads whatever their number (the operations queued or running, the
// recent ones of every app, the leases) rather than four per app; with
// other hosts sharing the store, three more (every app's routing
// generation, the hosts' acks, the hosts) rather than two per app.
func (c *Coordinator) Statuses(ctx context.Context, apps []baton.App) ([]baton.AppStatus, error) {
	out := make([]baton.AppStatus, 0, len(apps))
	if len(apps) == 0 {
		return out, nil
	}
	active, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{States: activeStates, Oldest: true})
	if err != nil {
		return nil, err
	}
	recent, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{PerApp: recentDeployments})
	if err != nil {
		return nil, err
	}
	leases, err := c.cfg.Store.Leases(ctx)
	if err != nil {
		return nil, err
	}
	activeOf, recentOf := byApp(active), byApp(recent)
	leaseOf := make(map[string]*baton.Lease, len(leases))
	for i := range leases {
		leaseOf[leases[i].Key] = &leases[i]
	}
	hr := c.readHostsRouting(ctx, "")
	now := c.cfg.Now()
	for _, a := range apps {
		out = append(out, c.statusOf(a, activeOf[a.Name], recentOf[a.Name], leaseOf[baton.AppLeaseKey(a.Name)], hr, now))
	}
	return out, nil
}

// activeStates are the states of an operation that is not over.
var activeStates = []baton.State{baton.StateQueued, baton.StateRunning}

// byApp groups deployments by app, keeping their order.
func byApp(ds []baton.Deployment) map[string][]baton.Deployment {
	out := map[string][]baton.Deployment{}
	for _, d := range ds {
		out[d.App] = append(out[d.App], d)
	}
	return out
}

// statusOf builds app a's status from what the store said of it (its
// queued and running operations oldest first, its recent ones newest
// first, its lease or nil; with other hosts, which routing generation
// each has applied) and from what runs here.
func (c *Coordinator) statusOf(a baton.App, active, recent []baton.Deployment, lease *baton.Lease, hr *hostsRouting, now time.Time) baton.AppStatus {
	app := a.Name
	st := baton.AppStatus{App: a.Name, Controller: a.Controller, RevisionMode: a.RevisionMode, Frozen: a.Frozen, Queue: []baton.Deployment{}, Conflicts: []baton.Conflict{}}
	if u, ok := c.DiskUse(app); ok {
		st.Disk = &u
	}
	for _, s := range a.Slots {
		ss := baton.SlotStatus{Name: s.Name, Host: c.host(app, s.Name), AutoSwapTo: s.AutoSwapTo, Revisions: []baton.RevisionStatus{}}
		for _, rw := range c.statusRouting(app, s.Name) {
			rs := baton.RevisionStatus{Name: rw.Revision, Weight: rw.Weight, Instances: []baton.InstanceStatus{},
				Hosts: c.placementsOf(app, s.Name, rw.Revision)}
			if rst, ok := c.restoreOf(rw.Revision, s.Name); ok {
				rs.State, rs.RestoreError = baton.RevisionRestoring, rst.err
				if rst.err != "" {
					rs.State = baton.RevisionRestoreFailed
				}
			}
			if in := c.servingHere(app, s.Name, rw.Revision); in != nil {
				rs.Image = in.image
				for _, is := range in.group.Status() {
					rs.Instances = append(rs.Instances, baton.InstanceStatus{Addr: is.Addr, PID: is.PID, Healthy: is.Healthy,
						Restarts: is.Restarts, CrashLooping: is.CrashLooping, LastError: is.LastError, StartedAt: is.StartedAt})
					if is.Healthy {
						rs.Healthy++
					}
				}
			}
			ss.Revisions = append(ss.Revisions, rs)
		}
		st.Slots = append(st.Slots, ss)
	}
	for i := range active {
		if active[i].State == baton.StateRunning {
			st.Running = &active[i]
			st.RunningForSeconds = int(active[i].Duration(now).Seconds())
		} else {
			st.Queue = append(st.Queue, active[i])
		}
	}
	st.Recent = recent
	st.Lease = lease
	st.Domains = c.domainStatus(a)
	st.Conflicts = c.conflicts(st, now)
	st.Conflicts = append(st.Conflicts, certConflicts(st, now)...)
	st.Routing, st.Conflicts = c.routingStatus(hr, app, st.Conflicts)
	return st
}

// conflicts finds the states that need an operator, each with its fix.
func (c *Coordinator) conflicts(st baton.AppStatus, now time.Time) []baton.Conflict {
	out := []baton.Conflict{}
	add := func(code, fix, format string, args ...any) {
		out = append(out, baton.Conflict{Code: code, Message: fmt.Sprintf(format, args...), Fix: fix})
	}
	app := st.App
	for _, s := range st.Slots {
		slotFlag := ""
		if s.Name != baton.ProductionSlot {
			slotFlag = " --slot " + s.Name
		}
		total, holders := 0, 0
		var newestHealthy string
		for _, r := range s.Revisions {
			total += r.Weight
			if r.Weight > 0 {
				holders++
			}
			if r.Healthy > 0 && r.Name > newestHealthy {
				newestHealthy = r.Name
			}
		}
		if st.RevisionMode != baton.RevisionsMultiple && len(s.Revisions) > 1 {
			add(baton.ConflictMultipleActive, "baton stabilize "+app+slotFlag,
				"slot %s has %d active revisions but the app is in single revision mode", s.Name, len(s.Revisions))
		}
		if len(s.Revisions) > 0 && total != 100 {
			fix := "baton stabilize " + app + slotFlag
			if newestHealthy != "" {
				fix = fmt.Sprintf("baton traffic set %s %s=100%s", app, newestHealthy, slotFlag)
			}
			add(baton.ConflictWeightsNot100, fix, "the traffic weights of slot %s sum to %d, not 100", s.Name, total)
		}
		for _, r := range s.Revisions {
			switch r.State {
			case baton.RevisionRestoring:
				continue // no healthy instance yet, and none expected yet
			case baton.RevisionRestoreFailed:
				add(baton.ConflictRestoreFailed, fmt.Sprintf("baton deploy %s PATH%s", app, slotFlag),
					"revision %s has %d%% of slot %s's traffic but cannot be started on controller %s: %s; it is retried, and a new deployment replaces it",
					r.Name, r.Weight, s.Name, st.Controller, r.RestoreError)
				continue
			}
			if r.Weight > 0 && r.Healthy == 0 {
				fix := fmt.Sprintf("baton revisions restart %s %s", app, r.Name)
				if newestHealthy != "" && newestHealthy != r.Name {
					fix = fmt.Sprintf("baton stabilize %s --revision %s%s", app, newestHealthy, slotFlag)
				}
				add(baton.ConflictTrafficUnhealthy, fix, "revision %s has %d%% of slot %s's traffic and no healthy instance", r.Name, r.Weight, s.Name)
			}
			for _, in := range r.Instances {
				if in.CrashLooping {
					add(baton.ConflictCrashLooping, fmt.Sprintf("baton revisions restart %s %s", app, r.Name),
						"an instance of %s (%s) is crash-looping after %d restarts: %s", r.Name, in.Addr, in.Restarts, in.LastError)
					break
				}
			}
		}
	}
	if d := st.Running; d != nil && d.Kind == baton.KindSwap && d.Phase == baton.PhaseAwaitingCompletion && d.PhaseStartedAt != nil {
		open := now.Sub(*d.PhaseStartedAt)
		// The run read these params before its preview began; if they
		// cannot be read here, the sentence says so instead of guessing.
		if sp, err := baton.DecodeParams[baton.SwapParams](d.Kind, d.Params); err == nil {
			add(baton.ConflictSwapPreviewOpen, "baton swap complete "+d.ID,
				"swap %s (%s → %s) has waited in preview for %s, holding %s's lock: complete it, or cancel it with `baton swap cancel %s`; it is cancelled automatically in %s",
				d.ID, sp.Source, sp.Target, open.Round(time.Second), app, d.ID, max(sp.PreviewLimit()-open, 0).Round(time.Second))
		} else {
			add(baton.ConflictSwapPreviewOpen, "baton swap complete "+d.ID,
				"swap %s has waited in preview for %s, holding %s's lock: complete it, or cancel it with `baton swap cancel %s` (%s)",
				d.ID, open.Round(time.Second), app, d.ID, baton.ErrorMessage(err))
		}
	}
	if d := st.Running; d != nil && d.PhaseStartedAt != nil {
		if limit := c.phaseLimit(*d); limit > 0 && now.Sub(*d.PhaseStartedAt) > limit {
			add(baton.ConflictPastDeadline, "baton deployments cancel "+d.ID,
				"%s %s has been in phase %s for %s, past its deadline of %s", d.Kind, d.ID, d.Phase, now.Sub(*d.PhaseStartedAt).Round(time.Second), limit)
		}
	}
	if l := st.Lease; l != nil && l.Expired(now) {
		add(baton.ConflictExpiredLease, "baton locks break "+app,
			"the lock of %s is held by %s but expired %s ago; its controller stopped renewing it (it is recovered automatically when a controller takes the app over)",
			app, l.Holder, now.Sub(l.ExpiresAt).Round(time.Second))
	}
	if n := len(st.Queue); n > LongQueue {
		add(baton.ConflictLongQueue, fmt.Sprintf("baton deploy %s PATH --on-conflict supersede", app),
			"%d operations are queued for %s (more than %d); deploy with supersede to replace them, or cancel some (oldest: %s)", n, app, LongQueue, st.Queue[0].ID)
	}
	if f := st.Frozen; f != nil {
		add(baton.ConflictFrozen, "baton unfreeze "+app, "%s is frozen since %s by %s: %s", app, f.At.Local().Format(time.RFC3339), f.By, f.Reason)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// phaseLimit is the longest the running operation d may stay in its
// phase before status calls it overdue: the phase's deadline (by the
// manifest the run uses, see phaseDeadline) plus a margin; 0 for none.
func (c *Coordinator) phaseLimit(d baton.Deployment) time.Duration {
	limit, ok := c.phaseDeadline(d.Phase, c.runManifest(d))
	if !ok {
		return 0
	}
	return limit + overdueMargin
}

// WaitIdle blocks until the app has no running or queued operation.
func (c *Coordinator) WaitIdle(ctx context.Context, app string) error {
	for {
		changed := c.Changes()
		active, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, States: activeStates, Limit: 1})
		if err != nil {
			return err
		}
		if len(active) == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
