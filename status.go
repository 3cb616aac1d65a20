package baton

import "time"

// AppStatus is everything an operator needs to know about an app at once.
type AppStatus struct {
	App string `json:"app"`
	// Controller runs the app; slots and instances are as it reports them.
	Controller   string       `json:"controller,omitempty"`
	RevisionMode string       `json:"revision_mode"`
	Frozen       *Freeze      `json:"frozen,omitempty"`
	Slots        []SlotStatus `json:"slots"`
	// Running is the operation holding the app's lock, nil when idle.
	Running *Deployment `json:"running"`
	// RunningForSeconds is how long Running has run.
	RunningForSeconds int          `json:"running_for_seconds,omitempty"`
	Queue             []Deployment `json:"queue"`
	Recent            []Deployment `json:"recent"`
	Lease             *Lease       `json:"lease,omitempty"`
	Conflicts         []Conflict   `json:"conflicts"`
	// Disk is what the app's revisions use on this controller's disk, as
	// the last collection measured it (nil before the first).
	Disk *DiskUse `json:"disk,omitempty"`
	// Domains are the app's custom domains and, when the proxy serves
	// HTTPS, each served name's certificate as this controller knows it.
	Domains []DomainStatus `json:"domains,omitempty"`
	// Routing is the app's routing generation and each host's ack, when
	// several hosts share the store.
	Routing *RoutingState `json:"routing,omitempty"`
}

// DomainStatus is one name an app's slot is served at, with its certificate.
type DomainStatus struct {
	Name string `json:"name"`
	Slot string `json:"slot"`
	// Custom is set for a domain added with `baton domains add`.
	Custom      bool               `json:"custom,omitempty"`
	Certificate *CertificateStatus `json:"certificate,omitempty"`
}

// SlotStatus is one slot: its host and active revisions.
type SlotStatus struct {
	Name       string           `json:"name"`
	Host       string           `json:"host"`
	AutoSwapTo string           `json:"auto_swap_to,omitempty"`
	Revisions  []RevisionStatus `json:"revisions"`
	// Scale is the slot's scale as `baton scale` set it; nil when never
	// set (each revision's manifest decides).
	Scale *Scale `json:"scale,omitempty"`
}

// RevisionStatus is an active revision with its traffic and instances.
type RevisionStatus struct {
	Name      string           `json:"name"`
	Weight    int              `json:"traffic"`
	Healthy   int              `json:"healthy_instances"`
	Instances []InstanceStatus `json:"instances"`
	// State is RevisionRestoring while the controller starts the revision
	// again after a restart or an adoption (unpacking its files from the
	// artifact and building it if they are missing), RevisionRestoreFailed
	// once an attempt failed (RestoreError says why; it is retried), and
	// empty otherwise.
	State        string `json:"state,omitempty"`
	RestoreError string `json:"restore_error,omitempty"`
	// Image is the container image the revision runs; nil for an archive.
	Image *ImageRef `json:"image,omitempty"`
	// Hosts says where its instances run when several hosts share the
	// store: each host's share and how it stands (Instances lists only
	// those of the host that answered).
	Hosts []Placement `json:"hosts,omitempty"`
}

// ImageRef names a container image revision's image: where it came from
// and the manifest digest it runs.
type ImageRef struct {
	Ref    string `json:"ref,omitempty"`
	Digest string `json:"digest"`
}

// Revision states in status.
const (
	RevisionRestoring     = "restoring"
	RevisionRestoreFailed = "restore-failed"
)

// InstanceStatus is one running instance.
type InstanceStatus struct {
	Addr         string    `json:"addr"`
	PID          int       `json:"pid"`
	Healthy      bool      `json:"healthy"`
	Restarts     int       `json:"restarts"`
	CrashLooping bool      `json:"crash_looping"`
	LastError    string    `json:"last_error,omitempty"`
	StartedAt    time.Time `json:"started_at"`
}

// Conflict is a state that needs an operator, with the command that fixes it.
type Conflict struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Fix     string `json:"fix"`
}

// Conflict codes: stable, for scripts.
const (
	ConflictMultipleActive   = "multiple_active_revisions"
	ConflictWeightsNot100    = "weights_not_100"
	ConflictTrafficUnhealthy = "traffic_on_unhealthy_revision"
	ConflictPastDeadline     = "operation_past_deadline"
	ConflictExpiredLease     = "expired_lease"
	ConflictLongQueue        = "long_queue"
	ConflictCrashLooping     = "crash_looping_instance"
	ConflictFrozen           = "app_frozen"
	ConflictRestoreFailed    = "restore_failed"
	ConflictSwapPreviewOpen  = "swap_preview_open"
	ConflictCertExpiring     = "certificate_expiring"
	ConflictCertFailing      = "certificate_failing"
	ConflictStaleRouting     = "host_serves_stale_routing"
)

// ResourceStatus is one shared resource (a manifest's release resources):
// the lease of the deployment that holds it, and the deployments waiting
// for it.
type ResourceStatus struct {
	Name    string      `json:"name"`
	Lease   *Lease      `json:"lease,omitempty"`
	Holder  *Deployment `json:"holder,omitempty"`
	Waiters []string    `json:"waiters"`
}
