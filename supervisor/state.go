package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// With Config.StateDir set, every running instance process and every
// one-shot command (Supervisor.Run) has a record file there, so that a baton killed without stopping its apps (SIGKILL, a
// crash, the OOM killer) can find and kill them on its next start with
// ReapOrphans. A process started just as baton dies never runs the app: it
// waits at a gate until its record is written (see startProcess) and exits
// when baton's end of the gate closes. Only a process whose record could
// not be written (the error is logged) is not found.

const (
	// recordSuffix ends the name of a record file: "<pgid>.pid".
	recordSuffix = ".pid"
	// tempPrefix starts the name of a record being written; a crash can
	// leave one behind, which ReapOrphans removes.
	tempPrefix = ".tmp-"
	// orphanPollInterval is how often ReapOrphans looks whether orphans
	// have exited. They are not our children, so there is nothing to wait
	// on: polling /proc is the only way.
	orphanPollInterval = 20 * time.Millisecond
	// orphanKillWait bounds how long ReapOrphans waits for SIGKILLed
	// orphans to disappear. Only a process stuck in the kernel (a hung
	// network file system) takes longer; it dies later on its own.
	orphanKillWait = 5 * time.Second
)

// stateRecord is the content of a record file.
type stateRecord struct {
	PGID  int    `json:"pgid"`
	PID   int    `json:"pid"`
	Name  string `json:"name"`  // Spec.Name
	Index int    `json:"index"` // instance index, from 1; 0 for a command
	// Label names a one-shot command (Command.Label: "build", "release");
	// empty for an instance.
	Label     string    `json:"label,omitempty"`
	Dir       string    `json:"dir"` // absolute Spec.Dir: the process's working directory
	StartedAt time.Time `json:"started_at"`
	// Container is the container the process (runc) runs; nil for a
	// command run with /bin/sh. Dir is then its bundle.
	Container *ContainerRef `json:"container,omitempty"`
}

// stateFiles writes and removes the records of one Supervisor.
type stateFiles struct {
	dir string // "" disables records

	// mu serializes every write and removal in dir, so a record is never
	// removed while another is being written under the same name.
	mu sync.Mutex
	// owned maps the process group id of every record this Supervisor
	// wrote to its process. A record is removed only by its own process:
	// once a process is reaped its pid may be given to a new instance,
	// whose record must survive the late cleanup of the old one.
	owned map[int]*process
}

func newStateFiles(dir string) *stateFiles {
	return &stateFiles{dir: dir, owned: make(map[int]*process)}
}

func (st *stateFiles) recordPath(pgid int) string {
	return filepath.Join(st.dir, strconv.Itoa(pgid)+recordSuffix)
}

// record writes the record of p, just started in dir, under the state
// lock and makes it this Supervisor's. A failure is logged (and returned):
// the process would outlive a crash of baton. Without a state directory
// nothing is recorded and nothing fails.
func (st *stateFiles) record(log *slog.Logger, rec stateRecord, dir string, p *process) error {
	if st.dir == "" {
		return nil
	}
	abs, err := filepath.Abs(dir) // "" is baton's working directory
	if err != nil {
		abs = dir // never matches a /proc cwd: the orphan is left alone
	}
	rec.PGID, rec.PID, rec.Dir, rec.StartedAt = p.pid, p.pid, abs, p.started
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.write(rec); err != nil {
		log.Error("record process; it would survive a crash of baton",
			"name", rec.Name, "index", rec.Index, "label", rec.Label, "pid", p.pid, "err", err)
		return err
	}
	st.owned[p.pid] = p
	return nil
}

// write stores rec atomically: a reader sees the whole record or none.
// There is no fsync: the records only need to survive the death of baton,
// not of the machine, which takes the processes with it.
func (st *stateFiles) write(rec stateRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(st.dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(st.dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), st.recordPath(rec.PGID))
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// forget removes the record of p once it has been reaped and its process
// group killed.
func (st *stateFiles) forget(log *slog.Logger, p *process) {
	if st.dir == "" {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.owned[p.pid] != p {
		return // never recorded
	}
	delete(st.owned, p.pid)
	if err := os.Remove(st.recordPath(p.pid)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("remove process record", "pid", p.pid, "err", err)
	}
}

// orphan is a recorded process group that ReapOrphans signalled.
type orphan struct {
	rec    stateRecord
	path   string
	killed bool // SIGKILL was needed
}

// Reaped is a process group that ReapOrphans killed.
type Reaped struct {
	Name  string // Spec.Name of an instance, Command.Name of a command
	Index int    // instance index, from 1; 0 for a command
	Label string // Command.Label; "" for an instance
	PID   int    // also the process group id
	Dir   string // its working directory
	// StartedAt is when it started; Killed is set when it needed SIGKILL.
	StartedAt time.Time
	Killed    bool
	// Container is the ID of the container it ran; "" for a process run
	// with /bin/sh. PID is then runc's, or the container's init's for a
	// container whose runc had gone.
	Container string
}

// What says what was killed: "release command (pid 42)" or "instance 2
// of app--000003 (pid 42)".
func (r Reaped) What() string {
	what := fmt.Sprintf("pid %d", r.PID)
	if r.Container != "" {
		what += ", container " + r.Container
	}
	if r.Label != "" {
		return fmt.Sprintf("%s command (%s)", r.Label, what)
	}
	return fmt.Sprintf("instance %d of %s (%s)", r.Index, r.Name, what)
}

// ReapOrphans kills the instance processes and one-shot commands (Run)
// that an earlier run of baton left behind when it died without stopping
// them. Call it once at start-up, before Start and before anything that
// relies on them being gone (releasing the resource leases of interrupted
// deployments); it does nothing unless Config.StateDir or
// Config.ContainerStateRoot is set, and it never touches the processes and
// containers this Supervisor started (or adopted) itself.
//
// Containers: a recorded runc process is stopped like any orphan (runc
// forwards SIGTERM to the container); afterwards its container is deleted
// with `runc delete -f`, which kills it if it still runs, and its bundle
// removed. Besides, every container of baton's (ID prefix "baton-") that
// `runc list` shows in ContainerStateRoot or in a state root a record
// names, and that this Supervisor does not own, gets SIGTERM through runc,
// shares the grace period and is then deleted the same way; it is
// reported with the container's init as PID. Last, the bundles in
// ContainerBundleDir that no container of this Supervisor uses are removed.
//
// For each record in StateDir whose process still runs and is really the
// recorded instance (its working directory, read from /proc/<pid>/cwd, is
// the recorded one, which guards against the pid having been reused by an
// unrelated process), the process group gets SIGTERM, then SIGKILL if any
// member is left after StopGrace. All orphans share one grace period; when
// ctx ends, the grace is cut short as in Group.Stop. Afterwards it waits
// briefly for the killed processes to disappear. A process that cannot be
// verified (/proc unreadable, another user's process) is left running and
// logged. Every record is removed, whatever became of its process, except
// that of a group still alive after SIGKILL (a process stuck in the
// kernel), which the next start tries again; malformed records and
// leftover temporary files are removed too; files with other names are
// left alone.
//
// It returns the process groups it killed. The error reports a StateDir
// that cannot be read or signals that could not be delivered.
func (s *Supervisor) ReapOrphans(ctx context.Context) ([]Reaped, error) {
	st := s.state
	var recs []stateRecord
	if st.dir != "" {
		if err := os.MkdirAll(st.dir, 0o700); err != nil {
			return nil, fmt.Errorf("reap orphans: %w", err)
		}
		var err error
		if recs, err = st.orphanRecords(s.log); err != nil {
			return nil, fmt.Errorf("reap orphans: %w", err)
		}
	}

	procErr := checkProc()
	var orphans []*orphan
	var errs []error
	for _, rec := range recs {
		o := &orphan{rec: rec, path: st.recordPath(rec.PGID)}
		if s.terminateOrphan(o, procErr, &errs) {
			orphans = append(orphans, o)
		} else {
			st.removeOrphanRecord(s.log, o)
		}
	}
	// Containers: those of the records (runc signalled above forwards the
	// SIGTERM), and those a listing finds that nobody owns.
	ctrs := s.terminateContainers(recs, orphans, &errs)
	if len(orphans) == 0 && len(ctrs) == 0 {
		s.sweepBundles(&errs)
		return nil, errors.Join(errs...)
	}

	// Wait for the groups and containers to exit, then kill what is left.
	pgids := make([]int, len(orphans))
	for i, o := range orphans {
		pgids[i] = o.rec.PGID
	}
	grace, cancel := context.WithTimeout(ctx, s.cfg.StopGrace)
	waitGone(grace, pgids, ctrs)
	cancel()
	for _, o := range orphans {
		if !groupAlive(o.rec.PGID) {
			continue
		}
		o.killed = true
		s.log.Warn("orphan outlived the grace period, sending SIGKILL",
			"name", o.rec.Name, "label", o.rec.Label, "pid", o.rec.PID, "grace", s.cfg.StopGrace)
		if err := signalGroup(o.rec.PGID, syscall.SIGKILL); err != nil {
			errs = append(errs, fmt.Errorf("reap orphan %s: send SIGKILL: %w", o.describe(), err))
		}
	}
	kill, cancel := context.WithTimeout(ctx, orphanKillWait)
	waitGone(kill, pgids, nil)
	cancel()
	// Deleting a container kills it first if it still runs: the one of a
	// runc killed just now, or one that ignored SIGTERM.
	for _, c := range ctrs {
		if c.pid != 0 && processAlive(c.pid) {
			c.reaped.Killed = true
		}
		if err := c.ref.remove(); err != nil {
			errs = append(errs, fmt.Errorf("reap orphan container %s: %w", c.ref.ID, err))
		}
	}

	reaped := make([]Reaped, 0, len(orphans)+len(ctrs))
	for _, o := range orphans {
		if groupAlive(o.rec.PGID) {
			// Its record stays: the next start tries again.
			s.log.Error("orphan still running after SIGKILL", "name", o.rec.Name, "label", o.rec.Label, "pid", o.rec.PID)
			errs = append(errs, fmt.Errorf("reap orphan %s: still running after SIGKILL", o.describe()))
			continue
		}
		s.log.Warn("killed orphan", "name", o.rec.Name, "label", o.rec.Label, "pid", o.rec.PID, "index", o.rec.Index, "sigkill", o.killed)
		st.removeOrphanRecord(s.log, o)
		r := Reaped{Name: o.rec.Name, Index: o.rec.Index, Label: o.rec.Label, PID: o.rec.PID,
			Dir: o.rec.Dir, StartedAt: o.rec.StartedAt, Killed: o.killed}
		if c := o.rec.Container; c != nil {
			r.Container = c.ID
		}
		reaped = append(reaped, r)
	}
	for _, c := range ctrs {
		if !c.behindRunc && c.pid != 0 {
			s.log.Warn("killed orphan container", "container", c.ref.ID, "name", c.reaped.Name, "pid", c.pid, "sigkill", c.reaped.Killed)
			reaped = append(reaped, c.reaped)
		}
	}
	s.sweepBundles(&errs) // once the containers were deleted
	return reaped, errors.Join(errs...)
}

// describe names an orphan in errors.
func (o *orphan) describe() string {
	r := o.rec
	return Reaped{Name: r.Name, Index: r.Index, Label: r.Label, PID: r.PID}.What() + " of " + r.Name
}

// orphanRecords reads the records in the state directory that this
// Supervisor did not write. It removes leftover temporary files and
// malformed records on the way.
func (st *stateFiles) orphanRecords(log *slog.Logger) ([]stateRecord, error) {
	st.mu.Lock() // no write is under way, so temporary files are leftovers
	defer st.mu.Unlock()
	entries, err := os.ReadDir(st.dir)
	if err != nil {
		return nil, err
	}
	var recs []stateRecord
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(st.dir, name)
		if strings.HasPrefix(name, tempPrefix) {
			removeLogged(log, path)
			continue
		}
		pgid, err := strconv.Atoi(strings.TrimSuffix(name, recordSuffix))
		if !strings.HasSuffix(name, recordSuffix) || err != nil || !e.Type().IsRegular() {
			continue // not ours
		}
		if st.owned[pgid] != nil {
			continue // started by this Supervisor
		}
		rec, err := readRecord(path, pgid)
		if err != nil {
			log.Warn("removing malformed process record", "path", path, "err", err)
			removeLogged(log, path)
			continue
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// readRecord reads and checks the record at path, named after pgid. The
// checks keep a damaged record from ever making us signal a process group
// other than the recorded one: kill(-0) or kill(-1) would hit baton itself
// or every process of the user.
func readRecord(path string, pgid int) (stateRecord, error) {
	var rec stateRecord
	data, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, err
	}
	switch {
	case rec.PGID != pgid:
		return rec, fmt.Errorf("pgid %d in a file named for %d", rec.PGID, pgid)
	case rec.PID <= 1 || rec.PGID != rec.PID:
		// Instances lead their own process group (Setpgid).
		return rec, fmt.Errorf("pid %d is not a valid group leader for pgid %d", rec.PID, rec.PGID)
	case !filepath.IsAbs(rec.Dir):
		return rec, fmt.Errorf("dir %q is not absolute", rec.Dir)
	}
	if c := rec.Container; c != nil {
		// The bundle is removed: it must be one of ours.
		if !validContainerID(c.ID) || !filepath.IsAbs(c.Runtime) || !filepath.IsAbs(c.Root) ||
			!filepath.IsAbs(c.Bundle) || filepath.Base(c.Bundle) != c.ID {
			return rec, fmt.Errorf("container %+v is not one of baton's", *c)
		}
	}
	return rec, nil
}

// terminateOrphan sends SIGTERM to the process group of o if its leader
// still runs and is the recorded instance. It reports whether it did.
// procErr is why /proc cannot be used, if it cannot.
func (s *Supervisor) terminateOrphan(o *orphan, procErr error, errs *[]error) bool {
	rec := o.rec
	log := s.log.With("name", rec.Name, "label", rec.Label, "pid", rec.PID, "index", rec.Index, "dir", rec.Dir, "started_at", rec.StartedAt)
	if rec.PID == os.Getpid() || rec.PGID == syscall.Getpgrp() {
		log.Warn("process record names baton itself, leaving it alone")
		return false
	}
	if !processAlive(rec.PID) {
		log.Info("recorded instance is no longer running")
		return false
	}
	if procErr != nil {
		log.Error("cannot read /proc to verify a recorded instance, leaving it running", "err", procErr)
		return false
	}
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(rec.PID) + "/cwd")
	if err != nil {
		if !processAlive(rec.PID) {
			log.Info("recorded instance is no longer running")
		} else {
			// Most likely a process of another user: not one of ours.
			log.Warn("cannot verify recorded instance, leaving it running", "err", err)
		}
		return false
	}
	if !sameDir(cwd, rec.Dir) {
		log.Warn("pid now belongs to another process, leaving it alone", "cwd", cwd)
		return false
	}
	log.Warn("stopping orphan left by an earlier baton", "grace", s.cfg.StopGrace)
	if err := syscall.Kill(-rec.PGID, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return false // exited just now
		}
		*errs = append(*errs, fmt.Errorf("reap orphan %s: send SIGTERM: %w", o.describe(), err))
		return false
	}
	return true
}

// removeOrphanRecord removes the record of o unless, in the meantime, this
// Supervisor started a process with the same pid and recorded it.
func (st *stateFiles) removeOrphanRecord(log *slog.Logger, o *orphan) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.owned[o.rec.PGID] == nil {
		removeLogged(log, o.path)
	}
}

func removeLogged(log *slog.Logger, path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("remove process record", "path", path, "err", err)
	}
}

// sameDir reports whether cwd, read from /proc/<pid>/cwd, is the recorded
// directory dir. The kernel shows the resolved path, with " (deleted)"
// appended once the directory was removed.
func sameDir(cwd, dir string) bool {
	dir = filepath.Clean(dir)
	if cwd == dir {
		return true
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err == nil && cwd == resolved {
		return true
	}
	if deleted, ok := strings.CutSuffix(cwd, " (deleted)"); ok {
		return deleted == dir || (err == nil && deleted == resolved)
	}
	return false
}

// checkProc returns an error unless /proc can tell us where processes run.
func checkProc() error {
	_, err := os.Readlink("/proc/self/cwd")
	return err
}

// processAlive reports whether pid runs. A zombie does not: it has exited,
// and an orphan's zombie is reaped by init, maybe never (some containers).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return false
	}
	state, _, ok := procStat(pid)
	if !ok {
		// Vanished since the kill, or /proc is unreadable: trust kill.
		return err == nil || errors.Is(err, syscall.EPERM)
	}
	return state != 'Z'
}

// groupAlive reports whether any process of group pgid runs (zombies do
// not count). It scans /proc: children of the leader may outlive it, and
// kill(-pgid, 0) also counts zombies that are never reaped.
func groupAlive(pgid int) bool {
	// No process at all in the group, not even a zombie (the usual case
	// once a command has ended): answered without reading every process's
	// stat, which costs milliseconds on a host running hundreds.
	if err := syscall.Kill(-pgid, 0); err == syscall.ESRCH {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return processAlive(pgid)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, pgrp, ok := procStat(pid); ok && pgrp == pgid && state != 'Z' {
			return true
		}
	}
	return false
}

// procStat returns the state letter and process group of pid from
// /proc/<pid>/stat.
func procStat(pid int) (state byte, pgrp int, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid pgrp ...": comm may contain anything, so
	// parse from the last parenthesis.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 3 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	pgrp, err = strconv.Atoi(fields[2])
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], pgrp, true
}
