package baton

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// State is where a deployment is in its life.
type State string

// Deployment states. queued → running → one of the final states.
const (
	StateQueued     State = "queued"
	StateRunning    State = "running"
	StateSucceeded  State = "succeeded"
	StateFailed     State = "failed"
	StateCancelled  State = "cancelled"
	StateSuperseded State = "superseded"
)

func (s State) String() string { return string(s) }

// Final reports whether the deployment can no longer change.
func (s State) Final() bool {
	switch s {
	case StateSucceeded, StateFailed, StateCancelled, StateSuperseded:
		return true
	}
	return false
}

// Phase is the step a running deployment is in.
type Phase string

// Phases of a running deployment, in order.
const (
	PhaseNone       Phase = ""
	PhaseExtracting Phase = "extracting"
	PhaseBuilding   Phase = "building"
	PhaseReleasing  Phase = "releasing"
	// PhaseWaitingForResource: the release step waits for a shared resource's lock.
	PhaseWaitingForResource Phase = "waiting-for-resource"
	PhaseStarting           Phase = "starting"
	PhaseHealthChecking     Phase = "health-checking"
	PhaseWarming            Phase = "warming"
	PhaseSwitching          Phase = "switching"
	PhaseDraining           Phase = "draining"
	// PhaseAwaitingCompletion: a swap with preview waits for complete or cancel.
	PhaseAwaitingCompletion Phase = "awaiting-completion"
)

func (p Phase) String() string { return string(p) }

// AfterSwitch reports whether a deployment in phase p has already switched
// routing to its revision: the phases that follow PhaseSwitching.
func (p Phase) AfterSwitch() bool { return p == PhaseDraining }

// InterruptedOutcome is the final state of a running deployment whose
// controller stopped (crashed, restarted, or lost its lease). If its
// revision serves — its routing change was recorded under its lease
// (switched) or its phase comes after the switch — it succeeded, and the
// history must say so; otherwise it failed, and the previous revision
// still serves.
func InterruptedOutcome(p Phase, switched bool) State {
	if switched || p.AfterSwitch() {
		return StateSucceeded
	}
	return StateFailed
}

// Kind is the operation a deployment record stands for. Every operation
// that changes what serves an app goes through the same queue and lock.
type Kind string

// Operation kinds.
const (
	KindDeploy     Kind = "deploy"     // new revision from an artifact
	KindConfig     Kind = "config"     // settings change: new revision of the live artifact
	KindSwap       Kind = "swap"       // exchange two slots' revisions
	KindTraffic    Kind = "traffic"    // set weights
	KindStabilize  Kind = "stabilize"  // one revision at 100 %, the rest deactivated
	KindActivate   Kind = "activate"   // start an inactive revision (0 %)
	KindDeactivate Kind = "deactivate" // stop a revision without traffic
	KindRestart    Kind = "restart"    // restart a revision's instances
	KindRollback   Kind = "rollback"   // an earlier revision live again
	KindScale      Kind = "scale"      // instance count and spread over hosts
)

// Recovery reports whether operations of kind k only put back or reshape
// what already ran (rollback, stabilize, traffic, activate, deactivate,
// restart, scale), as opposed to bringing new code or settings (deploy,
// settings, swap). A frozen app refuses the latter and allows recovery: freezing
// during an incident must not lock the operator out of the fix.
func (k Kind) Recovery() bool {
	switch k {
	case KindRollback, KindStabilize, KindTraffic, KindActivate, KindDeactivate, KindRestart, KindScale:
		return true
	}
	return false
}

// AutoSwapPrefix starts the log line naming the swap a deployment queued
// (auto_swap_to), so a client following the deployment can follow the swap.
const AutoSwapPrefix = "auto-swap queued as "

// Failure reasons recorded in Deployment.Error prefixes.
const (
	ReasonInterrupted = "interrupted"
	ReasonLockBroken  = "lock broken"
)

// Deployment is one request to create a revision in a slot and make it live.
type Deployment struct {
	ID   string `json:"id"`
	App  string `json:"app"`
	Slot string `json:"slot"`
	// Kind is the operation: KindDeploy, KindSwap, KindTraffic, …
	Kind Kind `json:"kind"`
	// Params holds the operation's arguments as JSON, the form
	// EncodeParams writes and DecodeParams reads (see OpParams).
	Params string `json:"params,omitempty"`
	// Seq orders deployments by acceptance, across all apps.
	Seq      int64  `json:"seq"`
	State    State  `json:"state"`
	Phase    Phase  `json:"phase"`
	Policy   Policy `json:"on_conflict"`
	Revision string `json:"revision"`
	// ArtifactDigest is the sha256 (hex) of the uploaded artifact, or for
	// a container image its manifest digest "sha256:<hex>" (IsImageDigest).
	ArtifactDigest string `json:"artifact_digest"`
	// ArtifactType is "zip", "tar.gz" or "image".
	ArtifactType   string `json:"artifact_type"`
	Message        string `json:"message"`
	Commit         string `json:"commit"`
	Author         string `json:"author"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// OrderKey orders deployments by where their code comes from (a CI
	// run number), not by arrival; 0 when the request had none. Policy
	// newer-only refuses a key lower than the slot's newest.
	OrderKey int64  `json:"order_key,omitempty"`
	Error    string `json:"error"`
	// Token is the fencing token of the lease the deployment ran under.
	Token      int64      `json:"token,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// PhaseStartedAt is when the current phase began.
	PhaseStartedAt *time.Time `json:"phase_started_at,omitempty"`
}

// requestFields are what makes two requests under one Idempotency-Key the
// same request: what is deployed, where, and with which options. Who sent
// it and its message are not: a CI job retried by another person, or with
// a reworded message, repeats the same request.
func (d Deployment) requestFields() []struct{ name, value string } {
	kind, policy := d.Kind, d.Policy
	if kind == "" {
		kind = KindDeploy
	}
	if policy == "" {
		policy = PolicyQueue
	}
	return []struct{ name, value string }{
		{"kind", string(kind)},
		{"slot", d.Slot},
		{"artifact digest", d.ArtifactDigest},
		{"options", d.Params},
		{"on_conflict", string(policy)},
		{"order key", fmt.Sprint(d.OrderKey)},
	}
}

// RequestFingerprint sums the request fields of d (kind, slot, artifact
// digest, options, conflict policy, order key), so that a store can tell
// a repeat of a request from another request under the same key.
func (d Deployment) RequestFingerprint() string {
	h := sha256.New()
	for _, f := range d.requestFields() {
		fmt.Fprintf(h, "%s=%q\n", f.name, f.value)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// RequestDiff names the request fields in which a and b differ
// ("artifact digest, slot"), "" when they are the same request.
func RequestDiff(a, b Deployment) string {
	fa, fb := a.requestFields(), b.requestFields()
	var diff []string
	for i := range fa {
		if fa[i].value != fb[i].value {
			diff = append(diff, fmt.Sprintf("%s (%s, now %s)", fa[i].name, orNone(fa[i].value), orNone(fb[i].value)))
		}
	}
	return strings.Join(diff, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	if len(s) > 19 {
		return s[:16] + "…"
	}
	return s
}

// Duration is how long the deployment ran, or has run until now.
func (d *Deployment) Duration(now time.Time) time.Duration {
	if d.StartedAt == nil {
		return 0
	}
	end := now
	if d.FinishedAt != nil {
		end = *d.FinishedAt
	}
	return end.Sub(*d.StartedAt)
}

// Describe is a one-line human description, used in 409 problems and logs.
func (d *Deployment) Describe(now time.Time) string {
	s := fmt.Sprintf("deployment %s (%s", d.ID, d.State)
	if d.Phase != PhaseNone {
		s += ", phase " + string(d.Phase)
	}
	s += ")"
	if d.Author != "" {
		s += " by " + d.Author
	}
	if d.Commit != "" {
		s += " of commit " + shortCommit(d.Commit)
	}
	if d.StartedAt != nil {
		s += fmt.Sprintf(", running for %s", d.Duration(now).Round(time.Second))
	}
	return s
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// DeploymentFilter selects deployments in Store.Deployments.
type DeploymentFilter struct {
	App    string
	States []State
	// Limit bounds the result; 0 means no limit.
	Limit int
	// Oldest returns the oldest first (queue order) instead of newest first.
	Oldest bool
	// PerApp, when above 0, keeps at most PerApp deployments of each app
	// (its newest, or its oldest with Oldest): the recent history of many
	// apps in one query.
	PerApp int
}

// LogLine is one line of a deployment's log.
type LogLine struct {
	ID   int64     `json:"id"`
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}
