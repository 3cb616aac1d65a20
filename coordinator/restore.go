package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/supervisor"
)

// restoreState is how the restore of a routed revision in a slot goes, for
// status: running, or failed with why.
type restoreState struct {
	app   string
	since time.Time
	err   string // "" while it runs; kept across retries until one succeeds
}

// setRestoring records that the revision r (in r.Slot) is being restored
// (err nil), failed to (err), or, with done, runs again.
func (c *Coordinator) setRestoring(r baton.Revision, err error, done bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := runKey{r.Name, r.Slot}
	switch {
	case done:
		delete(c.restoring, k)
	case err != nil:
		c.restoring[k] = restoreState{app: r.App, since: c.cfg.Now(), err: baton.ErrorMessage(err)}
	default:
		if _, ok := c.restoring[k]; !ok {
			c.restoring[k] = restoreState{app: r.App, since: c.cfg.Now()}
		}
	}
}

// keepRestoring forgets the restore states of app's revisions other than
// those still missing (they run, or are no longer routed).
func (c *Coordinator) keepRestoring(app string, missing []baton.Revision) {
	keep := map[runKey]bool{}
	for _, r := range missing {
		keep[runKey{r.Name, r.Slot}] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, st := range c.restoring {
		if st.app == app && !keep[k] {
			delete(c.restoring, k)
		}
	}
}

// restoreOf returns the restore state of a revision in a slot, if any.
func (c *Coordinator) restoreOf(rev, slot string) (restoreState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.restoring[runKey{rev, slot}]
	return st, ok
}

// revisionFiles makes sure a revision's folder is on this controller's
// disk and returns it. A missing folder (the app was adopted from another
// controller, the disk was replaced, the files were pruned) is unpacked
// again from the revision's artifact, fetched from the shared store when
// this controller lacks it, and its build, if it has one, runs again; the
// release does not (it ran once, when the revision was deployed).
func (c *Coordinator) revisionFiles(ctx context.Context, r baton.Revision) (string, error) {
	dir := c.revisionDir(r.App, r.Name)
	if _, err := os.Stat(dir); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return dir, err
	}
	c.filesMu.Lock()
	defer c.filesMu.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir, nil // restored meanwhile
	}
	if r.ArtifactDigest == "" {
		return "", baton.Errorf(baton.ENOTFOUND, "the files of %s are missing and it records no artifact to unpack them from", r.Name)
	}
	c.log.Warn("revision folder missing; unpacking it again from its artifact", "revision", r.Name, "artifact", r.ArtifactDigest)
	if baton.IsImageDigest(r.ArtifactDigest) {
		return dir, c.restoreImageFiles(ctx, r, dir)
	}
	if err := c.localArtifact(ctx, r.ArtifactDigest); err != nil {
		return "", fmt.Errorf("the files of %s are missing and its artifact %s cannot be read again: %w", r.Name, short(r.ArtifactDigest), err)
	}
	path := c.cfg.Artifacts.Path(r.ArtifactDigest)
	kind, err := artifact.DetectType(path)
	if err != nil {
		return "", fmt.Errorf("artifact of %s: %w", r.Name, err)
	}
	if err := os.MkdirAll(c.tmpDir(), 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(c.tmpDir(), "restore-"+r.Name+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	tmp := filepath.Join(work, "files") // Extract creates it
	limit, _ := c.phaseDeadline(baton.PhaseExtracting, nil)
	ectx, cancel := context.WithTimeoutCause(ctx, limit, phaseDeadline{baton.PhaseExtracting, limit})
	err = artifact.Extract(ectx, path, kind, tmp, c.cfg.ExtractLimits)
	cancel()
	if err != nil {
		return "", fmt.Errorf("unpack the artifact of %s again: %w", r.Name, asPhaseError(ectx, err))
	}
	m, err := loadManifest(tmp)
	if err != nil {
		return "", err
	}
	if m.Build.Command != "" {
		limit, _ := c.phaseDeadline(baton.PhaseBuilding, &m)
		bctx, cancel := context.WithTimeoutCause(ctx, limit, phaseDeadline{baton.PhaseBuilding, limit})
		c.log.Info("running the build of a restored revision", "revision", r.Name, "command", m.Build.Command)
		env, err := c.withBuildSettings(bctx, instanceEnv(r.App, r.Slot, r.Name, tmp), r.App, r.Slot, m)
		if err != nil {
			cancel()
			return "", err
		}
		err = c.runCommand(bctx, r.App, supervisor.Command{Name: r.Name, Label: "build", Command: m.Build.Command, Dir: tmp,
			Env:    env,
			Output: func(line string) { c.log.Info("build output", "revision", r.Name, "line", line) }})
		cancel()
		if err != nil {
			return "", fmt.Errorf("the build of %s failed when its files were restored: %w", r.Name, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("move restored files of %s into place: %w", r.Name, err)
	}
	c.log.Info("restored revision files from the artifact", "revision", r.Name)
	return dir, nil
}

// restoreImageFiles writes an image revision's folder again, with the
// manifest the deploy that brought its code gave, if that record is still
// kept.
func (c *Coordinator) restoreImageFiles(ctx context.Context, r baton.Revision, dir string) error {
	var dp baton.DeployParams
	d, err := c.cfg.Store.Deployment(ctx, r.Deployment)
	if err == nil {
		dp, err = c.codeDeployParams(ctx, d, r.Source)
	}
	if err != nil && baton.ErrorCode(err) != baton.ENOTFOUND {
		return err
	}
	if err := os.MkdirAll(c.tmpDir(), 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(c.tmpDir(), "restore-"+r.Name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	tmp := filepath.Join(work, "files")
	if err := c.prepareImage(ctx, r.ArtifactDigest, dp.Image, dp.Manifest, tmp); err != nil {
		return fmt.Errorf("prepare the image of %s again: %w", r.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("move restored files of %s into place: %w", r.Name, err)
	}
	return nil
}

// codeDeployParams returns the params of the deploy that brought the
// code operation d runs: d's own if it is a deploy, else, for the
// revision of a settings change or a rollback that re-creates source,
// those of the deploy at the start of that chain (revisions' Source).
// Only a deploy's params name an image's source and given manifest. Zero
// params when the chain ends without a deploy, or its records are gone
// (the image's own manifest then applies).
func (c *Coordinator) codeDeployParams(ctx context.Context, d baton.Deployment, source string) (baton.DeployParams, error) {
	seen := map[string]bool{} // a record that loops is not followed forever
	for d.Kind != baton.KindDeploy && d.Kind != "" {
		if source == "" || seen[source] {
			return baton.DeployParams{}, nil
		}
		seen[source] = true
		r, err := c.cfg.Store.Revision(ctx, source)
		if err == nil {
			d, err = c.cfg.Store.Deployment(ctx, r.Deployment)
		}
		if baton.ErrorCode(err) == baton.ENOTFOUND {
			return baton.DeployParams{}, nil
		}
		if err != nil {
			return baton.DeployParams{}, err
		}
		source = r.Source
	}
	return baton.DecodeParams[baton.DeployParams](d.Kind, d.Params)
}

// short is the first 12 characters of a digest, as logs show it.
func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// restoreApp installs the app's routing as the store records it and starts
// the routed revisions that are not running (all of them after baton
// restarted). It reports whether every routed revision runs; the app's
// worker calls it again, backing off, until it does.
func (c *Coordinator) restoreApp(app string) (complete bool) {
	c.promotePlaced(app) // adopted or handed over: what runs here serves on
	slots, active, err := c.storeRouting(app)
	if baton.ErrorCode(err) == baton.ENOTFOUND {
		return true // deleted meanwhile
	}
	if err != nil {
		c.log.Error("restore: read routing", "app", app, "err", err)
		return c.ctx.Err() != nil
	}
	var missing []baton.Revision
	for _, r := range active {
		if c.runningOf(r.Name, r.Slot) == nil {
			missing = append(missing, r)
		}
	}
	c.keepRestoring(app, missing)
	// Routed before they run, so status shows the traffic that has no
	// healthy instance yet (and the proxy answers 503 for it).
	for _, in := range c.applyRouting(app, slots) {
		c.retire(in, "")
	}
	complete = true
	for _, r := range missing {
		c.setRestoring(r, nil, false)
		c.changes.notify()
		in, err := c.startRevision(c.ctx, revisionStart{rev: r, dep: ""})
		if err != nil {
			if c.ctx.Err() == nil {
				c.log.Error("restore revision; trying again", "app", app, "slot", r.Slot, "revision", r.Name, "err", err)
				c.setRestoring(r, err, false)
				complete = false
			} else {
				c.setRestoring(r, nil, true)
			}
			continue
		}
		in.group.SetLive()
		c.addRunning(in)
		c.setStandby([]*instances{in}, false) // started on standby when other hosts route to it already
		c.setRestoring(r, nil, true)
		c.publishRoutes()
		c.log.Info("restored revision", "app", app, "slot", r.Slot, "revision", r.Name, "weight", r.Weight, "addrs", in.group.Addrs())
	}
	return complete
}

// storeRouting reads an app's routing as the store records it: every slot
// (nil when nothing serves there) and the active revisions.
func (c *Coordinator) storeRouting(app string) (map[string][]baton.RevisionWeight, []baton.Revision, error) {
	a, err := c.cfg.Store.App(c.ctx, app)
	if err != nil {
		return nil, nil, err
	}
	revs, err := c.cfg.Store.Revisions(c.ctx, app)
	if err != nil {
		return nil, nil, err
	}
	slots := map[string][]baton.RevisionWeight{}
	for _, s := range a.Slots {
		slots[s.Name] = nil
	}
	var active []baton.Revision
	for _, r := range revs {
		if r.Active {
			slots[r.Slot] = append(slots[r.Slot], baton.RevisionWeight{Revision: r.Name, Weight: r.Weight})
			active = append(active, r)
		}
	}
	return slots, active, nil
}
