// Package coordinator runs deployments: per-app leases with fencing, conflict
// policies, the phase pipeline, live routes, cancellation and recovery.
package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/metrics"
	"github.com/batonhq/baton/ociimage"
	"github.com/batonhq/baton/proxy"
	"github.com/batonhq/baton/supervisor"
)

// Config is what a Coordinator needs. Zero durations take defaults.
type Config struct {
	Store     baton.Store
	Artifacts *artifact.Store
	// Images holds container images; nil: none can be deployed.
	Images     *ociimage.Store
	Supervisor *supervisor.Supervisor
	Proxy      *proxy.Proxy
	// DataDir holds apps/APP/revisions/REV and tmp/.
	DataDir string
	// Domain is the proxy's domain: APP.DOMAIN, APP-SLOT.DOMAIN.
	Domain string
	Logger *slog.Logger
	// Metrics records deployments, phases and lease waits (nil: none).
	Metrics *metrics.Metrics
	// OnFinished, when set, is called with the stored record of each
	// deployment or operation that ran and ended (webhooks). It runs on
	// the worker's goroutine after the lock is released, so it must not
	// block.
	OnFinished func(baton.Deployment)

	LeaseTTL       time.Duration // default 15s; renewed every TTL/3
	MaxQueue       int           // queued deployments per app; default 100
	DrainTimeout   time.Duration // default 30s
	ExtractTimeout time.Duration // phase deadline of extracting; default 10m
	ExtractLimits  artifact.Limits
	// IdempotencyWindow is how long an Idempotency-Key is remembered; default 24h.
	IdempotencyWindow time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	// ControllerID names this controller (default "local"); ControllerAddr
	// is where its API listens.
	ControllerID, ControllerAddr string
	// Advertise is the address other hosts reach this one at (default
	// 127.0.0.1); PeerAddr is its peer listener's ADVERTISE:PORT ("":
	// none).
	Advertise, PeerAddr string
	// Shared is true when other controllers use the same store: start-up
	// recovery then fails only deployments whose lease expired, and apps of
	// controllers that went silent are adopted.
	Shared bool
	// Blobs, when set, holds artifacts for other controllers to read.
	Blobs baton.BlobStore
	// Wake delivers names of apps with news from other controllers (work
	// queued, a lock released); nil when there are none.
	Wake <-chan string
	// Adopt lists the instances an earlier baton process handed to this
	// one (see Handoff); Open adopts those of routed revisions instead of
	// starting them again.
	Adopt []HandedGroup
	// Retention is what collection keeps; zero Revisions means
	// baton.DefaultRetainRevisions, zero ArtifactGrace
	// baton.DefaultArtifactGrace, zero DiskBudget no budget.
	Retention baton.RetentionPolicy
	// CollectPause makes collection wait this long before each removal: a
	// test hook, to kill baton in the middle of one.
	CollectPause time.Duration
	// Reaped lists what the supervisor's ReapOrphans killed before Open:
	// recovery notes the build and release commands among them in their
	// deployments' logs.
	Reaped []supervisor.Reaped
	// OnNames, when set, is called after the names the proxy serves may
	// have changed (an app, slot or custom domain added or removed), so
	// certificates follow them; it must not block.
	OnNames func()
	// Certificates, when set, reports what this controller knows of the
	// certificate of a name it serves over HTTPS (status).
	Certificates func(name string) (baton.CertificateStatus, bool)
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 15 * time.Second
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 100
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.ExtractTimeout == 0 {
		c.ExtractTimeout = 10 * time.Minute
	}
	if c.ExtractLimits == (artifact.Limits{}) {
		c.ExtractLimits = artifact.DefaultLimits()
	}
	if c.IdempotencyWindow == 0 {
		c.IdempotencyWindow = 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Domain == "" {
		c.Domain = "localhost"
	}
	if c.ControllerID == "" {
		c.ControllerID = "local"
	}
	if c.Retention.Revisions == 0 {
		c.Retention.Revisions = baton.DefaultRetainRevisions
	}
	if c.Retention.ArtifactGrace == 0 {
		c.Retention.ArtifactGrace = baton.DefaultArtifactGrace
	}
}

// Coordinator owns the deployment workers, the running revisions' instance
// groups and the proxy's routing table.
type Coordinator struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // every goroutine the coordinator starts

	mu      sync.Mutex
	workers map[string]*worker // app → its queue worker
	runs    map[string]*run    // deployment id → the running deployment
	// running holds the instances of every active revision by revision and
	// slot: during a swap one revision runs in two slots with different
	// sticky settings.
	running map[runKey]*instances
	// routes mirrors the store's routing: the active revisions of each slot
	// and their weights.
	routes map[slotKey][]baton.RevisionWeight
	apps   map[string]bool // known apps, for the routing table
	// domains maps each custom domain to its slot (domains.go).
	domains map[string]slotKey
	// remote are the apps other live hosts own, routed to their peer
	// listeners (remote.go).
	remote map[string]remoteApp
	// remoteRouting is the routing refreshRemote read last of each app,
	// by routing generation (its own lock: refreshes read it outside mu).
	remoteRouting routingByGeneration
	// placements are every host's shares of every app's revisions, by
	// app, as last loaded; peers the peer listeners of the other live
	// hosts, by id; placed the shares this host runs of apps other hosts
	// own (placement.go).
	placements map[string][]baton.Placement
	peers      map[string]string
	placed     map[placedKey]*placedGroup
	// standby holds, with other hosts, the instances of this host's apps
	// that serve only requests pinned to their revision: new ones from
	// just before their switch is recorded until it is installed here, old
	// ones from the switch until they drain. Another host that applied
	// the switch earlier (or later) than this one pins its requests.
	standby map[*instances]bool
	// acked are the routing generations this host acked, by app
	// (generation.go).
	acked map[string]int64
	// waiting lists the deployments waiting for each shared resource.
	waiting map[string][]string
	// reaped holds, by deployment, the commands of interrupted
	// deployments that start-up killed, until recovery notes them.
	reaped map[string][]supervisor.Reaped
	// restoring holds the routed revisions being started again after a
	// restart or an adoption, and why the last attempt failed (status).
	restoring map[runKey]restoreState
	// filesMu serializes restoring revision folders (revisionFiles).
	filesMu sync.Mutex
	closed  bool
	// gates holds each app's gate (see gate); gcMu makes collections run
	// one at a time; gcWake asks the collector for one; disk is every
	// app's disk use as the last collection measured it.
	gates  map[string]*sync.Mutex
	gcMu   sync.Mutex
	gcWake chan struct{}
	disk   map[string]baton.DiskUse
	// folderSizes holds the revision folders' sizes as the last
	// collection measured them (foldersize.go); guarded by gcMu.
	folderSizes map[string]folderSize
	// pausing makes workers stop after their current deployment (Handoff);
	// handedOff is set once the instances belong to the next process.
	pausing, handedOff bool

	// masks holds each app's Masker of secret values (mask.go); depApps
	// the app of each deployment that logged, to find it.
	masksMu sync.Mutex
	masks   map[string]*baton.Masker
	depApps sync.Map

	changes *broadcast
	pub     publisher // publishRoutes: one table build at a time, shared by callers
}

type slotKey struct{ app, slot string }

// runKey names the instances of a revision running for a slot.
type runKey struct{ rev, slot string }

// instances are the running processes of an active revision.
type instances struct {
	rev   baton.Revision
	group *supervisor.Group
	log   *instanceLog
	// image is the container image they run, nil for an archive.
	image *baton.ImageRef
}

// ErrShutdown is the cause given to work cancelled because baton stops.
var ErrShutdown = errors.New("baton is shutting down")

// New builds a Coordinator; Open starts it.
func New(cfg Config) *Coordinator {
	cfg.setDefaults()
	return &Coordinator{
		cfg:     cfg,
		log:     cfg.Logger,
		workers: map[string]*worker{},
		runs:    map[string]*run{},
		masks:   map[string]*baton.Masker{},
		running: map[runKey]*instances{},
		routes:  map[slotKey][]baton.RevisionWeight{},
		acked:   map[string]int64{},
		placed:  map[placedKey]*placedGroup{},
		standby: map[*instances]bool{},
		apps:    map[string]bool{},
		changes: newBroadcast(),
		gates:   map[string]*sync.Mutex{},
		gcWake:  make(chan struct{}, 1),

		restoring: map[runKey]restoreState{},
	}
}

// Open recovers from an earlier stop (ends interrupted deployments,
// releases their leases, removes temp files), restores the live revisions,
// and resumes the queues.
func (c *Coordinator) Open(ctx context.Context) error {
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	if err := os.MkdirAll(c.tmpDir(), 0o755); err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	if err := c.cfg.Store.RegisterController(ctx, c.hostInfo()); err != nil {
		return fmt.Errorf("register controller: %w", err)
	}
	// Alone, everything left running was ours and is interrupted; shared,
	// only what lost its lease is (others are still renewing theirs).
	var interrupted []baton.Deployment
	var err error
	if c.cfg.Shared {
		interrupted, err = c.cfg.Store.FailExpired(ctx)
	} else {
		interrupted, err = c.cfg.Store.FailInterrupted(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf("recover interrupted deployments: %w", err)
	}
	c.mu.Lock()
	c.reaped = map[string][]supervisor.Reaped{}
	for _, r := range c.cfg.Reaped {
		if r.Label != "" {
			c.reaped[r.Name] = append(c.reaped[r.Name], r)
		}
	}
	c.mu.Unlock()
	c.noteInterrupted(ctx, interrupted, "a restart of baton")
	for _, d := range interrupted {
		if d.State == baton.StateFailed {
			c.removeFailedRevision(d)
		}
	}
	// A collection that a crash interrupted left its trash.
	c.emptyTrash()
	// Nothing in tmp/ belongs to a running deployment now.
	if entries, err := os.ReadDir(c.tmpDir()); err == nil {
		for _, e := range entries {
			_ = os.RemoveAll(filepath.Join(c.tmpDir(), e.Name()))
		}
	}
	apps, err := c.cfg.Store.Apps(ctx)
	if err != nil {
		return fmt.Errorf("list apps: %w", err)
	}
	var own []string
	for _, a := range apps {
		if a.Controller == "" && c.cfg.Store.AssignApp(ctx, a.Name, "", c.cfg.ControllerID) == nil {
			a.Controller = c.cfg.ControllerID
		}
		if a.Controller == c.cfg.ControllerID {
			own = append(own, a.Name)
		}
	}
	c.mu.Lock()
	for _, a := range own {
		c.apps[a] = true
	}
	c.mu.Unlock()
	c.refreshDomains(ctx)
	c.refreshRemote(ctx)
	// Handed instances serve as soon as this process accepts requests.
	c.adoptHanded(ctx)
	c.publishRoutes()
	for _, a := range own {
		// Each app restores its active revisions, then works its queue; one
		// slow app does not hold up the others or the API.
		c.startWorker(a, true)
	}
	c.wg.Add(1)
	go c.housekeep()
	c.wg.Add(1)
	go c.collector()
	c.requestCollect()
	return nil
}

// stopBackground refuses new work and ends the workers and every other
// background goroutine, waiting for them.
func (c *Coordinator) stopBackground() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if c.cancel != nil {
		c.cancel(ErrShutdown)
	}
	c.wg.Wait()
}

// Close cancels running deployments (they fail as interrupted), stops the
// workers and every instance, and waits for all of it.
func (c *Coordinator) Close() error {
	c.stopBackground()
	if c.ctx != nil && !c.handedOff {
		// A clean stop hands the apps over at once instead of after silence.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.cfg.Store.DeregisterController(ctx, c.cfg.ControllerID)
		cancel()
	}
	c.mu.Lock()
	all := make([]*instances, 0, len(c.running))
	for _, in := range c.running {
		all = append(all, in)
	}
	all = append(all, c.placedGroupsLocked()...)
	c.placed = map[placedKey]*placedGroup{}
	c.mu.Unlock()
	var errs []error
	for _, in := range all {
		errs = append(errs, in.stop())
	}
	return errors.Join(errs...)
}

// Changes returns a channel closed at the next change of any deployment
// (state, phase or log). Callers re-read what they watch, then call again.
func (c *Coordinator) Changes() <-chan struct{} { return c.changes.wait() }

func (c *Coordinator) tmpDir() string { return filepath.Join(c.cfg.DataDir, "tmp") }

func (c *Coordinator) appDir(app string) string { return filepath.Join(c.cfg.DataDir, "apps", app) }

func (c *Coordinator) revisionDir(app, rev string) string {
	return filepath.Join(c.appDir(app), "revisions", rev)
}

// noteInterrupted logs, in baton's log and in each deployment's, how the
// recovery after by (what stopped their controller) ended deployments.
func (c *Coordinator) noteInterrupted(ctx context.Context, ds []baton.Deployment, by string) {
	for _, d := range ds {
		c.mu.Lock()
		killed := c.reaped[d.ID]
		delete(c.reaped, d.ID)
		c.mu.Unlock()
		for _, r := range killed {
			// ReapOrphans returns only groups it saw gone.
			c.log.Warn("killed a command of an interrupted deployment", "deployment", d.ID, "label", r.Label, "pid", r.PID)
			_ = c.cfg.Store.AppendLog(ctx, d.ID, fmt.Sprintf("recovery killed the %s, which baton left running when it stopped (started %s); its process group is gone",
				r.What(), r.StartedAt.Format(time.RFC3339)))
		}
		if d.State == baton.StateSucceeded {
			c.log.Info("deployment interrupted after its switch; it stands", "deployment", d.ID, "app", d.App, "phase", d.Phase, "by", by)
			_ = c.cfg.Store.AppendLog(ctx, d.ID, fmt.Sprintf("interrupted by %s in phase %s, after the switch: %s serves, so the deployment succeeded", by, d.Phase, d.Revision))
			continue
		}
		c.log.Warn("deployment interrupted", "deployment", d.ID, "app", d.App, "phase", d.Phase, "by", by)
		_ = c.cfg.Store.AppendLog(ctx, d.ID, "deployment failed: "+d.Error)
	}
}

// removeFailedRevision deletes the folder of a revision that never went live.
func (c *Coordinator) removeFailedRevision(d baton.Deployment) {
	if d.Revision == "" {
		return
	}
	if r, err := c.cfg.Store.Revision(context.Background(), d.Revision); err == nil && r.Active {
		return
	}
	_ = os.RemoveAll(c.revisionDir(d.App, d.Revision))
}
