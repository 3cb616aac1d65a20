package coordinator

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/batonhq/baton"
)

// Collection (retention) removes what the policy no longer keeps: the
// unpacked folders and instance logs of old revisions, and artifacts no
// kept revision names. The decision is baton.PlanRetention's; this file
// gathers its facts and applies it, safely under kill -9:
//
//   - a revision folder is renamed into the app's trash/ folder (atomic)
//     before it is deleted, so revisions/ never holds a half-deleted one;
//     Open empties trash/ (and a pruned folder is unpacked again from its
//     artifact when a rollback needs it: revisionFiles);
//   - an artifact is removed only after the folders of the revisions that
//     named it are gone, and only if, checked again just before, no queued
//     or running operation names it;
//   - an app's files are touched only while no operation runs for it (the
//     app's gate), and the gate is held only for the renames.

// gate is held by an app's running operation, and by collection while it
// moves that app's files; collection skips an app whose gate is taken.
func (c *Coordinator) gate(app string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.gates[app]
	if g == nil {
		g = &sync.Mutex{}
		c.gates[app] = g
	}
	return g
}

// requestCollect asks the collector for a collection soon; requests
// while one runs make one more.
func (c *Coordinator) requestCollect() {
	select {
	case c.gcWake <- struct{}{}:
	default:
	}
}

// collector runs collections when asked (after operations) until Close;
// Open asks for the first.
func (c *Coordinator) collector() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.gcWake:
		}
		rep, err := c.Collect(c.ctx, false)
		switch {
		case err != nil && c.ctx.Err() == nil:
			c.log.Error("collect old revisions and artifacts", "err", err)
		case err == nil && rep.Reclaimed > 0:
			c.log.Info("collected old revisions and artifacts", "reclaimed_bytes", rep.Reclaimed, "in_use_bytes", rep.After,
				"revision_folders", len(rep.Plan.RemoveFiles), "artifacts", len(rep.Plan.RemoveArtifacts))
		}
		if err == nil && rep.Plan.OverBudget > 0 {
			c.log.Warn("over the disk budget: what is left is what serves, is queued, or is the newest rollback target of a slot",
				"over_bytes", rep.Plan.OverBudget, "budget_bytes", c.cfg.Retention.DiskBudget)
		}
	}
}

// entryCacheAge is how long the artifact store's entry cache keeps the
// large zip entries of an app's last deploy (for its next deploy to copy
// rather than inflate) when the app is not deployed again.
const entryCacheAge = 7 * 24 * time.Hour

// Collect removes what the retention policy no longer keeps (with dryRun,
// only says what it would remove) and records every app's disk use for
// status. One collection runs at a time.
func (c *Coordinator) Collect(ctx context.Context, dryRun bool) (baton.GCReport, error) {
	c.gcMu.Lock()
	defer c.gcMu.Unlock()
	facts, err := c.retentionFacts(ctx)
	if err != nil {
		return baton.GCReport{}, err
	}
	plan := baton.PlanRetention(c.cfg.Retention, facts)
	rep := baton.GCReport{DryRun: dryRun, Policy: c.cfg.Retention, Plan: plan, Before: plan.Before, After: plan.After}
	if dryRun {
		rep.Reclaimed = plan.Before - plan.After
		rep.Apps = diskUse(facts, plan)
		return rep, nil
	}
	rep.Skipped = c.applyPlan(ctx, facts, plan)
	if c.cfg.Images != nil {
		// Blobs no held image uses: pushes never finished, an index's
		// other platforms, what removed images left. A blob younger than
		// the artifact grace may belong to a push in progress.
		if _, err := c.cfg.Images.PruneBlobs(c.cfg.Retention.ArtifactGrace); err != nil {
			c.log.Warn("prune image blobs", "err", err)
		}
	}
	if c.cfg.Artifacts != nil {
		if err := c.cfg.Artifacts.TrimEntries(entryCacheAge); err != nil {
			c.log.Warn("trim the unpacked entry cache", "err", err)
		}
	}
	// Measured again: what is on disk now, not what the plan expected
	// (unless the plan removed nothing, as after most operations).
	after, p := facts, plan
	if len(plan.RemoveFiles)+len(plan.RemoveLogs)+len(plan.RemoveArtifacts) > 0 {
		if after, err = c.retentionFacts(ctx); err == nil {
			p = baton.PlanRetention(c.cfg.Retention, after)
		}
	}
	if err == nil {
		rep.After = p.Before
		rep.Apps = diskUse(after, p)
		if c.cfg.Artifacts != nil {
			// The unpacked entries kept for an app's next deploy are
			// its artifacts' too.
			for app, u := range rep.Apps {
				n := c.cfg.Artifacts.EntryBytes(app)
				u.Artifacts += n
				u.Total += n
				rep.Apps[app] = u
			}
		}
		c.mu.Lock()
		c.disk = rep.Apps
		c.mu.Unlock()
	}
	rep.Reclaimed = rep.Before - rep.After
	return rep, nil
}

// diskUse is DiskUseByApp with the count of revisions the plan keeps.
func diskUse(f baton.RetentionFacts, plan baton.RetentionPlan) map[string]baton.DiskUse {
	use := baton.DiskUseByApp(f)
	app := map[string]string{}
	for _, r := range f.Revisions {
		app[r.Name] = r.App
	}
	for _, name := range plan.Keep {
		u := use[app[name]]
		u.Kept++
		use[app[name]] = u
	}
	return use
}

// retentionFacts reads what PlanRetention decides on: every app's
// revisions (all controllers' apps: they may share artifacts), what serves
// and what queued or running operations name, and sizes on this disk.
func (c *Coordinator) retentionFacts(ctx context.Context) (baton.RetentionFacts, error) {
	f := baton.RetentionFacts{Now: c.cfg.Now()}
	busy, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{States: []baton.State{baton.StateQueued, baton.StateRunning}})
	if err != nil {
		return f, err
	}
	inUseRev, inUseArt := map[string]bool{}, map[string]bool{}
	for _, d := range busy {
		inUseRev[d.Revision] = true
		inUseArt[d.ArtifactDigest] = true
		for _, name := range baton.NamedRevisions(d.Kind, d.Params) {
			inUseRev[name] = true
		}
	}
	c.mu.Lock()
	for k := range c.running {
		inUseRev[k.rev] = true
	}
	c.mu.Unlock()
	// Every app's revisions in one read (with 1,000 apps, one read each
	// was most of a collection's time), then the deployments that
	// succeeded of each app that has revisions.
	all, err := c.cfg.Store.Revisions(ctx, "")
	if err != nil {
		return f, err
	}
	sizes := map[string]folderSize{} // the folders measured now, for the next collection
	defer func() { c.folderSizes = sizes }()
	for len(all) > 0 {
		n := 1
		for n < len(all) && all[n].App == all[0].App {
			n++
		}
		revs := all[:n]
		all = all[n:]
		succeeded, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: revs[0].App, States: []baton.State{baton.StateSucceeded}})
		if err != nil {
			return f, err
		}
		live := map[string]bool{} // deployment IDs and revision names that went live
		for _, d := range succeeded {
			live[d.ID] = true
			if d.Revision != "" {
				live[d.Revision] = true
			}
		}
		for _, r := range revs {
			rf := baton.RevisionFacts{Name: r.Name, App: r.App, Slot: r.Slot, Number: r.Number, ArtifactDigest: r.ArtifactDigest,
				Serving: r.Active, InUse: inUseRev[r.Name], Live: live[r.Deployment] || live[r.Name], Files: -1}
			if n, err := c.folderBytes(c.revisionDir(r.App, r.Name), rf.InUse || rf.Serving, sizes); err == nil {
				rf.Files = n
			}
			for _, p := range c.instanceLogPaths(r.App, r.Name) {
				if fi, err := os.Stat(p); err == nil {
					rf.Log += fi.Size()
				}
			}
			f.Revisions = append(f.Revisions, rf)
		}
	}
	list, err := c.cfg.Artifacts.List()
	if err != nil {
		return f, err
	}
	for _, a := range list {
		f.Artifacts = append(f.Artifacts, baton.ArtifactFacts{Digest: a.Digest, Size: a.Size, ModTime: a.Stored, InUse: inUseArt[a.Digest]})
	}
	if c.cfg.Images != nil {
		// Container images are artifacts to the retention rules, by
		// manifest digest.
		digests, err := c.cfg.Images.Digests()
		if err != nil {
			return f, err
		}
		for _, d := range digests {
			img, err := c.cfg.Images.Image(d)
			if err != nil {
				continue // removed meanwhile
			}
			at, err := c.cfg.Images.StoredAt(d)
			if err != nil {
				continue
			}
			f.Artifacts = append(f.Artifacts, baton.ArtifactFacts{Digest: d, Size: img.Size, ModTime: at, InUse: inUseArt[d]})
		}
	}
	return f, nil
}

// applyPlan removes what plan says, app by app, skipping (and returning)
// apps with an operation running or queued now; artifacts their revisions
// name stay until a later collection.
func (c *Coordinator) applyPlan(ctx context.Context, f baton.RetentionFacts, plan baton.RetentionPlan) (skipped []string) {
	byName := map[string]baton.RevisionFacts{}
	for _, r := range f.Revisions {
		byName[r.Name] = r
	}
	perApp := map[string][2][]string{} // app → folders, logs
	for _, n := range plan.RemoveFiles {
		e := perApp[byName[n].App]
		e[0] = append(e[0], n)
		perApp[byName[n].App] = e
	}
	for _, n := range plan.RemoveLogs {
		e := perApp[byName[n].App]
		e[1] = append(e[1], n)
		perApp[byName[n].App] = e
	}
	held := map[string]bool{} // digests a skipped app's revisions name
	for app, e := range perApp {
		left, ok := c.collectApp(ctx, app, e[0], e[1])
		if !ok {
			skipped = append(skipped, app)
			for _, r := range f.Revisions {
				if r.App == app {
					held[r.ArtifactDigest] = true
				}
			}
		}
		for _, name := range left {
			held[byName[name].ArtifactDigest] = true
		}
	}
	if len(plan.RemoveArtifacts) == 0 {
		return skipped
	}
	// Checked again now: an operation queued since the facts were read
	// may name an artifact (an old one deployed again).
	busy, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{States: []baton.State{baton.StateQueued, baton.StateRunning}})
	if err != nil {
		return skipped
	}
	for _, d := range busy {
		held[d.ArtifactDigest] = true
	}
	remover, _ := c.cfg.Blobs.(baton.BlobRemover)
	for _, digest := range plan.RemoveArtifacts {
		if held[digest] {
			continue
		}
		if at, ok := c.storedAt(digest); ok && c.cfg.Now().Sub(at) < c.cfg.Retention.ArtifactGrace {
			if !namedByRevision(f, digest) {
				continue // stored again just now
			}
		}
		c.collectPause()
		if baton.IsImageDigest(digest) {
			// Its blobs stay in the shared store: other images may share them.
			if err := c.cfg.Images.Remove(digest); err != nil {
				c.log.Warn("remove image", "image", digest, "err", err)
			}
			continue
		}
		if err := c.cfg.Artifacts.Remove(digest); err != nil {
			c.log.Warn("remove artifact", "artifact", digest, "err", err)
			continue
		}
		if remover != nil {
			if err := remover.RemoveArtifact(ctx, digest); err != nil {
				c.log.Warn("remove artifact from the shared store", "artifact", digest, "err", err)
			}
		}
	}
	return skipped
}

// storedAt is when an artifact or image was stored (again), if it is.
func (c *Coordinator) storedAt(digest string) (time.Time, bool) {
	if baton.IsImageDigest(digest) {
		if c.cfg.Images == nil {
			return time.Time{}, false
		}
		at, err := c.cfg.Images.StoredAt(digest)
		return at, err == nil
	}
	fi, err := os.Stat(c.cfg.Artifacts.Path(digest))
	if err != nil {
		return time.Time{}, false
	}
	return fi.ModTime(), true
}

func namedByRevision(f baton.RetentionFacts, digest string) bool {
	for _, r := range f.Revisions {
		if r.ArtifactDigest == digest {
			return true
		}
	}
	return false
}

// collectApp moves the folders of revs into the app's trash and removes
// the instance logs of logs, holding the app's gate only for that, then
// empties the trash. It returns the revisions it left because they serve
// or run again, or ok false, touching nothing, when an operation runs or
// waits for the app.
func (c *Coordinator) collectApp(ctx context.Context, app string, revs, logs []string) (left []string, ok bool) {
	g := c.gate(app)
	if !g.TryLock() {
		return nil, false
	}
	queued, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, States: []baton.State{baton.StateQueued, baton.StateRunning}, Limit: 1})
	if err != nil || len(queued) > 0 {
		g.Unlock()
		return nil, false
	}
	trash := filepath.Join(c.appDir(app), "trash")
	var moved []string
	c.filesMu.Lock()
	for _, name := range revs {
		if !c.collectable(ctx, name) {
			left = append(left, name)
			continue
		}
		if err := os.MkdirAll(trash, 0o755); err != nil {
			c.log.Warn("create trash folder", "app", app, "err", err)
			break
		}
		to := filepath.Join(trash, name+"."+strconv.FormatInt(time.Now().UnixNano(), 36))
		if err := os.Rename(c.revisionDir(app, name), to); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				c.log.Warn("move revision folder to the trash", "revision", name, "err", err)
			}
			continue
		}
		moved = append(moved, to)
	}
	c.filesMu.Unlock()
	for _, name := range logs {
		if !c.collectable(ctx, name) {
			left = append(left, name)
		} else {
			for _, p := range c.instanceLogPaths(app, name) {
				if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					c.log.Warn("remove instance log", "revision", name, "err", err)
				}
			}
		}
	}
	g.Unlock()
	for _, dir := range moved {
		c.collectPause()
		if err := os.RemoveAll(dir); err != nil {
			c.log.Warn("empty trash", "dir", dir, "err", err)
		}
	}
	return left, true
}

// collectable checks again, just before its files go, that a revision
// neither serves nor runs.
func (c *Coordinator) collectable(ctx context.Context, name string) bool {
	r, err := c.cfg.Store.Revision(ctx, name)
	if err == nil && r.Active {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.running {
		if k.rev == name {
			return false
		}
	}
	return true
}

// collectPause is the test hook that makes collection slow enough to kill
// in the middle (Config.CollectPause).
func (c *Coordinator) collectPause() {
	if c.cfg.CollectPause > 0 {
		c.log.Info("collection pausing (test hook)", "pause", c.cfg.CollectPause)
		time.Sleep(c.cfg.CollectPause)
	}
}

// emptyTrash removes what a collection interrupted by a crash left in the
// apps' trash folders.
func (c *Coordinator) emptyTrash() {
	dirs, _ := filepath.Glob(filepath.Join(c.cfg.DataDir, "apps", "*", "trash"))
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			c.log.Warn("empty trash", "dir", d, "err", err)
		}
	}
}

// DiskUse returns the disk use of app as the last collection measured it.
func (c *Coordinator) DiskUse(app string) (baton.DiskUse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.disk[app]
	return u, ok
}

// dirSize sums the sizes of the regular files under dir.
func dirSize(dir string) (int64, error) {
	if _, err := os.Lstat(dir); err != nil {
		return 0, err
	}
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // removed meanwhile, or unreadable: counts nothing
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}

// instanceLogPath is where a revision's instance output is appended.
func (c *Coordinator) instanceLogPath(app, rev string) string {
	return filepath.Join(c.appDir(app), "logs", rev+".log")
}

// instanceLogPaths are a revision's instance log files, older first: the
// rotated one, then the one being appended to (see instancelog.go).
func (c *Coordinator) instanceLogPaths(app, rev string) []string {
	cur := c.instanceLogPath(app, rev)
	return []string{cur + ".1", cur}
}
