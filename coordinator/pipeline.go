package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/supervisor"
)

// pipeline is the state of one deployment as it moves through its phases.
type pipeline struct {
	c          *Coordinator
	r          *run
	fence      baton.Fence
	d          baton.Deployment
	rev        string
	revision   baton.Revision
	dir        string // where the revision's files are now
	phaseStart time.Time
	// replaces is the revision a config change re-creates (its weight
	// passes to the new one in multiple mode).
	replaces string
	// changed lists the settings a config change sets or removes.
	changed []string
	// weight is the traffic percent a deploy asked for (multiple mode).
	weight int
	// started is the new revision's instances, healthy, until the
	// switch hands them to the running table (nil before and after).
	started *instances
	// manifest is the revision's manifest once loaded (nil before); image
	// its image.json then, for an image revision.
	manifest *baton.Manifest
	image    *imageRecord
}

// observePhase records how long the current phase took, as it ends.
func (p *pipeline) observePhase() {
	now := time.Now()
	if !p.phaseStart.IsZero() {
		p.c.cfg.Metrics.ObservePhase(string(p.d.Phase), now.Sub(p.phaseStart))
	}
	p.phaseStart = now
}

// phaseDeadline is the cause of a phase context that ran out of time.
type phaseDeadline struct {
	phase baton.Phase
	limit time.Duration
}

func (e phaseDeadline) Error() string {
	return fmt.Sprintf("phase %s made no progress within its deadline of %s", e.phase, e.limit)
}

// execute runs the phases and returns the final state and reason. Whatever
// happens before switching, the previous revision keeps serving and nothing
// of the new one is left behind.
func (c *Coordinator) execute(r *run, fence baton.Fence) (baton.State, string) {
	p := &pipeline{c: c, r: r, fence: fence, d: r.d}
	var err error
	switch r.d.Kind {
	case baton.KindDeploy, "":
		var dp baton.DeployParams
		if dp, err = baton.DecodeParams[baton.DeployParams](r.d.Kind, r.d.Params); err == nil {
			p.weight = dp.RequestedWeight()
			if err = p.prepare(); err == nil {
				err = p.goLive()
			}
		}
	case baton.KindConfig:
		var redeploy bool
		if redeploy, err = p.configure(); err == nil && redeploy {
			if err = p.prepare(); err == nil {
				err = p.goLive()
			}
		}
	default:
		err = c.operate(p)
	}
	p.observePhase()
	if err == nil {
		c.autoSwap(p)
		return baton.StateSucceeded, ""
	}
	p.cleanup()
	cause := context.Cause(r.ctx)
	var cn cancelled
	switch {
	case errors.As(cause, &cn):
		return baton.StateCancelled, cn.reason
	case errors.Is(cause, ErrShutdown):
		return baton.StateFailed, fmt.Sprintf("%s: baton shut down during phase %s", baton.ReasonInterrupted, p.d.Phase)
	case errors.Is(cause, errLostLease), errors.As(cause, new(lockBroken)):
		return baton.StateFailed, cause.Error()
	}
	if baton.ErrorCode(err) == baton.EINTERNAL {
		// Operators read this reason; an unexpected error's own text is
		// what they need (it never reaches API clients as a 500 body).
		return baton.StateFailed, err.Error()
	}
	return baton.StateFailed, baton.ErrorMessage(err)
}

// enter records the start of a phase.
func (p *pipeline) enter(ph baton.Phase) error {
	if err := p.r.ctx.Err(); err != nil {
		return err
	}
	p.observePhase()
	p.d.Phase = ph
	if err := p.c.cfg.Store.UpdateRunning(p.r.ctx, p.fence, p.d.ID, ph, p.rev); err != nil {
		return err
	}
	p.c.logf(p.d.ID, "phase %s", ph)
	return nil
}

// phase enters a phase and returns a context bounded by its deadline
// (phaseDeadline, by the manifest once it is loaded).
func (p *pipeline) phase(ph baton.Phase) (context.Context, context.CancelFunc, error) {
	if err := p.enter(ph); err != nil {
		return nil, nil, err
	}
	limit, ok := p.c.phaseDeadline(ph, p.manifest)
	if !ok {
		ctx, cancel := context.WithCancel(p.r.ctx)
		return ctx, cancel, nil
	}
	ctx, cancel := context.WithTimeoutCause(p.r.ctx, limit, phaseDeadline{ph, limit})
	return ctx, cancel, nil
}

// useManifest makes m the manifest whose timeouts bound the phases.
func (p *pipeline) useManifest(m baton.Manifest) {
	p.manifest = &m
	p.r.setManifest(m)
}

// asPhaseError turns a context failure into the sentence users should see.
func asPhaseError(ctx context.Context, err error) error {
	var pd phaseDeadline
	if errors.As(context.Cause(ctx), &pd) {
		return baton.Errorf(baton.EUNPROCESSABLE, "%s", pd.Error())
	}
	return err
}

// prepare runs extracting, building and starting up to healthy instances.
func (p *pipeline) prepare() error {
	c := p.c
	ctx, cancel, err := p.phase(baton.PhaseExtracting)
	if err != nil {
		return err
	}
	p.dir = filepath.Join(c.tmpDir(), p.d.ID)
	reused, err := p.reuseBuild(ctx)
	if err == nil && !reused {
		err = p.extract(ctx)
	}
	cancel()
	if err != nil {
		return asPhaseError(ctx, err)
	}
	m, img, err := loadRevision(p.dir)
	if err != nil {
		return err
	}
	p.useManifest(m)
	p.image = img
	run := fmt.Sprintf("%q", m.Run.Command)
	if m.Run.Command == "" {
		run = "the image's entrypoint"
	}
	c.logf(p.d.ID, "manifest from %s: run %s, %d instance(s), health %s", m.Source, run, m.Run.Instances, m.Health.Path)

	if m.Build.Command != "" && !reused {
		ctx, cancel, err := p.phase(baton.PhaseBuilding)
		if err != nil {
			return err
		}
		env, err := p.buildEnv(ctx, m)
		if err == nil {
			err = p.runCommand(ctx, m.Build.Command, env, "build")
		}
		cancel()
		if err != nil {
			return asPhaseError(ctx, baton.Errorf(baton.EUNPROCESSABLE, "build command failed: %v", err))
		}
	}

	env, err := c.nonStickyEnv(p.r.ctx, p.d.App, p.d.Slot)
	if err != nil {
		return err
	}
	rev, err := c.cfg.Store.CreateRevision(p.r.ctx, p.fence, baton.Revision{
		App: p.d.App, Slot: p.d.Slot, Deployment: p.d.ID, ArtifactDigest: p.d.ArtifactDigest, Env: env, Source: p.replaces})
	if err != nil {
		return err
	}
	p.rev = rev.Name
	p.revision = rev
	final := c.revisionDir(p.d.App, p.rev)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	if err := os.Rename(p.dir, final); err != nil {
		return fmt.Errorf("move revision into place: %w", err)
	}
	p.dir = final
	if err := p.release(m); err != nil {
		return err
	}

	ctx, cancel, err = p.phase(baton.PhaseStarting)
	if err != nil {
		return err
	}
	p.started, err = c.startRevision(ctx, revisionStart{rev: rev, dir: p.dir, manifest: &m, image: p.image, dep: p.d.ID, deployment: p})
	cancel()
	var ef enterFailed
	var uh unhealthy
	switch {
	case err == nil:
	case errors.As(err, &ef):
		return ef.err
	case errors.As(err, &uh):
		var pd phaseDeadline
		if errors.As(context.Cause(ctx), &pd) {
			if p.d.Phase == baton.PhaseStarting {
				// The health wait and the listening wait end on the same
				// deadline; still in starting, nothing ever listened:
				// the phase made no progress, whichever noticed first.
				// What the wait saw says where (the hosts that did not
				// report, an instance's last check).
				return baton.Errorf(baton.EUNPROCESSABLE, "%s: %s", pd.Error(), uh.err)
			}
			return baton.Errorf(baton.EUNPROCESSABLE, "instances of %s did not become healthy within start_timeout %s: %s", p.rev, m.Health.StartTimeout, uh.err)
		}
		if p.r.ctx.Err() != nil {
			return p.r.ctx.Err()
		}
		return baton.Errorf(baton.EUNPROCESSABLE, "%s", uh.err)
	default:
		return asPhaseError(ctx, err)
	}
	c.logf(p.d.ID, "all instances healthy at %s", m.Health.Path)
	return nil
}

// goLive switches the slot to the new revision and drains what no longer
// serves (see switchTo). From the moment switching starts, the deployment
// completes.
func (p *pipeline) goLive() error {
	c := p.c
	app, err := c.cfg.Store.App(p.r.ctx, p.d.App)
	if err != nil {
		return err
	}
	next := nextRouting(app.RevisionMode, c.slotRouting(p.d.App, p.d.Slot), p.rev, p.replaces, p.weight)
	installed, err := p.switchTo(switchRoutes{
		slots: map[string][]baton.RevisionWeight{p.d.Slot: next},
		start: []*instances{p.started},
		notes: []string{fmt.Sprintf("%s now serves %s: %s", p.rev, c.host(p.d.App, p.d.Slot), describeRouting(next))},
	})
	if installed {
		p.started.log.Detach() // later output goes to the revision log only
		p.started = nil        // owned by the running table now
	}
	return err
}

// cleanup undoes a deployment that did not go live.
func (p *pipeline) cleanup() {
	if p.started != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(p.r.ctx), time.Minute)
		if err := p.started.group.Stop(ctx); err != nil {
			p.c.log.Warn("stop instances of failed revision", "revision", p.rev, "err", err)
		}
		cancel()
		p.started.log.Close()
		p.c.logf(p.d.ID, "stopped the new instances")
	}
	if p.dir != "" {
		if err := os.RemoveAll(p.dir); err != nil {
			p.c.log.Warn("remove revision files", "dir", p.dir, "err", err)
		}
	}
}

// runCommand runs a build or release command in the revision folder, its
// output into the deployment log. The supervisor records it before it can
// run, so a restart after a crash of baton kills it (ReapOrphans), and
// kills its whole process group when ctx ends; it returns once nothing of
// the command is left, so a resource lease held for it is released only
// after that.
func (p *pipeline) runCommand(ctx context.Context, command string, env []string, label string) error {
	cmd := supervisor.Command{Name: p.d.ID, Label: label, Command: command, Dir: p.dir, Env: env,
		Output: func(line string) { p.c.logMasked(p.d.ID, label+": "+line) }} // runCommand masks it
	if p.manifest != nil {
		ct, err := p.c.container(ctx, p.image, command, *p.manifest)
		if err != nil {
			return err
		}
		if ct != nil {
			cmd.Container, cmd.Command, cmd.Env = ct, "", containerEnv(env)
		}
	}
	return p.c.runCommand(ctx, p.d.App, cmd)
}

// runCommand runs a build or release command of app (see
// pipeline.runCommand), its output with the app's secrets hidden; a
// failure carries the command's last lines of output.
func (c *Coordinator) runCommand(ctx context.Context, app string, cmd supervisor.Command) error {
	var last lastLines
	out := cmd.Output
	mask := c.masker(app)
	cmd.Output = func(line string) {
		line = mask.Mask(line)
		last.add(line)
		if out != nil {
			out(line)
		}
	}
	err := c.cfg.Supervisor.Run(ctx, cmd)
	if ctx.Err() != nil {
		return asPhaseError(ctx, context.Cause(ctx))
	}
	if err != nil && len(last) > 0 {
		// The log may not have them: on a full disk, appending fails.
		return fmt.Errorf("%w; its last output: %s", err, strings.Join(last, " | "))
	}
	return err
}

// lastLines keeps the last few lines of a command's output, each cut
// short, for the error that reports the command's failure.
type lastLines []string

func (l *lastLines) add(line string) {
	const keep, width = 3, 200
	if len(line) > width {
		line = line[:width] + "…"
	}
	if len(*l) == keep {
		*l = append((*l)[:0], (*l)[1:]...)
	}
	*l = append(*l, line)
}

// instanceEnv is the whole environment an app process gets: nothing of
// baton's own environment leaks into it but PATH.
func instanceEnv(app, slot, rev, dir string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	return []string{
		"PATH=" + path,
		"LANG=C.UTF-8",
		"HOME=" + dir,
		"BATON_APP=" + app,
		"BATON_SLOT=" + slot,
		"BATON_REVISION=" + rev,
	}
}

// waitListening returns once every addr accepts TCP connections (the
// instances are started), or early when done closes (the health wait ended,
// in success or failure). It tries again at the waits the health checks of
// a starting instance use (supervisor.StartingRecheck): the phase changes
// when the app listens, not up to an interval later.
func waitListening(ctx context.Context, addrs []string, interval time.Duration, done <-chan struct{}) error {
	start := time.Now()
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		all := true
		for _, a := range addrs {
			conn, err := (&net.Dialer{Timeout: interval}).DialContext(ctx, "tcp", a)
			if err != nil {
				all = false
				break
			}
			conn.Close()
		}
		if all {
			return nil
		}
		t.Reset(supervisor.StartingRecheck(time.Since(start), interval))
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// extract unpacks the deployment's artifact into p.dir; for an image, it
// unpacks the image in the image store and writes the revision's
// image.json and manifest into p.dir.
func (p *pipeline) extract(ctx context.Context) error {
	c, d, dir := p.c, p.d, p.dir
	if baton.IsImageDigest(d.ArtifactDigest) {
		// A settings change that builds again (reuseBuild declined: a
		// build-time setting changed) re-creates p.replaces.
		dp, err := c.codeDeployParams(ctx, d, p.replaces)
		if err != nil {
			return err
		}
		if err := c.prepareImage(ctx, d.ArtifactDigest, dp.Image, dp.Manifest, dir); err != nil {
			return err
		}
		c.logf(d.ID, "unpacked image %s", d.ArtifactDigest[:19])
		return nil
	}
	if err := c.localArtifact(ctx, d.ArtifactDigest); err != nil {
		return err
	}
	// Through the store: a large entry the app's previous artifact had
	// (the same binary beside a changed file) is copied, not inflated.
	if err := c.cfg.Artifacts.Extract(ctx, artifact.ExtractRequest{Digest: d.ArtifactDigest, Kind: d.ArtifactType, Dest: dir,
		Limits: c.cfg.ExtractLimits, Scope: d.App}); err != nil {
		return err
	}
	c.logf(d.ID, "extracted %s artifact %s", d.ArtifactType, d.ArtifactDigest[:12])
	return nil
}
