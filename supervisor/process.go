package supervisor

import (
	"errors"
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
	wait    func() error
	pid     int // also the process group id (Setpgid)
	output  *os.File
	outDone chan struct{} // closed when the output goroutine returned
	started time.Time
}

// startProcess starts the instance's command with /bin/sh -c in a new
// process group, with the spec's environment plus PORT, and records it in
// the state directory. Its stdout and stderr share one pipe so lines keep
// the order the app wrote them in. Callers hold g.mu.
func (in *instance) startProcess() (*process, error) {
	spec := in.g.spec
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
	// The shell waits at the gate (fd 3) until the process is recorded: if
	// baton dies before it could write the record, the gate's write end
	// closes with it, the read ends at EOF and the shell exits instead of
	// running an app that nobody knows of.
	cmd := exec.Command("/bin/sh", "-c", "read -r _ <&3 || exit 111; exec 3<&-\n"+spec.Command)
	cmd.ExtraFiles = []*os.File{gateR}
	cmd.Dir = spec.Dir
	// Never nil: a nil Env would hand the app baton's own environment.
	cmd.Env = append(append(make([]string, 0, len(spec.Env)+1), spec.Env...), "PORT="+strconv.Itoa(in.port))
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
	in.recordProcess(p)
	_, _ = gateW.Write([]byte("\n")) // an error means the shell is gone already
	go func() {
		defer close(p.outDone)
		copyLines(r, in.emit)
	}()
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
