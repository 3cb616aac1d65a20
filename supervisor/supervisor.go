// Package supervisor runs app instances as OS processes, or as runc
// containers of an image (see Container): it gives each a free port,
// captures its output, checks its health, restarts it when it crashes and
// stops it (with its children) on request.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/batonhq/baton"
)

// Config tunes a Supervisor. Zero fields take the defaults below.
type Config struct {
	// Logger receives the supervisor's events; nil discards them.
	Logger *slog.Logger
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL.
	// Default 5s.
	StopGrace time.Duration
	// RestartBackoffMin and RestartBackoffMax bound the wait before a
	// crashed instance is restarted; it doubles per consecutive crash.
	// Defaults 200ms and 10s.
	RestartBackoffMin, RestartBackoffMax time.Duration
	// An instance restarted CrashLoopRestarts times within CrashLoopWindow
	// is crash looping: it is still restarted, always at RestartBackoffMax,
	// and Status reports it until it has run a whole window without
	// crashing. Defaults 5 and 60s.
	CrashLoopRestarts int
	CrashLoopWindow   time.Duration
	// StateDir, when set, is where every running instance process and
	// command (Run) is recorded as a file "<pgid>.pid" holding JSON (pgid,
	// pid, name, index, label, dir, started_at), from just after it starts
	// (before it may run its command) until it has exited and been reaped. ReapOrphans uses the records to kill the processes a
	// killed baton left behind. It is created (mode 0700) if missing, and
	// must not be shared by two running Supervisors. Empty: no records.
	StateDir string
	// ContainerRuntime, ContainerStateRoot and ContainerBundleDir are the
	// defaults of Container.Runtime, StateRoot and BundleDir. ReapOrphans
	// lists the containers in ContainerStateRoot (and in every state root a
	// record names) and kills baton's that no instance of this Supervisor
	// owns, so like StateDir it must not be shared by two running
	// Supervisors. Empty runtime: "runc" from PATH.
	ContainerRuntime   string
	ContainerStateRoot string
	ContainerBundleDir string
}

// Config defaults.
const (
	DefaultStopGrace         = 5 * time.Second
	DefaultRestartBackoffMin = 200 * time.Millisecond
	DefaultRestartBackoffMax = 10 * time.Second
	DefaultCrashLoopRestarts = 5
	DefaultCrashLoopWindow   = 60 * time.Second
)

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.StopGrace <= 0 {
		c.StopGrace = DefaultStopGrace
	}
	if c.RestartBackoffMin <= 0 {
		c.RestartBackoffMin = DefaultRestartBackoffMin
	}
	if c.RestartBackoffMax <= 0 {
		c.RestartBackoffMax = DefaultRestartBackoffMax
	}
	c.RestartBackoffMax = max(c.RestartBackoffMax, c.RestartBackoffMin)
	if c.CrashLoopRestarts <= 0 {
		c.CrashLoopRestarts = DefaultCrashLoopRestarts
	}
	if c.CrashLoopWindow <= 0 {
		c.CrashLoopWindow = DefaultCrashLoopWindow
	}
	return c
}

// Supervisor starts groups of app instances and owns them until they are
// stopped. Its methods are safe for concurrent use.
type Supervisor struct {
	cfg   Config
	log   *slog.Logger
	ports portSet
	state *stateFiles
	// containers are the IDs of the containers this Supervisor runs.
	containers ownedContainers

	mu     sync.Mutex
	groups map[*Group]struct{}
	closed bool
	// commands holds the cancel of every command Run runs, by a number.
	commands map[uint64]context.CancelCauseFunc
	nextCmd  uint64
	cmdWG    sync.WaitGroup
}

// New returns a Supervisor; it starts nothing until Start.
func New(cfg Config) *Supervisor {
	cfg = cfg.withDefaults()
	return &Supervisor{
		cfg:    cfg,
		log:    cfg.Logger,
		state:  newStateFiles(cfg.StateDir),
		groups: make(map[*Group]struct{}),

		commands: make(map[uint64]context.CancelCauseFunc),
	}
}

// Start allocates a free 127.0.0.1 port per instance, starts every
// instance's process in its own process group and begins health checks.
// It returns once the processes run; use WaitHealthy to wait for them to
// serve. If a process cannot be started, the ones already started are
// stopped (bounded by ctx) and the error says which instance failed.
// ctx bounds only the start itself, not the life of the group.
func (s *Supervisor) Start(ctx context.Context, spec Spec) (*Group, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	spec, ctr, err := s.resolveSpec(spec)
	if err != nil {
		return nil, err
	}
	ports, err := s.ports.allocate(spec.Instances)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	g, err := s.register(spec, ctr, ports)
	if err != nil {
		return nil, err
	}

	for _, in := range g.instances {
		err := ctx.Err()
		if err == nil {
			err = g.startInstance(in)
		}
		if err != nil {
			err = fmt.Errorf("%s: start instance %d: %w", spec.Name, in.index, err)
			if stopErr := g.Stop(ctx); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
			return nil, err
		}
	}
	return g, nil
}

// resolveSpec checks spec, fills its defaults and resolves its container,
// if any (once per group: the runtime is looked up, the user resolved).
func (s *Supervisor) resolveSpec(spec Spec) (Spec, *containerSetup, error) {
	spec, err := spec.withDefaults()
	if err != nil || spec.Container == nil {
		return spec, nil, err
	}
	ctr, err := resolveContainer(s.cfg, spec.Name, *spec.Container)
	return spec, ctr, err
}

// register creates a group on ports (owned already) and records it, unless
// the Supervisor is closed (then the ports are released).
func (s *Supervisor) register(spec Spec, ctr *containerSetup, ports []int) (*Group, error) {
	g := newGroup(s, spec, ctr, ports)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.ports.release(ports)
		return nil, baton.Errorf(baton.EUNAVAILABLE, "supervisor is closed")
	}
	s.groups[g] = struct{}{}
	return g, nil
}

// forget drops a stopped group and frees its ports.
func (s *Supervisor) forget(g *Group) {
	s.mu.Lock()
	delete(s.groups, g)
	s.mu.Unlock()
	s.ports.release(g.ports)
}

// Close stops every group still running, all at once, kills every command
// Run runs, and returns when their processes have exited and their
// goroutines ended. Start and Run fail afterwards. Close is idempotent.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	s.closed = true
	groups := make([]*Group, 0, len(s.groups))
	for g := range s.groups {
		groups = append(groups, g)
	}
	s.mu.Unlock()

	// SIGTERM everything first so the grace periods run in parallel.
	for _, g := range groups {
		g.beginStop()
	}
	s.stopCommands()
	var errs []error
	for _, g := range groups {
		if err := g.Stop(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func addrOf(port int) string {
	return "127.0.0.1:" + strconv.Itoa(port)
}
