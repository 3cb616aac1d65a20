package baton

import (
	"context"
	"io"
	"time"
)

// Controller is one `baton serve` process sharing the store with others.
// Each app is pinned to one controller, which runs its instances and its
// operations; any controller accepts API requests for any app.
type Controller struct {
	ID string `json:"id"`
	// Addr is where clients reach its API.
	Addr      string    `json:"addr"`
	StartedAt time.Time `json:"started_at"`
	// LastSeen is its last heartbeat, by the store's clock.
	LastSeen time.Time `json:"last_seen"`
	// Silence is how long ago LastSeen was, by the store's clock.
	Silence time.Duration `json:"silence"`
}

// ControllerStore keeps controllers, their liveness and app placement.
type ControllerStore interface {
	// RegisterController records id at addr as started and seen now.
	RegisterController(ctx context.Context, id, addr string) error
	// HeartbeatController records that id is alive; ENOTFOUND if unregistered.
	HeartbeatController(ctx context.Context, id string) error
	DeregisterController(ctx context.Context, id string) error
	Controllers(ctx context.Context) ([]Controller, error)
	// AssignApp pins app to controller if it is pinned to from (compare
	// and swap, so two survivors cannot both adopt an orphaned app);
	// ECONFLICT if the app has moved meanwhile.
	AssignApp(ctx context.Context, app, from, to string) error
	// FailExpired ends the running deployments whose lease expired or is
	// gone (their controller died) as FailInterrupted does, and deletes
	// those leases: the recovery step when controllers share the store.
	FailExpired(ctx context.Context) ([]Deployment, error)
}

// BlobStore is implemented by stores that several controllers share: an
// artifact accepted by one controller is executed by the app's own, which
// reads it from the store.
type BlobStore interface {
	PutArtifact(ctx context.Context, digest string, r io.Reader) error
	// ReadArtifact writes the artifact to w; ENOTFOUND if it is not stored.
	ReadArtifact(ctx context.Context, digest string, w io.Writer) error
}

// BlobRemover is a BlobStore that collection may remove artifacts from
// once no revision or queued operation of any controller names them.
type BlobRemover interface {
	// RemoveArtifact deletes the artifact; one not stored is no error.
	RemoveArtifact(ctx context.Context, digest string) error
}
