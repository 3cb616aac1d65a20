package baton

import (
	"context"
	"time"
)

// Store is baton's persistent state. Each method is one transaction. Writes
// made on behalf of a running operation carry its lease token and fail with
// ErrStaleToken once that lease has passed to someone else (fencing).
//
// Implementations: sqlite (the embedded default), postgres (shared by
// several controllers) and the secretstore wrapper; all pass storetest.Run,
// and a new method's contract starts there.
type Store interface {
	AppStore
	DeploymentStore
	RevisionStore
	LeaseStore
	AuditStore
	TokenStore
	ControllerStore
	DomainStore
	CertStore
	HookStore
	PlacementStore
	// Ping checks the store is reachable (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// AppStore keeps apps and their slots.
type AppStore interface {
	// CreateApp creates an app with its production slot; ECONFLICT if it exists.
	CreateApp(ctx context.Context, name string) (App, error)
	// CreateAppFor is CreateApp with the app run by controller from the
	// start (its routing generation advanced, as AssignApp does): created
	// unassigned and assigned after, another controller could take it for
	// an orphan in between and adopt it.
	CreateAppFor(ctx context.Context, name, controller string) (App, error)
	App(ctx context.Context, name string) (App, error)
	Apps(ctx context.Context) ([]App, error)
	// DeleteApp removes the app and everything recorded about it except its
	// fencing counters (so a late writer from before the delete stays fenced out).
	DeleteApp(ctx context.Context, name string) error
	// SetLive makes revision the live revision of a slot (fenced by the app lease).
	SetLive(ctx context.Context, f Fence, slot, revision string) error
	// SetRouting sets, in one transaction, which revisions are active in each
	// listed slot and their weights; revisions of those slots not listed
	// become inactive with weight 0 (fenced).
	SetRouting(ctx context.Context, f Fence, slots map[string][]RevisionWeight) error
	// SetFrozen freezes (f non-nil) or unfreezes an app; Enqueue refuses
	// with EFROZEN while it is frozen.
	SetFrozen(ctx context.Context, app string, f *Freeze) error
	// SetRevisionMode sets the app's revision mode.
	SetRevisionMode(ctx context.Context, app, mode string) error
	// SetAppOptions replaces the app's options (baton's own, not settings);
	// ENOTFOUND if the app does not exist. The caller checks them.
	SetAppOptions(ctx context.Context, app string, o AppOptions) error
	CreateSlot(ctx context.Context, app, slot string) (Slot, error)
	// DeleteSlot removes a slot and its settings; its revisions stay in history.
	DeleteSlot(ctx context.Context, app, slot string) error
	SetAutoSwap(ctx context.Context, app, slot, target string) error
	Settings(ctx context.Context, app, slot string) ([]Setting, error)
	// PutSetting creates or replaces a setting (fenced: settings change
	// through the app lock because they create revisions).
	PutSetting(ctx context.Context, f Fence, s Setting) error
	DeleteSetting(ctx context.Context, f Fence, app, slot, key string) error
}

// Fence identifies the lease a write is made under.
type Fence struct {
	Key   string
	Token int64
}

// EnqueueRequest asks the store to accept a deployment under a conflict
// policy. Admit decides it; the store reads the QueueState Admit needs and
// applies its Admission in one transaction that holds the app's lock, so
// that concurrent requests cannot both slip past a "fail" check.
type EnqueueRequest struct {
	Deployment Deployment
	// MaxQueue bounds the queued deployments of the app (0: unbounded).
	MaxQueue int
	// IdempotencyWindow is how far back an Idempotency-Key matches.
	IdempotencyWindow time.Duration
	// IfUnchanged, when set, asks Enqueue to record nothing and answer
	// Unchanged if what the caller compared is still what serves the slot:
	// no deployment of the app is queued or running or newer than Seq, and
	// the revision is still active in the slot with the same weight. Every
	// change to an app's revisions, routing and settings is made by one of
	// its deployments (or deletes the slot, which deactivates its
	// revisions), so nothing the caller compared can have changed since.
	// It is decided after the freeze and the Idempotency-Key, before the
	// conflict policy; with an Idempotency-Key the answer is kept, so a
	// repeat within the window gets it again.
	IfUnchanged *LiveCheck
}

// LiveCheck is what a caller saw when it found that a deploy request would
// change nothing: Revision serving the slot with Weight %, while no
// deployment of the app was queued or running and Seq was the app's newest.
type LiveCheck struct {
	Revision string
	Weight   int
	Seq      int64
}

// EnqueueResult says what Enqueue did.
type EnqueueResult struct {
	Deployment Deployment
	// Existing is true when an earlier deployment with the same idempotency
	// key was returned instead of creating one.
	Existing bool
	// Replaced lists queued deployments that were cancelled or superseded.
	Replaced []string
	// CancelRunning is the running deployment that policy cancel asks to stop.
	CancelRunning string
	// Unchanged is true when IfUnchanged held, or a repeated
	// Idempotency-Key found such an answer: nothing was recorded, and
	// Deployment is the one that created the revision that serves
	// (Deployment.Revision).
	Unchanged bool
}

// DeploymentStore keeps deployments and their logs.
type DeploymentStore interface {
	// Enqueue decides req with Admit against the app's QueueState and
	// applies the Admission. ENOTFOUND if the app or slot does not exist;
	// Admit's refusals (EFROZEN, ECONFLICT, EQUEUEFULL, EINVALID) as is.
	Enqueue(ctx context.Context, req EnqueueRequest) (EnqueueResult, error)
	Deployment(ctx context.Context, id string) (Deployment, error)
	Deployments(ctx context.Context, f DeploymentFilter) ([]Deployment, error)
	// StartDeployment moves a queued deployment to running under f;
	// ECONFLICT if it is no longer queued.
	StartDeployment(ctx context.Context, f Fence, id string) (Deployment, error)
	// UpdateRunning records phase/revision of a running deployment (fenced).
	UpdateRunning(ctx context.Context, f Fence, id string, phase Phase, revision string) error
	// FinishDeployment moves a running deployment to a final state and
	// releases every lease it holds (app and resources) in the same
	// transaction, so no crash can leave a finished deployment's lease
	// (fenced).
	FinishDeployment(ctx context.Context, f Fence, id string, state State, reason string) error
	// CancelQueued moves a queued deployment to cancelled; ECONFLICT with a
	// sentence if it is not queued any more.
	CancelQueued(ctx context.Context, id, reason string) (Deployment, error)
	// FailInterrupted ends every running deployment of the given apps (all
	// apps when nil) and deletes their leases. It is the start-up recovery
	// step. InterruptedOutcome decides each one's final state from its
	// phase and whether its routing change was recorded (SetRouting under
	// its lease); the failed ones get reason "interrupted: …".
	FailInterrupted(ctx context.Context, apps []string) ([]Deployment, error)
	AppendLog(ctx context.Context, id string, lines ...string) error
	// Log returns log lines with ID greater than after.
	Log(ctx context.Context, id string, after int64) ([]LogLine, error)
}

// RevisionStore keeps revisions.
type RevisionStore interface {
	// CreateRevision assigns the app's next revision number (fenced). It is
	// created inactive.
	CreateRevision(ctx context.Context, f Fence, r Revision) (Revision, error)
	Revision(ctx context.Context, name string) (Revision, error)
	// Revisions lists an app's revisions, newest first; app "" lists
	// every app's, by app, each app's newest first (one read for what
	// collection looks at after every operation).
	Revisions(ctx context.Context, app string) ([]Revision, error)
}

// LeaseStore keeps leases: at most one holder per key at any time.
type LeaseStore interface {
	// AcquireLease takes key for holder for ttl; ECONFLICT if another holder
	// has an unexpired lease. The token is greater than any earlier token of key.
	AcquireLease(ctx context.Context, key, holder string, ttl time.Duration) (Lease, error)
	// RenewLease extends the lease; ErrStaleToken if f is not the current lease.
	RenewLease(ctx context.Context, f Fence, ttl time.Duration) (Lease, error)
	// ReleaseLease deletes the lease if f is current; ErrStaleToken otherwise.
	ReleaseLease(ctx context.Context, f Fence) error
	Lease(ctx context.Context, key string) (Lease, error)
	Leases(ctx context.Context) ([]Lease, error)
	// BreakLease deletes the lease of key whoever holds it.
	BreakLease(ctx context.Context, key string) (Lease, error)
}

// AuditEntry records one privileged action.
type AuditEntry struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Target  string    `json:"target"`
	Detail  string    `json:"detail"`
	Outcome string    `json:"outcome"`
	Remote  string    `json:"remote"`
}

// AuditStore is an append-only log of privileged actions.
type AuditStore interface {
	AddAudit(ctx context.Context, e AuditEntry) error
	Audit(ctx context.Context, limit int) ([]AuditEntry, error)
}
