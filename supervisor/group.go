package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors matched with errors.Is on the errors of WaitHealthy.
var (
	// ErrExited: an instance exited before the group went live.
	ErrExited = errors.New("exited before becoming healthy")
	// ErrPortTaken: an instance exited before the group went live, and
	// another program listens on its port, or the app said its bind failed
	// with "address already in use": most likely another program bound it
	// between the probe that found it free and the app. A start on other
	// ports may well succeed.
	ErrPortTaken = errors.New("its port is taken by another program")
	// ErrUnhealthy: the context ended before every instance was healthy.
	ErrUnhealthy = errors.New("not healthy")
	// ErrStopped: the group was stopped.
	ErrStopped = errors.New("group stopped")
)

// errorOutputLines is how many recent output lines an exit error quotes.
const errorOutputLines = 5

// Group is the set of running instances of one Spec. Its methods are safe
// for concurrent use.
type Group struct {
	sup       *Supervisor
	cfg       Config
	spec      Spec
	ctr       *containerSetup // nil: instances run spec.Command
	log       *slog.Logger
	output    outputSink
	checker   *checker
	ports     []int
	instances []*instance

	ctx    context.Context // cancelled when the group starts stopping
	cancel context.CancelFunc
	liveCh chan struct{} // closed by SetLive
	done   chan struct{} // closed when every run loop has returned
	finish sync.Once     // releases ports and the checker after done

	mu           sync.Mutex
	changed      chan struct{} // closed and replaced on every state change
	live         bool
	stopping     bool
	handedOff    bool      // see Handoff
	stopDeadline time.Time // when SIGKILL follows SIGTERM
	loops        int       // run loops still going
	stopErrs     []error
}

func newGroup(s *Supervisor, spec Spec, ctr *containerSetup, ports []int) *Group {
	ctx, cancel := context.WithCancel(context.Background())
	g := &Group{
		sup:     s,
		cfg:     s.cfg,
		spec:    spec,
		ctr:     ctr,
		log:     s.log.With("group", spec.Name),
		output:  outputSink{w: spec.Output},
		checker: newChecker(spec.Health),
		ports:   ports,
		ctx:     ctx,
		cancel:  cancel,
		liveCh:  make(chan struct{}),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	for i, port := range ports {
		g.instances = append(g.instances, &instance{
			g:         g,
			index:     i + 1,
			port:      port,
			addr:      addrOf(port),
			lastCheck: "not checked yet",
		})
	}
	return g
}

// startInstance starts the first process of in and its run loop.
func (g *Group) startInstance(in *instance) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopping {
		return ErrStopped
	}
	p, err := in.startProcess()
	if err != nil {
		in.lastError = "start: " + err.Error()
		return err
	}
	in.started(p)
	g.loops++
	go in.run(p)
	g.log.Info("instance started", "instance", in.index, "addr", in.addr, "pid", p.pid)
	return nil
}

// Name returns the spec's name.
func (g *Group) Name() string { return g.spec.Name }

// Addrs returns "127.0.0.1:PORT" for each instance, in index order.
func (g *Group) Addrs() []string {
	addrs := make([]string, len(g.instances))
	for i, in := range g.instances {
		addrs[i] = in.addr
	}
	return addrs
}

// WaitHealthy returns nil once every instance is healthy (answered GET
// Health.Path with 2xx). It returns an ErrExited error as soon as an
// instance exits before SetLive, naming the instance, its exit status and
// its last output lines. When ctx ends first it returns an ErrUnhealthy
// error that also wraps ctx's error and names each unhealthy instance with
// its latest check result. A stopped group gives ErrStopped.
func (g *Group) WaitHealthy(ctx context.Context) error {
	for {
		g.mu.Lock()
		err, decided := g.healthVerdictLocked()
		changed := g.changed
		g.mu.Unlock()
		if decided {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return g.unhealthyError(ctx)
		}
	}
}

// healthVerdictLocked says whether WaitHealthy can return, and with what.
func (g *Group) healthVerdictLocked() (err error, decided bool) {
	if g.stopping {
		return fmt.Errorf("%s: %w", g.spec.Name, ErrStopped), true
	}
	allHealthy := true
	for _, in := range g.instances {
		if in.exitedEarly && in.portTaken != "" {
			return fmt.Errorf("%s: instance %d (%s) %w: %s; %w (%s)%s",
				g.spec.Name, in.index, in.addr, ErrExited, in.lastError, ErrPortTaken, in.portTaken, quoteOutput(in.tail.last(errorOutputLines))), true
		}
		if in.exitedEarly {
			return fmt.Errorf("%s: instance %d (%s) %w: %s%s",
				g.spec.Name, in.index, in.addr, ErrExited, in.lastError, quoteOutput(in.tail.last(errorOutputLines))), true
		}
		allHealthy = allHealthy && in.healthy
	}
	return nil, allHealthy
}

func quoteOutput(lines []string) string {
	if len(lines) == 0 {
		return "; no output"
	}
	return "; last output:\n    " + strings.Join(lines, "\n    ")
}

func (g *Group) unhealthyError(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var parts []string
	for _, in := range g.instances {
		if !in.healthy {
			parts = append(parts, fmt.Sprintf("instance %d (%s): %s", in.index, in.addr, in.lastCheck))
		}
	}
	if len(parts) == 0 {
		// Became healthy just as ctx ended; the caller gave up anyway.
		parts = append(parts, "every instance turned healthy as the wait ended")
	}
	return fmt.Errorf("%s: %w (%w): %s", g.spec.Name, ErrUnhealthy, ctx.Err(), strings.Join(parts, "; "))
}

// SetLive marks the group as serving traffic. From then on a crashed
// instance is restarted on the same port with exponential backoff, and
// OnHealth reports health transitions. Before SetLive an exit is a start
// failure and the instance stays down; an instance that is down when
// SetLive is called is restarted. SetLive itself reports nothing through
// OnHealth: use Status for the state at that moment.
func (g *Group) SetLive() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.live || g.stopping {
		return
	}
	g.live = true
	close(g.liveCh)
	g.log.Info("group is live")
}

// Stop sends SIGTERM to every instance's process group, and SIGKILL once
// StopGrace has passed since the first Stop or when ctx ends, whichever is
// first. For a container the process group is runc's: runc forwards the
// SIGTERM to the container's init; SIGKILL goes to the container through
// runc; once runc has exited the container is deleted (which kills it if it
// still runs). It returns when every process has exited and every goroutine of
// the group has ended, then frees the ports. Stop is idempotent and safe to
// call concurrently; every call waits. The error reports signals that could
// not be delivered.
func (g *Group) Stop(ctx context.Context) error {
	deadline, handedOff := g.beginStop()
	if handedOff {
		return nil // its processes belong to the next baton now
	}
	grace := time.NewTimer(time.Until(deadline))
	defer grace.Stop()
	select {
	case <-g.done:
	case <-grace.C:
		g.signalAll(syscall.SIGKILL, "grace period over")
	case <-ctx.Done():
		g.signalAll(syscall.SIGKILL, "stop context ended")
	}
	<-g.done
	g.finish.Do(func() {
		g.checker.close()
		g.sup.forget(g)
		g.log.Info("group stopped")
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(g.stopErrs...)
}

// beginStop starts stopping the group once and returns when SIGKILL is due;
// handedOff, and nothing done, when the group's processes belong to the
// next baton (checked under the same lock as Handoff sets it).
func (g *Group) beginStop() (deadline time.Time, handedOff bool) {
	g.mu.Lock()
	if g.handedOff {
		g.mu.Unlock()
		return time.Time{}, true
	}
	first := !g.stopping
	if first {
		g.stopping = true
		g.stopDeadline = time.Now().Add(g.cfg.StopGrace)
		g.cancel() // ends health checks and backoff waits
		if g.loops == 0 {
			close(g.done)
		}
		g.broadcastLocked()
	}
	deadline = g.stopDeadline
	g.mu.Unlock()
	if first {
		g.log.Info("stopping group", "grace", g.cfg.StopGrace)
		g.signalAll(syscall.SIGTERM, "stop")
	}
	return deadline, false
}

// signalAll signals the process group of every running instance.
//
// SIGKILL for a container goes to the container, through runc, so that runc
// sees its end, copies the last output and exits; only if runc cannot
// (the container is not created yet, or runc fails) is runc's process
// group killed, and the container deleted once runc is gone.
func (g *Group) signalAll(sig syscall.Signal, why string) {
	type target struct {
		in *instance
		p  *process
	}
	var containers []target
	g.mu.Lock()
	// Under the lock: run loops clear in.proc under it once the process is
	// reaped, so we never signal a process group id that could be reused.
	for _, in := range g.instances {
		if in.proc == nil {
			continue
		}
		g.log.Info("signalling instance", "instance", in.index, "pid", in.proc.pid, "signal", sig.String(), "reason", why)
		if sig == syscall.SIGKILL && in.proc.ctr != nil {
			containers = append(containers, target{in, in.proc})
			continue
		}
		g.signalLocked(in, sig)
	}
	g.mu.Unlock()

	// runc runs outside the lock: a container ID is never reused.
	for _, c := range containers {
		err := c.p.ctr.kill("KILL")
		if err == nil {
			continue
		}
		g.log.Info("kill container through runc failed; killing runc", "instance", c.in.index, "container", c.p.ctr.ID, "err", err)
		g.mu.Lock()
		if c.in.proc == c.p {
			g.signalLocked(c.in, syscall.SIGKILL)
		}
		g.mu.Unlock()
	}
}

// signalLocked signals the process group of in's process. Caller holds
// g.mu and has checked in.proc.
func (g *Group) signalLocked(in *instance, sig syscall.Signal) {
	if err := signalGroup(in.proc.pid, sig); err != nil {
		g.stopErrs = append(g.stopErrs, fmt.Errorf("%s: instance %d: send %s: %w", g.spec.Name, in.index, sig, err))
	}
}

// loopExited is called by each run loop as it returns.
func (g *Group) loopExited() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.loops--
	// Run loops return only once stopping, so done is closed exactly once:
	// here, or in beginStop if no loop was ever started.
	if g.loops == 0 {
		close(g.done)
	}
}

// broadcastLocked wakes every WaitHealthy. Caller holds g.mu.
func (g *Group) broadcastLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// InstanceStatus is a snapshot of one instance.
type InstanceStatus struct {
	Index int    // from 1
	Addr  string // 127.0.0.1:PORT, the same across restarts
	PID   int    // of the shell running the command, or of runc; 0 while not running
	// Container is the ID of the container the instance runs; "" without
	// Spec.Container or while not running.
	Container string
	// Healthy is true after a passing check, false after the process
	// exited or failed failuresToUnhealthy (2) checks in a row.
	Healthy      bool
	Restarts     int
	CrashLooping bool
	LastError    string    // how the latest process ended or failed to start
	LastCheck    string    // latest health check result: "ok", "status 500", …
	StartedAt    time.Time // start of the current (or latest) process
}

// Status returns a snapshot of every instance, in index order.
func (g *Group) Status() []InstanceStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	out := make([]InstanceStatus, len(g.instances))
	for i, in := range g.instances {
		st := InstanceStatus{
			Index:        in.index,
			Addr:         in.addr,
			Healthy:      in.healthy,
			Restarts:     in.restarts,
			CrashLooping: in.crashLooping,
			LastError:    in.lastError,
			LastCheck:    in.lastCheck,
			StartedAt:    in.startedAt,
		}
		if in.proc != nil {
			st.PID = in.proc.pid
			if in.proc.ctr != nil {
				st.Container = in.proc.ctr.ID
			}
			// Up a whole window since the last restart: no longer looping,
			// even though the flag is only cleared at the next crash.
			if now.Sub(in.startedAt) >= g.cfg.CrashLoopWindow {
				st.CrashLooping = false
			}
		}
		out[i] = st
	}
	return out
}
