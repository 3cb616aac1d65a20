package supervisor

// Handing running instances from one baton process to the next, so that
// restarting baton does not restart the apps: the old process detaches its
// groups (Handoff) and passes each instance's output pipe to the new one,
// which takes the processes over (Adopt).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"syscall"
	"time"
)

// HandedInstance is one instance of a group handed to another process.
type HandedInstance struct {
	Index     int       `json:"index"`
	Port      int       `json:"port"`
	PID       int       `json:"pid"` // 0: no process ran (the next owner starts one)
	StartedAt time.Time `json:"started_at"`
	Restarts  int       `json:"restarts"`
	Healthy   bool      `json:"healthy"`
	// Output is the read end of the process's output pipe. It must reach
	// the next owner (exec.Cmd.ExtraFiles): once no process holds it, the
	// app's writes fail (SIGPIPE).
	Output *os.File `json:"-"`
	// Container is the container that PID (runc) runs; nil for an instance
	// run with /bin/sh. The next owner deletes it once runc exits.
	Container *ContainerRef `json:"container,omitempty"`
}

// Handoff detaches the group from this Supervisor without stopping its
// processes: health checks and restarts end, output is no longer read
// (a line being read at that moment may be lost), and the processes'
// records stay in StateDir for the next owner, which calls Adopt. The
// group is dead here afterwards: Stop and Close leave its processes alone.
func (g *Group) Handoff() ([]HandedInstance, error) {
	g.mu.Lock()
	if g.stopping || g.handedOff {
		g.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", g.spec.Name, ErrStopped)
	}
	g.handedOff = true
	g.cancel() // ends health checks and backoff waits
	out := make([]HandedInstance, len(g.instances))
	procs := make([]*process, len(g.instances))
	for i, in := range g.instances {
		out[i] = HandedInstance{Index: in.index, Port: in.port, Restarts: in.restarts, Healthy: in.healthy}
		if p := in.proc; p != nil {
			out[i].PID, out[i].StartedAt, out[i].Output, out[i].Container = p.pid, p.started, p.output, p.ctr
			procs[i] = p
		}
	}
	g.mu.Unlock()
	for _, p := range procs {
		if p == nil {
			continue
		}
		// The reader ends at the deadline; the pipe stays open for the next owner.
		_ = p.output.SetReadDeadline(time.Now())
		<-p.outDone
	}
	g.sup.detach(g, procs)
	g.log.Info("group handed off")
	return out, nil
}

// detach forgets a handed-off group: its ports and records are no longer
// ours, but the record files stay for the next owner.
func (s *Supervisor) detach(g *Group, procs []*process) {
	s.mu.Lock()
	delete(s.groups, g)
	s.mu.Unlock()
	s.ports.release(g.ports)
	s.state.mu.Lock()
	for _, p := range procs {
		if p != nil && s.state.owned[p.pid] == p {
			delete(s.state.owned, p.pid)
		}
	}
	s.state.mu.Unlock()
	for _, p := range procs {
		if p != nil && p.ctr != nil {
			s.containers.drop(p.ctr.ID)
		}
	}
}

// errAdoptedExit is how an adopted process ended: it is not our child, so
// its exit status cannot be known.
var errAdoptedExit = errors.New("exited (status unknown: the process was started by an earlier baton)")

// Adopt takes over the instances of spec that an earlier baton process
// handed off (see Handoff): their records become this Supervisor's, their
// output is read, their health checked, and the group is live, so an
// instance that exits is restarted as usual. An instance whose process is
// gone is started again (its container, if any, deleted first). Call it
// before ReapOrphans, which would otherwise kill the adopted processes and
// containers.
func (s *Supervisor) Adopt(spec Spec, handed []HandedInstance) (*Group, error) {
	spec, ctr, err := s.resolveSpec(spec)
	if err != nil {
		return nil, err
	}
	if len(handed) == 0 {
		return nil, fmt.Errorf("%s: nothing to adopt", spec.Name)
	}
	handed = append([]HandedInstance(nil), handed...)
	sort.Slice(handed, func(i, j int) bool { return handed[i].Index < handed[j].Index })
	ports := make([]int, len(handed))
	for i, h := range handed {
		ports[i] = h.Port
	}
	if err := s.ports.reserve(ports); err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	spec.Instances = len(handed)
	g, err := s.register(spec, ctr, ports)
	if err != nil {
		return nil, err
	}

	g.SetLive()
	var down []*instance
	for i, h := range handed {
		in := g.instances[i]
		in.restarts = h.Restarts
		p, err := adoptProcess(h)
		if err != nil {
			g.log.Warn("adopted instance is gone; starting it again", "instance", in.index, "pid", h.PID, "err", err)
			if h.Container != nil {
				s.finishContainer(g.log, &process{ctr: h.Container})
			}
			down = append(down, in)
			continue
		}
		if h.Container != nil {
			ref := *h.Container
			p.ctr = &ref
			s.containers.add(ref.ID)
		}
		g.mu.Lock()
		in.started(p)
		in.healthy = h.Healthy
		if h.Healthy {
			in.lastCheck = "ok (before the handoff)"
		}
		g.loops++
		g.mu.Unlock()
		s.state.mu.Lock()
		s.state.owned[p.pid] = p
		s.state.mu.Unlock()
		go func() {
			defer close(p.outDone)
			copyLines(p.output, in.emit)
		}()
		go in.run(p)
		g.log.Info("instance adopted", "instance", in.index, "addr", in.addr, "pid", p.pid)
	}
	for _, in := range down {
		if err := g.startInstance(in); err != nil {
			stopErr := g.Stop(context.Background())
			return nil, errors.Join(fmt.Errorf("%s: start instance %d: %w", spec.Name, in.index, err), stopErr)
		}
	}
	return g, nil
}

// adoptProcess wraps a handed process: its exit is watched through a
// pidfd, which becomes readable when the process ends, child or not.
func adoptProcess(h HandedInstance) (*process, error) {
	if h.PID <= 1 || h.Output == nil {
		return nil, errors.New("no process was running")
	}
	pidfd, err := pidfdOpen(h.PID)
	if err != nil {
		return nil, err
	}
	rc, err := pidfd.SyscallConn()
	if err != nil {
		pidfd.Close()
		return nil, err
	}
	wait := func() error {
		defer pidfd.Close()
		first := true
		_ = rc.Read(func(uintptr) bool {
			if first {
				first = false
				return !processAlive(h.PID)
			}
			return true // readable: the process has ended
		})
		return errAdoptedExit
	}
	return &process{wait: wait, pid: h.PID, output: h.Output, outDone: make(chan struct{}), started: h.StartedAt}, nil
}

// InheritedPipe returns the output pipe of a handed instance that this
// process inherited as file descriptor fd. Pipes come through exec in
// blocking mode; this one is made pollable first, so that reads can be
// ended by a deadline or Close as with the pipes of instances started here.
func InheritedPipe(fd uintptr, name string) (*os.File, error) {
	if err := syscall.SetNonblock(int(fd), true); err != nil {
		return nil, fmt.Errorf("inherited pipe %d: %w", fd, err)
	}
	return os.NewFile(fd, name), nil
}

// pidfdOpen returns a non-blocking pidfd of pid (Linux 5.10 or later).
func pidfdOpen(pid int) (*os.File, error) {
	const sysPidfdOpen = 434 // the same number on every Linux architecture
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), uintptr(syscall.O_NONBLOCK), 0)
	if errno != 0 {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, errno)
	}
	return os.NewFile(fd, fmt.Sprintf("pidfd:%d", pid)), nil
}
