package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"

	"github.com/batonhq/baton"
)

// Command is a one-shot command that Run runs to completion: a build or a
// release step.
type Command struct {
	// Name is what the command belongs to (a deployment id) and Label what
	// it is ("build", "release"); both are recorded and come back from
	// ReapOrphans.
	Name, Label string
	// Command runs with /bin/sh -c in Dir, with exactly Env (nil: empty).
	Command string
	Dir     string
	Env     []string
	// Container, when set, runs Container.Args in a one-off container of
	// an image instead of Command (which must be empty; Dir is not used).
	// Env is added to the image's environment and wins.
	Container *Container
	// Output receives each line of its stdout and stderr; nil drops them.
	Output func(line string)
}

// Run runs cmd in a new process group and waits for it, at a lower CPU and
// I/O priority than baton and its instances (commandNice), so that a build
// does not slow down the requests they serve meanwhile. Like an instance,
// the command is recorded in StateDir before it may run, so ReapOrphans
// kills it should baton die meanwhile; unlike an instance, it does not run
// at all if its record cannot be written. When ctx ends first (a deadline,
// a cancel, Close), the whole group is killed with SIGKILL; when the shell
// exits, whatever it left in its group is killed too. Run returns only
// once no process of the group is left (or, for a process stuck in the
// kernel, after a bounded wait: its record then stays for ReapOrphans) and
// the output has been read; then the record is removed. The error is how
// the shell ended ("exit status 3"), or ctx's cause if ctx ended.
//
// With a Container the process group is runc's: killing it leaves the
// container running, so Run deletes the container (`runc delete -f`, which
// kills it) and its bundle before it returns, however the run ended. runc
// exits with the exit code of the container's process (128+n when signal
// n killed it).
func (s *Supervisor) Run(ctx context.Context, cmd Command) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done, err := s.addCommand(cancel)
	if err != nil {
		return err
	}
	defer done()

	log := s.log.With("name", cmd.Name, "label", cmd.Label)
	p, err := s.startCommand(cmd, log)
	if err != nil {
		return fmt.Errorf("start %s command: %w", cmd.Label, err)
	}
	go func() {
		defer close(p.outDone)
		copyLines(p.output, func(line []byte) {
			if cmd.Output != nil {
				cmd.Output(string(line))
			}
		})
	}()
	exited := make(chan error, 1)
	go func() { exited <- p.wait() }()
	var waitErr error
	select {
	case waitErr = <-exited:
	case <-ctx.Done():
		// A container is killed through runc, which then copies its last
		// output and exits; runc itself only if that fails.
		if p.ctr == nil || p.ctr.kill("KILL") != nil {
			if err := signalGroup(p.pid, syscall.SIGKILL); err != nil {
				log.Warn("kill command", "pid", p.pid, "err", err)
			}
		}
		waitErr = <-exited
	}
	// Nothing the command started outlives it.
	if err := signalGroup(p.pid, syscall.SIGKILL); err != nil {
		log.Warn("kill what the command left running", "pid", p.pid, "err", err)
	}
	gone, cancelWait := context.WithTimeout(context.Background(), orphanKillWait)
	waitGone(gone, []int{p.pid}, nil)
	cancelWait()
	p.drainOutput()
	s.finishContainer(log, p)
	if groupAlive(p.pid) {
		log.Error("command still running after SIGKILL; its record stays for the next start", "pid", p.pid)
	} else {
		s.state.forget(log, p)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return waitErr
}

// startCommand starts cmd with /bin/sh or in its container.
func (s *Supervisor) startCommand(cmd Command, log *slog.Logger) (*process, error) {
	rec := stateRecord{Name: cmd.Name, Label: cmd.Label}
	if cmd.Container == nil {
		return s.startGated(gated{command: cmd.Command, dir: cmd.Dir, env: cmd.Env, rec: rec, log: log, mustRecord: true, yield: true})
	}
	if cmd.Command != "" {
		return nil, baton.Errorf(baton.EINVALID, "a command and a container to run: give one")
	}
	setup, err := resolveContainer(s.cfg, cmd.Name, *cmd.Container)
	if err != nil {
		return nil, err
	}
	run, err := newContainerRun(setup, cmd.Name, 0, cmd.Label, cmd.Env)
	if err != nil {
		return nil, err
	}
	return s.startContainer(run, rec, gated{log: log, mustRecord: true, yield: true})
}

// addCommand registers the cancel of a running command, for Close. It
// fails once the Supervisor is closed; done unregisters it.
func (s *Supervisor) addCommand(cancel context.CancelCauseFunc) (done func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, baton.Errorf(baton.EUNAVAILABLE, "supervisor is closed")
	}
	s.nextCmd++
	id := s.nextCmd
	s.commands[id] = cancel
	s.cmdWG.Add(1)
	return func() {
		s.mu.Lock()
		delete(s.commands, id)
		s.mu.Unlock()
		s.cmdWG.Done()
	}, nil
}

// errClosed is the cause given to commands that Close kills.
var errClosed = baton.Errorf(baton.EUNAVAILABLE, "the supervisor was closed")

// stopCommands kills every running command and waits for Run to return.
// Callers have set s.closed.
func (s *Supervisor) stopCommands() {
	s.mu.Lock()
	for _, cancel := range s.commands {
		cancel(errClosed)
	}
	s.mu.Unlock()
	s.cmdWG.Wait()
}
