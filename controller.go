package baton

import (
	"context"
	"io"
	"sort"
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
	// Advertise is the address (an IP or host name, no port) other hosts
	// reach this one at; "" for a controller of an older baton.
	Advertise string `json:"advertise"`
	// Peer is ADVERTISE:PORT of its peer listener, where other hosts'
	// proxies forward requests for the apps it runs; "" when it has none.
	Peer string `json:"peer"`
	// Instances is how many app instances it ran at its last heartbeat.
	Instances int `json:"instances"`
	// Draining is set while it stops: it takes no new apps.
	Draining bool `json:"draining"`
	// DrainRequested is set while an operator has asked it to drain
	// (baton hosts drain): its instances move to other hosts and it takes
	// no new ones until undrained. It outlives restarts.
	DrainRequested bool `json:"drain_requested"`
	// SendsPeerKey: its proxy sends the cluster's peer key to the other
	// hosts' peer listeners (false for a controller of an older baton).
	// The peer listeners ask for the key once every live host sends it.
	SendsPeerKey bool `json:"sends_peer_key"`
}

// ControllerInfo is what a controller registers about itself.
type ControllerInfo struct {
	ID string
	// Addr is where clients reach its API.
	Addr string
	// Advertise, Peer and SendsPeerKey: see Controller.
	Advertise, Peer string
	SendsPeerKey    bool
}

// Heartbeat is what a controller reports each time it says it is alive.
type Heartbeat struct {
	// Instances is how many app instances it runs now.
	Instances int
	// Draining: see Controller.
	Draining bool
}

// ControllerStore keeps controllers, their liveness and app placement.
type ControllerStore interface {
	// RegisterController records c as started and seen now (a restart:
	// again, with new times and addresses).
	RegisterController(ctx context.Context, c ControllerInfo) error
	// HeartbeatController records that id is alive, with what it reports;
	// ENOTFOUND if unregistered.
	HeartbeatController(ctx context.Context, id string, hb Heartbeat) error
	// DeregisterController removes id (a clean stop) with its routing
	// acks. Its placements stay: the owner of each app replaces them
	// (PlacementStore).
	DeregisterController(ctx context.Context, id string) error
	Controllers(ctx context.Context) ([]Controller, error)
	// AssignApp pins app to controller if it is pinned to from (compare
	// and swap, so two survivors cannot both adopt an orphaned app);
	// ECONFLICT if the app has moved meanwhile.
	AssignApp(ctx context.Context, app, from, to string) error
	// AckRouting records, for each app in gens, the routing generation
	// controller's proxy applied (replacing what it recorded before).
	AckRouting(ctx context.Context, controller string, gens map[string]int64) error
	// RoutingAcks returns app's routing generation, how long ago it was
	// recorded (by the store's clock) and every controller's ack;
	// ENOTFOUND if the app does not exist.
	RoutingAcks(ctx context.Context, app string) (RoutingState, error)
	// AllRoutingAcks is RoutingAcks of every app, by name, in two reads
	// whatever their number (status of every app).
	AllRoutingAcks(ctx context.Context) ([]RoutingState, error)
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

// HostState is how a host stands, by its heartbeat.
type HostState string

// The states of a host.
const (
	// HostLive heartbeats and serves.
	HostLive HostState = "live"
	// HostDraining is stopping: it still serves, and takes no new work.
	HostDraining HostState = "draining"
	// HostLost has missed its heartbeats: its apps are adopted by others.
	HostLost HostState = "lost"
)

// String returns the state's name.
func (s HostState) String() string { return string(s) }

// Host is a controller seen as a machine that runs instances and a proxy:
// what `baton hosts` and GET /api/v1/hosts list.
type Host struct {
	Controller
	State HostState `json:"state"`
	// Apps are the apps it owns (runs the instances and operations of).
	Apps []string `json:"apps"`
}

// RoutingState is an app's routing generation and which generation each
// host applied. SetRouting and AssignApp advance the generation.
type RoutingState struct {
	App        string `json:"app"`
	Generation int64  `json:"generation"`
	// Age is how long ago the generation was recorded.
	Age  time.Duration `json:"age"`
	Acks []RoutingAck  `json:"acks"`
}

// AddRoutingAck appends a to the acks of app in states, which are sorted
// by app name (byte order), and returns states: how a store merges its two
// reads of every app's routing. An ack of an app not in states is dropped.
func AddRoutingAck(states []RoutingState, app string, a RoutingAck) []RoutingState {
	i := sort.Search(len(states), func(i int) bool { return states[i].App >= app })
	if i < len(states) && states[i].App == app {
		states[i].Acks = append(states[i].Acks, a)
	}
	return states
}

// RoutingAck is the routing generation of an app one host applied.
type RoutingAck struct {
	Controller string    `json:"controller"`
	Generation int64     `json:"generation"`
	AppliedAt  time.Time `json:"applied_at"`
}
