package supervisor

// Running instances and commands as runc containers. The supervisor still
// starts one child per run, through the same gate (startGated), but the
// child is `runc run` in the foreground instead of the app's shell: runc
// stays our child for as long as the container runs, forwards the signals
// it gets (SIGTERM from Stop) to the container's init, copies the
// container's stdout and stderr to the pipe we read, and exits with the
// init's status. The container's init is in its own session (runc calls
// setsid), so signals to runc's process group reach it only through runc,
// and SIGKILL, which runc cannot forward, goes through `runc kill`.
// Whatever ends the run, `runc delete -f` follows: it kills a container
// whose runc died first and removes what runc left; then the bundle is
// removed.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/batonhq/baton"
)

// Container runs an instance (Spec) or a command (Command) as a runc
// container of an image instead of with /bin/sh -c. The container shares
// the host's network; it has its own pid, mount, IPC and UTS namespaces, a
// read-only root with writable tmpfs /tmp and /run, and the host's
// /etc/hosts and /etc/resolv.conf. runc copies the app's stdout and stderr
// through two pipes of its own to the one baton reads, so a stdout line
// and a stderr line written at the same moment may swap places, and lines
// written in pieces to both may interleave.
//
// The app is PID 1 of its pid namespace, and the kernel delivers a signal
// to that process only once it has a handler for it: an app that handles
// no SIGTERM (or is still starting up when it comes) is killed when the
// grace period ends.
type Container struct {
	// Runtime is the runc binary; "" is Config.ContainerRuntime, else
	// "runc" from PATH or /usr/sbin/runc (where Debian puts it).
	Runtime string
	// StateRoot is runc's --root, where it keeps the state of baton's
	// containers; "" is Config.ContainerStateRoot. It should hold only
	// baton's containers: ReapOrphans kills baton's there that no instance
	// of this Supervisor owns.
	StateRoot string
	// BundleDir is where each run gets its bundle (a directory holding
	// config.json, named after the container), removed when the run ends;
	// "" is Config.ContainerBundleDir.
	BundleDir string
	// Rootfs is the image's unpacked root filesystem, shared by every
	// instance and revision of the image and mounted read-only. runc
	// creates missing mount points in it (/proc, /dev, /sys, /tmp, /run,
	// /etc/hosts, /etc/resolv.conf) on the first start.
	Rootfs string
	// Args is what runs: the image's entrypoint and cmd, resolved. For a
	// Command it is the whole command line.
	Args []string
	// Cwd is the working directory inside the container; "" is "/".
	Cwd string
	// User is "uid[:gid]" with numbers, or names resolved through Rootfs's
	// /etc/passwd and /etc/group; "" is 0:0. A user named or found in
	// /etc/passwd also gets the groups listing it in /etc/group, and HOME
	// from /etc/passwd unless the environment sets it.
	User string
	// Env is the image's own environment. Spec.Env (or Command.Env) and
	// PORT are added after it and win; PATH defaults to the usual one.
	// Spec.Env should then hold only what the app is given (settings), not
	// baton's own environment: baton's PATH would replace the image's.
	Env []string
	// MemoryBytes limits the container's memory; 0 is no limit.
	MemoryBytes int64
	// CPUs limits the container's CPU time, in cores; 0 is no limit.
	CPUs float64
}

// ContainerRef names a container that a run started: what stopping and
// deleting it needs. It is kept in the process record and handed to the
// next baton with HandedInstance.
type ContainerRef struct {
	ID      string `json:"id"`
	Runtime string `json:"runtime"` // absolute path of the runc binary
	Root    string `json:"root"`    // runc --root
	Bundle  string `json:"bundle"`  // removed with the container
}

const (
	// containerPrefix starts the ID of every container baton starts; it
	// tells baton's containers from others in a state root.
	containerPrefix = "baton-"
	// runtimeTimeout bounds one runc command (kill, delete, list).
	runtimeTimeout = 10 * time.Second
	// defaultPath is the PATH of a container whose environment sets none.
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// Annotations in config.json say whose a container is, so ReapOrphans
	// can name one it found by listing.
	annotationName  = "baton.name"
	annotationIndex = "baton.index"
	annotationLabel = "baton.label"
)

// errNoRuntime is what starting a container without runc says.
const errNoRuntime = "runc is not installed: apt-get install runc"

// containerSetup is a Container checked and resolved for one group or
// command: absolute paths, the user as numbers, the limits.
type containerSetup struct {
	Container
	uid, gid uint32
	groups   []uint32
	home     string // from /etc/passwd; "" when the user is not there
	nofile   uint64 // RLIMIT_NOFILE, soft and hard: baton's hard limit
}

// resolveContainer checks c and fills its defaults from cfg. It fails
// with errNoRuntime when runc cannot be found.
func resolveContainer(cfg Config, name string, c Container) (*containerSetup, error) {
	if c.Runtime == "" {
		c.Runtime = cfg.ContainerRuntime
	}
	runtime, err := lookRuntime(c.Runtime)
	if err != nil {
		return nil, baton.Errorf(baton.EUNAVAILABLE, "%s: %s (%v)", name, errNoRuntime, err)
	}
	if c.StateRoot == "" {
		c.StateRoot = cfg.ContainerStateRoot
	}
	if c.BundleDir == "" {
		c.BundleDir = cfg.ContainerBundleDir
	}
	switch {
	case c.StateRoot == "":
		return nil, baton.Errorf(baton.EINVALID, "%s: no container state root (Container.StateRoot or Config.ContainerStateRoot)", name)
	case c.BundleDir == "":
		return nil, baton.Errorf(baton.EINVALID, "%s: no container bundle directory (Container.BundleDir or Config.ContainerBundleDir)", name)
	case len(c.Args) == 0 || c.Args[0] == "":
		return nil, baton.Errorf(baton.EINVALID, "%s: the container has nothing to run (no args)", name)
	case c.MemoryBytes < 0 || c.CPUs < 0:
		return nil, baton.Errorf(baton.EINVALID, "%s: container limits must not be negative", name)
	case c.Cwd != "" && !filepath.IsAbs(c.Cwd):
		return nil, baton.Errorf(baton.EINVALID, "%s: container working directory %q is not absolute", name, c.Cwd)
	}
	setup := &containerSetup{Container: c}
	setup.Runtime = runtime
	for _, p := range []*string{&setup.Runtime, &setup.StateRoot, &setup.BundleDir, &setup.Rootfs} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
	}
	if setup.Cwd == "" {
		setup.Cwd = "/"
	}
	setup.Args = append([]string(nil), c.Args...)
	setup.Env = append([]string(nil), c.Env...)
	if info, err := os.Stat(setup.Rootfs); err != nil || !info.IsDir() {
		return nil, baton.Errorf(baton.EINVALID, "%s: container root filesystem %q is not a directory", name, c.Rootfs)
	}
	if err := prepareRootfs(setup.Rootfs); err != nil {
		return nil, fmt.Errorf("%s: prepare the container root filesystem: %w", name, err)
	}
	if setup.uid, setup.gid, setup.groups, setup.home, err = resolveUser(setup.Rootfs, c.User); err != nil {
		return nil, baton.Errorf(baton.EINVALID, "%s: container user: %v", name, err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Errorf("read the open files limit: %w", err)
	}
	// No more than baton's own: raising a limit needs CAP_SYS_RESOURCE.
	setup.nofile = lim.Max
	return setup, nil
}

// prepareRootfs creates the mount points of /tmp and /run in rootfs if
// the image has none. runc would create them too, but with mode 0755, and
// it gives a tmpfs the mode of the directory it covers: a /tmp it created
// would not be writable for a user other than root from the second start
// on.
func prepareRootfs(rootfs string) error {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	for name, mode := range map[string]os.FileMode{"tmp": 0o777 | os.ModeSticky, "run": 0o755} {
		err := root.Mkdir(name, 0o700)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err == nil {
			err = root.Chmod(name, mode) // Mkdir's mode is cut by the umask
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// lookRuntime returns the absolute path of the runtime binary; "" is runc
// from PATH, else /usr/sbin/runc: a PATH without sbin is common outside a
// login shell.
func lookRuntime(runtime string) (string, error) {
	if runtime != "" {
		return exec.LookPath(runtime)
	}
	path, err := exec.LookPath("runc")
	if err != nil {
		if info, serr := os.Stat("/usr/sbin/runc"); serr == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			return "/usr/sbin/runc", nil
		}
	}
	return path, err
}

// containerRun is one run of a container: the ID and bundle it gets, the
// labels it carries.
type containerRun struct {
	setup    *containerSetup
	ref      ContainerRef
	hostname string
	env      []string
	labels   map[string]string
}

// newContainerRun names a run of setup for the instance index of name (or
// the command label, index 0) and merges its environment: the image's,
// then env, which wins.
func newContainerRun(setup *containerSetup, name string, index int, label string, env []string) (*containerRun, error) {
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, err
	}
	part := strconv.Itoa(index)
	labels := map[string]string{annotationName: name, annotationIndex: part}
	if label != "" || index == 0 {
		part = orDefault(label, "command")
		labels[annotationLabel] = part
	}
	base := sanitizeID(name) + "-" + sanitizeID(part)
	id := containerPrefix + base + "-" + hex.EncodeToString(suffix[:])
	merged := mergeEnv(setup.Env, env)
	if setup.home != "" && !hasEnv(merged, "HOME") {
		merged = append(merged, "HOME="+setup.home)
	}
	if !hasEnv(merged, "PATH") {
		merged = append([]string{defaultPath}, merged...)
	}
	return &containerRun{
		setup: setup,
		ref: ContainerRef{
			ID: id, Runtime: setup.Runtime, Root: setup.StateRoot,
			Bundle: filepath.Join(setup.BundleDir, id),
		},
		hostname: truncate(strings.ToLower(base), 63),
		env:      merged,
		labels:   labels,
	}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

var idUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// sanitizeID makes s usable in a container ID (letters, digits, "_.-")
// and a host name, at most 64 bytes.
func sanitizeID(s string) string {
	return truncate(idUnsafe.ReplaceAllString(s, "_"), 64)
}

// validContainerID reports whether id can be one of baton's containers;
// a record or listing naming anything else is not acted on.
var validContainerID = regexp.MustCompile(`^` + containerPrefix + `[A-Za-z0-9_.-]+$`).MatchString

// mergeEnv returns base followed by over, one entry per name, the last
// value winning and the first position kept. execve would hand duplicates
// to the app, and most programs read the first.
func mergeEnv(base, over []string) []string {
	out := make([]string, 0, len(base)+len(over))
	at := make(map[string]int)
	for _, kv := range append(append([]string(nil), base...), over...) {
		name, _, _ := strings.Cut(kv, "=")
		if i, ok := at[name]; ok {
			out[i] = kv
			continue
		}
		at[name] = len(out)
		out = append(out, kv)
	}
	return out
}

func hasEnv(env []string, name string) bool {
	for _, kv := range env {
		if n, _, _ := strings.Cut(kv, "="); n == name {
			return true
		}
	}
	return false
}

// writeBundle creates the run's bundle with its config.json. The bundle
// holds the app's environment, secrets included: only root may read it.
func (r *containerRun) writeBundle() error {
	data, err := json.MarshalIndent(r.ociSpec(), "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.setup.BundleDir, 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(r.ref.Bundle, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.ref.Bundle, "config.json"), data, 0o600); err != nil {
		_ = os.RemoveAll(r.ref.Bundle)
		return err
	}
	return nil
}

// command is the shell command startGated runs once the gate opens.
func (ref *ContainerRef) command() string {
	return "exec " + shellQuote(ref.Runtime) + " --root " + shellQuote(ref.Root) +
		" run --bundle " + shellQuote(ref.Bundle) + " " + shellQuote(ref.ID)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runtimeCmd runs the runtime with args under ref's root and returns its
// combined output.
func (ref *ContainerRef) runtimeCmd(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runtimeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ref.Runtime, append([]string{"--root", ref.Root}, args...)...)
	cmd.Env = []string{defaultPath}
	return cmd.CombinedOutput()
}

// errNoContainer: the runtime does not know the container (any more).
var errNoContainer = errors.New("container does not exist")

func runtimeError(what string, out []byte, err error) error {
	msg := strings.TrimSpace(string(out))
	if strings.Contains(msg, "does not exist") {
		return errNoContainer
	}
	return fmt.Errorf("runc %s: %w: %s", what, err, msg)
}

// kill sends sig ("TERM", "KILL") to the container's init.
func (ref *ContainerRef) kill(sig string) error {
	if out, err := ref.runtimeCmd("kill", ref.ID, sig); err != nil {
		return runtimeError("kill", out, err)
	}
	return nil
}

// remove deletes the container, killing it first if it still runs, and
// removes its bundle. A container that is gone already is not an error.
func (ref *ContainerRef) remove() error {
	var errs []error
	if out, err := ref.runtimeCmd("delete", "--force", ref.ID); err != nil {
		if err = runtimeError("delete", out, err); !errors.Is(err, errNoContainer) {
			errs = append(errs, err)
		}
	}
	// Only ever a directory named after one of our containers.
	if validContainerID(ref.ID) && filepath.Base(ref.Bundle) == ref.ID && filepath.IsAbs(ref.Bundle) {
		if err := os.RemoveAll(ref.Bundle); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// listedContainer is one entry of `runc list --format json`.
type listedContainer struct {
	ID          string            `json:"id"`
	PID         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations"`
}

// listContainers returns baton's containers under root.
func listContainers(runtime, root string) ([]listedContainer, error) {
	ref := ContainerRef{Runtime: runtime, Root: root}
	out, err := ref.runtimeCmd("list", "--format", "json")
	if err != nil {
		return nil, runtimeError("list", out, err)
	}
	var all []listedContainer
	if err := json.Unmarshal(out, &all); err != nil {
		return nil, fmt.Errorf("runc list: %w: %s", err, out)
	}
	var ours []listedContainer
	for _, c := range all {
		if validContainerID(c.ID) {
			ours = append(ours, c)
		}
	}
	return ours, nil
}

// ownedContainers is the set of container IDs this Supervisor runs (or
// adopted); ReapOrphans leaves them alone.
type ownedContainers struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func (o *ownedContainers) add(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ids == nil {
		o.ids = make(map[string]struct{})
	}
	o.ids[id] = struct{}{}
}

func (o *ownedContainers) drop(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.ids, id)
}

func (o *ownedContainers) has(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.ids[id]
	return ok
}

// startContainer writes the bundle of run and starts `runc run` through
// startGated, recorded in rec with the container. The container is owned
// from before runc creates it until finishContainer.
func (s *Supervisor) startContainer(run *containerRun, rec stateRecord, gc gated) (*process, error) {
	s.containers.add(run.ref.ID) // before its bundle exists: ReapOrphans sweeps the others
	if err := run.writeBundle(); err != nil {
		s.containers.drop(run.ref.ID)
		return nil, fmt.Errorf("write container bundle: %w", err)
	}
	ref := run.ref
	rec.Container = &ref
	gc.rec = rec
	gc.command = ref.command()
	gc.dir = ref.Bundle // runc runs there anyway; the record's check reads it
	gc.env = []string{defaultPath}
	p, err := s.startGated(gc)
	if err != nil {
		s.containers.drop(ref.ID)
		_ = ref.remove()
		return nil, err
	}
	p.ctr = &ref
	return p, nil
}

// finishContainer deletes the container of p, if it has one, after its
// runc exited: it kills a container whose runc was killed, removes what
// runc left behind and the bundle.
func (s *Supervisor) finishContainer(log *slog.Logger, p *process) {
	if p.ctr == nil {
		return
	}
	if err := p.ctr.remove(); err != nil {
		log.Warn("delete container", "container", p.ctr.ID, "err", err)
	}
	s.containers.drop(p.ctr.ID)
}
