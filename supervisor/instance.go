package supervisor

import (
	"context"
	"os"
	"strings"
	"syscall"
	"time"
)

// instance is one slot of a group: a fixed index and port, and whichever
// process currently runs there. Fields below mu are guarded by the group's
// mutex.
type instance struct {
	g     *Group
	index int // from 1
	port  int
	addr  string
	tail  tail

	// Guarded by g.mu.
	proc         *process // nil while no process runs
	healthy      bool
	failures     int    // consecutive failed checks
	lastCheck    string // result of the latest health check
	lastError    string // how the latest process ended or failed to start
	startedAt    time.Time
	exitedEarly  bool   // exited before SetLive: a start failure
	portTaken    string // and why its port looked taken by another program then ("" if not)
	restarts     int
	restartTimes []time.Time // restarts inside the crash-loop window
	crashes      int         // consecutive short runs, for the backoff
	crashLooping bool
}

// emit records one output line of the instance.
func (in *instance) emit(line []byte) {
	in.tail.add(string(line))
	in.g.output.writeLine(in.index, line)
}

// run supervises the instance from its first process until the group
// stops: wait for the process, record the exit, and after SetLive start it
// again with backoff. It owns the process's output and health goroutines.
func (in *instance) run(p *process) {
	defer in.g.loopExited()
	for {
		ranFor := in.runProcess(p)
		if in.g.ctx.Err() != nil || !in.waitLive() {
			return // stopping (or handed off): no restart
		}
		var ok bool
		if p, ok = in.restart(ranFor); !ok {
			return
		}
	}
}

// runProcess health-checks p until it exits, then cleans up after it and
// records the exit. It returns how long the process ran.
func (in *instance) runProcess(p *process) time.Duration {
	g := in.g
	healthCtx, stopHealth := context.WithCancel(g.ctx)
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		in.healthLoop(healthCtx)
	}()

	err := p.wait()
	ranFor := time.Since(p.started)
	g.mu.Lock()
	if g.handedOff {
		// Another baton process owns the process now (or saw it end):
		// nothing of it is ours to clean up or restart.
		g.mu.Unlock()
		stopHealth()
		<-healthDone
		return ranFor
	}
	in.proc = nil // from here on Stop must not signal this group id
	g.mu.Unlock()
	// Whatever the shell left behind dies with it; a restart starts clean
	// and nothing outlives Stop.
	if kerr := signalGroup(p.pid, syscall.SIGKILL); kerr != nil {
		g.log.Warn("kill leftover processes", "instance", in.index, "pgid", p.pid, "err", kerr)
	}
	g.sup.finishContainer(g.log, p) // a restart gets a new container
	g.sup.state.forget(g.log, p)    // nothing of it is left to reap after a crash of baton
	stopHealth()
	<-healthDone
	p.drainOutput() // the tail is complete before the exit is reported

	// An exit before going live because the port was taken between the
	// probe and the app: the caller may start again on other ports.
	g.mu.Lock()
	early := !g.live && !g.stopping
	g.mu.Unlock()
	taken := ""
	if early {
		taken = portTakenReason(in.port, in.tail.last(tailLines))
	}
	in.recordExit(exitDescription(err), ranFor, taken)
	return ranFor
}

// portTakenReason says why an instance that exited before going live most
// likely lost its port to another program between the probe that found it
// free and the app's bind ("" when nothing says so): another program
// listens there now (the instance's own processes are gone), or the app's
// last lines (all the tail keeps: a Java stack trace follows its message)
// say its bind failed with EADDRINUSE, as Go, Node, Python, Java and Ruby
// print it. The second catches a program that held the port only for a
// moment and left no listener to find: another baton's probe of the same
// port (ports.go) did that in a whole test run. An app that says so of
// some other port it binds is started again on other ports a few times
// in vain; its error quotes its own words.
func portTakenReason(port int, lastLines []string) string {
	if portListened(port) {
		return "another program listens there now"
	}
	for _, l := range lastLines {
		if strings.Contains(strings.ToLower(l), "address already in use") {
			return "the app could not bind it: address already in use"
		}
	}
	return ""
}

// portListened reports whether something listens on 127.0.0.1:port in
// baton's network namespace (false when it cannot tell).
func portListened(port int) bool {
	inodes, err := listeningInodes(os.Getpid(), port)
	return err == nil && len(inodes) > 0
}

// recordExit marks the instance down after its process ended; portTaken
// says why its port looks taken by another program ("" when it does not,
// and always once the group is live).
func (in *instance) recordExit(status string, ranFor time.Duration, portTaken string) {
	g := in.g
	g.mu.Lock()
	wasHealthy := in.healthy
	in.healthy, in.failures = false, 0
	in.lastCheck = "process exited (" + status + ")"
	stopping, live := g.stopping, g.live
	if !stopping {
		in.lastError = status
		in.exitedEarly = !live
		in.portTaken = portTaken // read only with exitedEarly
	}
	g.broadcastLocked()
	g.mu.Unlock()

	switch {
	case stopping:
		g.log.Info("instance stopped", "instance", in.index, "addr", in.addr, "status", status)
		return
	case live:
		g.log.Warn("instance crashed", "instance", in.index, "addr", in.addr, "status", status, "ran_for", ranFor)
	default:
		g.log.Warn("instance exited before going live", "instance", in.index, "addr", in.addr, "status", status, "last_output", in.tail.last(5))
	}
	// Reported outside the lock; never during Stop, where the whole group
	// is going away and the caller already routes around it.
	if wasHealthy && live && g.spec.OnHealth != nil {
		g.spec.OnHealth(in.addr, false)
	}
}

// waitLive blocks an instance that exited before SetLive until the group
// goes live (then it is restarted) or stops. It reports whether to restart.
func (in *instance) waitLive() bool {
	select {
	case <-in.g.ctx.Done():
		return false
	case <-in.g.liveCh:
		return true
	}
}

// restart waits out the backoff and starts a new process on the same
// port, retrying if the start itself fails. It returns false when the group
// stops first.
func (in *instance) restart(ranFor time.Duration) (*process, bool) {
	g := in.g
	for {
		delay := in.nextBackoff(ranFor)
		g.log.Info("restarting instance", "instance", in.index, "addr", in.addr, "backoff", delay)
		timer := time.NewTimer(delay)
		select {
		case <-g.ctx.Done():
			timer.Stop()
			return nil, false
		case <-timer.C:
		}

		g.mu.Lock()
		if g.stopping {
			g.mu.Unlock()
			return nil, false
		}
		// Started under the lock so Stop either sees this process or
		// prevents it; a process can never slip past Stop.
		p, err := in.startProcess()
		newlyLooping := in.countRestartLocked(time.Now())
		if err == nil {
			in.started(p)
			in.restarts++
			in.exitedEarly, in.portTaken = false, ""
		} else {
			in.lastError = "restart: " + err.Error()
		}
		restarts, lastError := in.restarts, in.lastError
		g.broadcastLocked()
		g.mu.Unlock()

		if newlyLooping {
			g.log.Error("instance is crash looping", "instance", in.index, "addr", in.addr,
				"restarts", g.cfg.CrashLoopRestarts, "window", g.cfg.CrashLoopWindow, "last_error", lastError)
		}
		if err != nil {
			g.log.Error("restart instance", "instance", in.index, "addr", in.addr, "err", err)
			ranFor = 0
			continue
		}
		g.log.Info("instance restarted", "instance", in.index, "addr", in.addr, "pid", p.pid, "restarts", restarts)
		return p, true
	}
}

// countRestartLocked records a restart attempt at now and reports whether
// it made the instance crash looping: CrashLoopRestarts attempts inside
// CrashLoopWindow. Caller holds g.mu.
func (in *instance) countRestartLocked(now time.Time) (newlyLooping bool) {
	cfg := in.g.cfg
	in.restartTimes = append(pruneBefore(in.restartTimes, now.Add(-cfg.CrashLoopWindow)), now)
	if in.crashLooping || len(in.restartTimes) < cfg.CrashLoopRestarts {
		return false
	}
	in.crashLooping = true
	return true
}

// nextBackoff counts a crash and returns how long to wait before the next
// start: RestartBackoffMin doubling per consecutive crash up to
// RestartBackoffMax, and always the maximum while crash looping. A run that
// lasted a whole crash-loop window counts as recovered and resets both.
func (in *instance) nextBackoff(ranFor time.Duration) time.Duration {
	cfg := in.g.cfg
	in.g.mu.Lock()
	defer in.g.mu.Unlock()
	if ranFor >= cfg.CrashLoopWindow {
		in.crashes, in.crashLooping = 0, false
	}
	in.crashes++
	if in.crashLooping {
		return cfg.RestartBackoffMax
	}
	delay := cfg.RestartBackoffMin
	for i := 1; i < in.crashes && delay < cfg.RestartBackoffMax; i++ {
		delay *= 2
	}
	return min(delay, cfg.RestartBackoffMax)
}

// started records p as the instance's running process. Caller holds g.mu.
func (in *instance) started(p *process) {
	in.proc = p
	in.startedAt = p.started
	in.lastCheck = "not checked yet"
}

// pruneBefore drops the times before cutoff from the sorted slice ts.
func pruneBefore(ts []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cutoff) {
		i++
	}
	return append(ts[:0], ts[i:]...)
}
