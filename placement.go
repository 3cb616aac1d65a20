package baton

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Scale is how many instances each revision serving a slot runs and how
// they spread over the hosts that share the store (`baton scale`).
type Scale struct {
	App  string `json:"app"`
	Slot string `json:"slot"`
	// Instances is how many instances each revision of the slot runs;
	// 0 means the revision's manifest decides ([run] instances).
	Instances int `json:"instances"`
	// MaxPerHost caps the instances of one revision on one host; 0 means
	// no cap.
	MaxPerHost int `json:"max_per_host"`
}

// MaxScaleInstances bounds Scale.Instances, as the manifest bounds
// [run] instances.
const MaxScaleInstances = 64

// Validate checks a Scale a client asked for.
func (s Scale) Validate() error {
	if s.Instances < 0 || s.Instances > MaxScaleInstances {
		return Errorf(EINVALID, "instances must be between 1 and %d, got %d", MaxScaleInstances, s.Instances)
	}
	if s.MaxPerHost < 0 || s.MaxPerHost > MaxScaleInstances {
		return Errorf(EINVALID, "max per host must be between 0 (no cap) and %d, got %d", MaxScaleInstances, s.MaxPerHost)
	}
	return nil
}

// PlacementState is how a host's share of a revision stands.
type PlacementState string

// The states of a placement.
const (
	// PlacementStarting: the host was asked to start its instances and has
	// not reported them healthy yet.
	PlacementStarting PlacementState = "starting"
	// PlacementHealthy: every instance passed its health check; proxies
	// route to them while the revision has traffic.
	PlacementHealthy PlacementState = "healthy"
	// PlacementFailed: the host could not start them (Message says why).
	PlacementFailed PlacementState = "failed"
	// PlacementReplacing: the host serves the share it runs while it
	// starts one of the new size (a scale, a restart, a rebalance); it
	// reports healthy once the new one serves. Proxies route to it.
	PlacementReplacing PlacementState = "replacing"
	// PlacementDraining: the owner is taking them away; proxies no longer
	// route to them, and the host stops them once the row is gone.
	PlacementDraining PlacementState = "draining"
)

// Placement is one host's share of a revision's instances in a slot. The
// app's owner writes them (SetPlacements); each host starts what is placed
// on it and reports (ReportPlacement); every host's proxy routes to the
// healthy ones (and those replacing their instances), remote ones through
// their host's peer listener.
type Placement struct {
	App       string         `json:"app"`
	Slot      string         `json:"slot"`
	Revision  string         `json:"revision"`
	Host      string         `json:"host"`
	Instances int            `json:"instances"`
	State     PlacementState `json:"state"`
	// Message says why a placement failed.
	Message   string    `json:"message,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Serving reports whether proxies route to a placement.
func (p Placement) Serving() bool {
	return p.State == PlacementHealthy || p.State == PlacementReplacing
}

// PlacementFilter selects placements; empty fields match all.
type PlacementFilter struct {
	App, Slot, Revision, Host string
}

// PlacementStore keeps the scale of slots and where revisions' instances
// run. Implemented by every store; on a store one controller has alone,
// every placement is on that controller.
//
// A slot's scale and placements go with it (DeleteSlot) and with its app
// (DeleteApp). A host's placements outlive the host (DeregisterController,
// or a host that stops heartbeating): the app's owner replaces a lost
// host's share itself, with SetPlacements.
type PlacementStore interface {
	// SetScale records a slot's scale; ENOTFOUND if the app or slot does
	// not exist. Fenced: scale changes under the app's lease, and a stale
	// fence fails with ErrStaleToken. The caller checks s (Scale.Validate).
	SetScale(ctx context.Context, f Fence, s Scale) error
	// Scale returns a slot's scale, zero (manifest decides) with App and
	// Slot set when never set.
	Scale(ctx context.Context, app, slot string) (Scale, error)
	// SetPlacements replaces the placements of one revision in a slot by
	// ps (an empty ps removes them all), advances the app's routing
	// generation as SetRouting does and notifies every host, in one
	// transaction. Each placement keeps its State and Message as given;
	// UpdatedAt is the store's clock. EINVALID if ps fails
	// ValidatePlacements, ENOTFOUND if the app or slot does not exist.
	// Not fenced: only the app's owner writes placements.
	SetPlacements(ctx context.Context, app, slot, revision string, ps []Placement) error
	// ReportPlacement sets the State and Message of one host's placement
	// (p.App, p.Slot, p.Revision, p.Host), with UpdatedAt by the store's
	// clock, and notifies every host; the routing generation stays.
	// ENOTFOUND if it was removed meanwhile.
	ReportPlacement(ctx context.Context, p Placement) error
	// Placements lists the placements matching f, by app, slot, revision
	// and host.
	Placements(ctx context.Context, f PlacementFilter) ([]Placement, error)
	// SetHostDrain records that an operator asked host id to drain (or
	// no longer); ENOTFOUND if no such host. Registering the host again
	// (a restart) and its heartbeats keep it; Controllers reports it as
	// DrainRequested.
	SetHostDrain(ctx context.Context, id string, drain bool) error
}

// ValidatePlacements checks the placements SetPlacements is given for one
// revision in a slot: each names that app, slot and revision, a host (once),
// at least one instance and a state. Stores call it, so that every store
// refuses the same placements.
func ValidatePlacements(app, slot, revision string, ps []Placement) error {
	hosts := make(map[string]bool, len(ps))
	for _, p := range ps {
		if p.App != app || p.Slot != slot || p.Revision != revision {
			return Errorf(EINVALID, "placement of %s/%s/%s among the placements of %s/%s/%s", p.App, p.Slot, p.Revision, app, slot, revision)
		}
		if p.Host == "" {
			return Errorf(EINVALID, "placement of %s in slot %s names no host", revision, slot)
		}
		if hosts[p.Host] {
			return Errorf(EINVALID, "host %s is placed twice for %s in slot %s", p.Host, revision, slot)
		}
		hosts[p.Host] = true
		if p.Instances < 1 {
			return Errorf(EINVALID, "placement of %s on %s: at least 1 instance, got %d", revision, p.Host, p.Instances)
		}
		if p.State == "" {
			return Errorf(EINVALID, "placement of %s on %s has no state", revision, p.Host)
		}
	}
	return nil
}

// ErrNoSuchPlacement is the answer for a report on a placement that is not
// (or no longer) recorded: the owner moved the revision's instances meanwhile.
func ErrNoSuchPlacement(p Placement) error {
	return Errorf(ENOTFOUND, "no placement of %s in slot %s of %s on host %s", p.Revision, p.Slot, p.App, p.Host)
}

// HostLoad is a host as placement sees it.
type HostLoad struct {
	ID string
	// Instances is how many instances it runs of every app.
	Instances int
}

// Place decides how many instances of one revision each host runs: n in
// all over the live hosts given, at most maxPerHost on one (0: no cap).
// Spread comes first: the counts of any two hosts differ by at most one.
// Where that leaves a choice (n not a multiple of the hosts), the extra
// instances stay where cur has the most of them (a redeploy or a scale
// change moves nothing it need not), then go to the least loaded host,
// then by id. The anchor, when it is one of the hosts, always gets at
// least one: the app's owner runs a share of every revision it serves
// (its operations start, log and restart them there). It fails when the
// hosts cannot hold n under the cap, saying what to change.
func Place(n, maxPerHost int, hosts []HostLoad, cur map[string]int, anchor string) (map[string]int, error) {
	if n < 1 {
		return nil, Errorf(EINVALID, "a revision runs at least 1 instance, asked for %d", n)
	}
	if len(hosts) == 0 {
		return nil, Errorf(ECONFLICT, "no live host can run instances: start baton serve on a host, or undrain one (baton hosts undrain HOST)")
	}
	if maxPerHost > 0 && maxPerHost*len(hosts) < n {
		ids := make([]string, len(hosts))
		for i, h := range hosts {
			ids[i] = h.ID
		}
		sort.Strings(ids)
		return nil, Errorf(ECONFLICT, "%d instances with at most %d per host need %d live hosts, and %d are live (%s): lower --instances, raise --max-per-host or add a host",
			n, maxPerHost, (n+maxPerHost-1)/maxPerHost, len(hosts), strings.Join(ids, ", "))
	}
	hs := append([]HostLoad(nil), hosts...)
	sort.Slice(hs, func(i, j int) bool {
		a, b := hs[i], hs[j]
		if (a.ID == anchor) != (b.ID == anchor) {
			return a.ID == anchor
		}
		if cur[a.ID] != cur[b.ID] {
			return cur[a.ID] > cur[b.ID]
		}
		if a.Instances-cur[a.ID] != b.Instances-cur[b.ID] { // load besides this revision
			return a.Instances-cur[a.ID] < b.Instances-cur[b.ID]
		}
		return a.ID < b.ID
	})
	out := map[string]int{}
	each, extra := n/len(hs), n%len(hs)
	for i, h := range hs {
		k := each
		if i < extra {
			k++
		}
		if k > 0 {
			out[h.ID] = k
		}
	}
	return out, nil
}

// DescribePlacement says where instances run, e.g. "2 on h1, 1 on h2".
func DescribePlacement(p map[string]int) string {
	ids := make([]string, 0, len(p))
	for id := range p {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%d on %s", p[id], id)
	}
	return strings.Join(parts, ", ")
}
