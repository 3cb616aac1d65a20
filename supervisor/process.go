package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// outputDrainTimeout bounds how long output is still read after an
// instance's process group was killed. Only a process that left the group
// (setsid) can keep the pipe open that long; its output is then cut off so
// Stop cannot hang on it.
const outputDrainTimeout = time.Second

// process is one run of an instance: the shell, its process group, and the
// goroutine copying its output.
type process struct {
	// wait blocks until the process exits: exec.Cmd.Wait for a process
	// started here, a pidfd for one adopted from an earlier baton (it is
	// not our child, so wait(2) cannot see it).
	wait func() error
	pid  int // also the process group id (Setpgid)
	// ctr is the container runc runs in this process; nil for a process
	// running a command with /bin/sh.
	ctr     *ContainerRef
	output  *os.File
	outDone chan struct{} // closed when the output goroutine returned
	started time.Time
}

// startProcess starts the instance's command (see startGated) with the
// spec's environment plus PORT. Callers hold g.mu.
func (in *instance) startProcess() (*process, error) {
	spec := in.g.spec
	// Never nil: a nil Env would hand the app baton's own environment.
	env := append(append(make([]string, 0, len(spec.Env)+1), spec.Env...), "PORT="+strconv.Itoa(in.port))
	rec := stateRecord{Name: spec.Name, Index: in.index}
	var p *process
	var err error
	if ctr := in.g.ctr; ctr != nil {
		var run *containerRun
		if run, err = newContainerRun(ctr, spec.Name, in.index, "", env); err == nil {
			p, err = in.g.sup.startContainer(run, rec, gated{log: in.g.log})
		}
	} else {
		p, err = in.g.sup.startGated(gated{command: spec.Command, dir: spec.Dir, env: env, rec: rec, log: in.g.log})
	}
	if err != nil {
		return nil, err
	}
	go func() {
		defer close(p.outDone)
		copyLines(p.output, in.emit)
	}()
	return p, nil
}

// gated is a process for startGated to start.
type gated struct {
	command string   // run by /bin/sh -c once the gate opens
	dir     string   // working directory; "" is baton's
	env     []string // the whole environment
	// rec is the record to write: Name, Index, Label; startGated fills in
	// the process and the directory.
	rec stateRecord
	log *slog.Logger
	// mustRecord keeps the command from running at all if its record
	// cannot be written (the shell exits 111 at the gate and startGated
	// fails); otherwise the failure is logged and the command runs.
	mustRecord bool
	// yield runs the command at a lower CPU and I/O priority than baton
	// (lowerPriority): a build or release command, never an instance.
	yield bool
}

// startGated starts a command with /bin/sh -c in a new process group and
// records it in the state directory before the command may run: the shell
// waits at a gate (fd 3) until the record is written. If baton dies before
// it could write the record, the gate's write end closes with it, the read
// ends at EOF and the shell exits instead of running a command that nobody
// knows of. Its stdout and stderr share one pipe, p.output, so lines keep
// the order they were written in; the caller reads it and closes
// p.outDone when done.
func (s *Supervisor) startGated(gc gated) (*process, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	gateR, gateW, err := os.Pipe()
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	defer gateW.Close()
	// The trap: a shell that does not exec its last command (dash, the
	// usual /bin/sh) would die of a stop's SIGTERM at once, and the
	// process group's SIGKILL that follows its exit would cut short the
	// app's own graceful shutdown. With a trap the shell runs it only
	// after the command it waits for has ended (POSIX), then exits; the
	// app gets SIGTERM with its default action (a caught signal is reset
	// by exec).
	cmd := exec.Command("/bin/sh", "-c", "read -r _ <&3 || exit 111; exec 3<&-; trap 'exit 143' TERM\n"+gc.command)
	cmd.ExtraFiles = []*os.File{gateR}
	cmd.Dir = gc.dir
	cmd.Env = gc.env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	// An *os.File is passed to the child as is: no copying goroutine inside
	// os/exec, and Wait returns as soon as the shell exits even if a
	// background child still holds the pipe.
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	_ = w.Close()
	_ = gateR.Close()
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	p := &process{
		wait:    cmd.Wait,
		pid:     cmd.Process.Pid,
		output:  r,
		outDone: make(chan struct{}),
		started: time.Now(),
	}
	if err := s.state.record(gc.log, gc.rec, gc.dir, p); err != nil && gc.mustRecord {
		// The gate closes unopened: the shell exits without running it.
		_ = gateW.Close()
		_ = cmd.Wait()
		_ = signalGroup(p.pid, syscall.SIGKILL)
		_ = r.Close()
		return nil, fmt.Errorf("record the process before it runs: %w", err)
	}
	if gc.yield {
		if err := lowerPriority(p.pid); err != nil {
			// It runs all the same, only at baton's priority.
			gc.log.Warn("lower the priority of the command", "pid", p.pid, "err", err)
		}
	}
	_, _ = gateW.Write([]byte("\n")) // an error means the shell is gone already
	return p, nil
}

// drainOutput waits for the output goroutine to read to the end of the
// pipe, at most outputDrainTimeout, then closes the pipe.
func (p *process) drainOutput() {
	timer := time.NewTimer(outputDrainTimeout)
	defer timer.Stop()
	select {
	case <-p.outDone:
	case <-timer.C:
		// Closing the read end unblocks the pending Read.
		_ = p.output.Close()
		<-p.outDone
	}
	_ = p.output.Close()
}

// exitDescription says how a process ended: "exit status 3",
// "signal: killed".
func exitDescription(err error) string {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &exitErr):
		return exitErr.ProcessState.String()
	default:
		return err.Error()
	}
}

// signalGroup sends sig to every process in the process group pgid. A group
// that is already gone is not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	// The negative pid addresses the whole group, so children of the shell
	// (a "cmd &" in the command, workers the app forked) are signalled too.
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
