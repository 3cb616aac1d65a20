package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/manifest"
	"github.com/batonhq/baton/supervisor"
)

// pipeline is the state of one deployment as it moves through its phases.
type pipeline struct {
	c     *Coordinator
	r     *run
	fence baton.Fence
	d     baton.Deployment
	rev   string
	dir   string // where the revision's files are now
	group *supervisor.Group
	log   *instanceLog
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
	err := p.prepare()
	if err == nil {
		err = p.goLive()
	}
	if err == nil {
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
	return baton.StateFailed, baton.ErrorMessage(err)
}

// enter records the start of a phase.
func (p *pipeline) enter(ph baton.Phase) error {
	if err := p.r.ctx.Err(); err != nil {
		return err
	}
	p.d.Phase = ph
	if err := p.c.cfg.Store.UpdateRunning(p.r.ctx, p.fence, p.d.ID, ph, p.rev); err != nil {
		return err
	}
	p.c.logf(p.d.ID, "phase %s", ph)
	return nil
}

// phase enters a phase and returns a context bounded by its deadline.
func (p *pipeline) phase(ph baton.Phase, limit time.Duration) (context.Context, context.CancelFunc, error) {
	if err := p.enter(ph); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeoutCause(p.r.ctx, limit, phaseDeadline{ph, limit})
	return ctx, cancel, nil
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
	ctx, cancel, err := p.phase(baton.PhaseExtracting, c.cfg.ExtractTimeout)
	if err != nil {
		return err
	}
	p.dir = filepath.Join(c.tmpDir(), p.d.ID)
	err = extract(ctx, c, p.d, p.dir)
	cancel()
	if err != nil {
		return asPhaseError(ctx, err)
	}
	m, err := manifest.Load(p.dir)
	if err != nil {
		return err
	}
	c.logf(p.d.ID, "manifest from %s: run %q, %d instance(s), health %s", m.Source, m.Run.Command, m.Run.Instances, m.Health.Path)

	if m.Build.Command != "" {
		ctx, cancel, err := p.phase(baton.PhaseBuilding, m.Build.Timeout)
		if err != nil {
			return err
		}
		err = p.runCommand(ctx, m.Build.Command, p.buildEnv())
		cancel()
		if err != nil {
			return asPhaseError(ctx, fmt.Errorf("build command failed: %w", err))
		}
	}

	rev, err := c.cfg.Store.CreateRevision(p.r.ctx, p.fence, baton.Revision{
		App: p.d.App, Slot: p.d.Slot, Deployment: p.d.ID, ArtifactDigest: p.d.ArtifactDigest})
	if err != nil {
		return err
	}
	p.rev = rev.Name
	final := c.revisionDir(p.d.App, p.rev)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	if err := os.Rename(p.dir, final); err != nil {
		return fmt.Errorf("move revision into place: %w", err)
	}
	p.dir = final

	ctx, cancel, err = p.phase(baton.PhaseStarting, m.Health.StartTimeout)
	if err != nil {
		return err
	}
	p.log, err = openInstanceLog(c, p.d.App, p.rev, p.d.ID)
	if err != nil {
		cancel()
		return err
	}
	p.group, err = c.startRevision(ctx, p.d.App, p.d.Slot, p.rev, p.dir, m, p.log)
	if err != nil {
		cancel()
		return asPhaseError(ctx, err)
	}
	c.logf(p.d.ID, "started %d instance(s) on %v", m.Run.Instances, p.group.Addrs())
	// The health wait runs from the start so an instance that exits fails
	// the deployment at once, whichever phase we are in.
	var healthErr error
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		healthErr = p.group.WaitHealthy(ctx)
	}()
	defer func() { cancel(); <-healthDone }()
	if err := waitListening(ctx, p.group.Addrs(), m.Health.Interval, healthDone); err != nil {
		return asPhaseError(ctx, err)
	}
	if err := p.enter(baton.PhaseHealthChecking); err != nil {
		return err
	}
	select {
	case <-healthDone:
	case <-ctx.Done():
		<-healthDone
	}
	if err := healthErr; err != nil {
		if errors.As(context.Cause(ctx), new(phaseDeadline)) {
			return baton.Errorf(baton.EUNPROCESSABLE, "instances of %s did not become healthy within start_timeout %s: %s", p.rev, m.Health.StartTimeout, err)
		}
		if p.r.ctx.Err() != nil {
			return p.r.ctx.Err()
		}
		return baton.Errorf(baton.EUNPROCESSABLE, "%s", err)
	}
	c.logf(p.d.ID, "all instances healthy at %s", m.Health.Path)
	return nil
}

// goLive switches the slot to the new revision and drains the old one.
// From the moment switching starts, the deployment completes.
func (p *pipeline) goLive() error {
	c := p.c
	p.r.mu.Lock()
	if err := p.r.ctx.Err(); err != nil {
		p.r.mu.Unlock()
		return err
	}
	p.r.switching = true
	p.r.mu.Unlock()

	ctx := context.WithoutCancel(p.r.ctx)
	p.d.Phase = baton.PhaseSwitching
	if err := c.cfg.Store.UpdateRunning(ctx, p.fence, p.d.ID, baton.PhaseSwitching, p.rev); err != nil {
		return err
	}
	c.logf(p.d.ID, "phase %s", baton.PhaseSwitching)
	if err := c.cfg.Store.SetLive(ctx, p.fence, p.d.Slot, p.rev); err != nil {
		return err
	}
	newLog := p.log
	defer newLog.Detach() // later output goes to the revision log only
	old := c.setLive(p.d.App, p.d.Slot, &liveRevision{name: p.rev, group: p.group, log: p.log})
	p.group.SetLive()
	p.group, p.log = nil, nil // owned by the live table now
	c.logf(p.d.ID, "%s now serves %s", p.rev, c.host(p.d.App, p.d.Slot))
	if old == nil || old.group == nil {
		return nil
	}
	p.d.Phase = baton.PhaseDraining
	_ = c.cfg.Store.UpdateRunning(ctx, p.fence, p.d.ID, baton.PhaseDraining, p.rev)
	c.logf(p.d.ID, "phase %s: %s finishes its in-flight requests (up to %s)", baton.PhaseDraining, old.name, c.cfg.DrainTimeout)
	c.retire(old, p.d.ID)
	return nil
}

// retire drains a revision that no longer serves, then stops it.
func (c *Coordinator) retire(old *liveRevision, depID string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), c.cfg.DrainTimeout)
	if err := c.cfg.Proxy.Drain(dctx, old.group.Addrs()); err != nil {
		c.logf(depID, "drain of %s ended by its timeout: %v", old.name, err)
	}
	cancel()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), time.Minute)
	if err := old.group.Stop(sctx); err != nil {
		c.log.Warn("stop old revision", "revision", old.name, "err", err)
	}
	cancel()
	old.log.Close()
	c.logf(depID, "stopped %s", old.name)
}

// cleanup undoes a deployment that did not go live.
func (p *pipeline) cleanup() {
	if p.group != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(p.r.ctx), time.Minute)
		if err := p.group.Stop(ctx); err != nil {
			p.c.log.Warn("stop instances of failed revision", "revision", p.rev, "err", err)
		}
		cancel()
		p.c.logf(p.d.ID, "stopped the new instances")
	}
	if p.log != nil {
		p.log.Close()
	}
	if p.dir != "" {
		if err := os.RemoveAll(p.dir); err != nil {
			p.c.log.Warn("remove revision files", "dir", p.dir, "err", err)
		}
	}
}

func (p *pipeline) buildEnv() []string {
	return instanceEnv(p.d.App, p.d.Slot, p.rev, p.dir)
}

// runCommand runs a shell command in the revision folder, its output into
// the deployment log; cancelling ctx kills its whole process group.
func (p *pipeline) runCommand(ctx context.Context, command string, env []string) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Dir = p.dir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	w := &lineWriter{emit: func(line string) { p.c.logf(p.d.ID, "build: %s", line) }}
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	w.flush()
	if ctx.Err() != nil {
		return asPhaseError(ctx, context.Cause(ctx))
	}
	return err
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
// in success or failure).
func waitListening(ctx context.Context, addrs []string, interval time.Duration, done <-chan struct{}) error {
	t := time.NewTicker(interval)
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
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}
