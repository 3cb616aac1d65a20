package baton

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Policy says what a new deployment does when its app is busy (the
// request's on_conflict). Admit is where each policy's rule lives.
type Policy string

// Conflict policies.
const (
	PolicyQueue     Policy = "queue"     // wait in FIFO order
	PolicyFail      Policy = "fail"      // refuse with 409 if anything runs or waits
	PolicyCancel    Policy = "cancel"    // cancel running and queued, then run
	PolicySupersede Policy = "supersede" // supersede queued ones, run after the current one
	// PolicyNewerOnly refuses a deploy whose order key is lower than the
	// slot's live, running or queued deploy, supersedes queued older ones
	// and otherwise queues: a slow old pipeline never puts older code live
	// after a newer one.
	PolicyNewerOnly Policy = "newer-only"
)

// Policies lists every conflict policy, the default first.
func Policies() []Policy {
	return []Policy{PolicyQueue, PolicyFail, PolicyCancel, PolicySupersede, PolicyNewerOnly}
}

// PolicyChoices is the policies for a flag's help: "queue | fail | …".
func PolicyChoices() string {
	policies := Policies()
	names := make([]string, 0, len(policies))
	for _, p := range policies {
		names = append(names, string(p))
	}
	return strings.Join(names, " | ")
}

// ParsePolicy parses an on_conflict value; "" means queue.
func ParsePolicy(s string) (Policy, error) {
	if s == "" {
		return PolicyQueue, nil
	}
	for _, p := range Policies() {
		if Policy(s) == p {
			return p, nil
		}
	}
	return "", Errorf(EINVALID, "on_conflict %q is not one of %s", s, strings.ReplaceAll(PolicyChoices(), " | ", ", "))
}

// ParseOrderKey parses a deploy's order key as the API, Kudu and git push
// take it: "" is none (0); anything else must be a positive whole number.
func ParseOrderKey(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, Errorf(EINVALID, "order key %q must be a positive whole number, such as the CI run number", s)
	}
	return n, nil
}

// QueueState is what a store reads about an app, inside the transaction
// that holds the app's lock, so that Admit can decide an EnqueueRequest.
// The store reads facts; every rule that turns them into an answer is
// Admit's.
type QueueState struct {
	// Frozen is the app's freeze; nil when deployments are allowed.
	Frozen *Freeze
	// Running is the app's running deployment; nil when none runs.
	Running *Deployment
	// Queued are the app's queued deployments, oldest first.
	Queued []Deployment
	// Repeat is the app's newest deployment recorded under the request's
	// Idempotency-Key, however old; nil without a key or a match.
	Repeat *Deployment
	// RepeatUnchanged is the Unchanged answer recorded under the request's
	// Idempotency-Key, however old; nil without a key or a record.
	RepeatUnchanged *UnchangedAnswer
	// NewestSeq is the Seq of the app's newest deployment (0 if none).
	// Read only for a request with IfUnchanged.
	NewestSeq int64
	// Serving lists the revisions active in the request's slot with their
	// weights. Read only for a request with IfUnchanged.
	Serving []RevisionWeight
	// Live is the deploy with the highest order key among those whose
	// revisions are active in the request's slot; nil if none has a key.
	// Read only for a request with policy newer-only.
	Live *Deployment
}

// UnchangedAnswer is an Unchanged answer a store kept under an
// Idempotency-Key, so that a repeat of the request gets it again.
type UnchangedAnswer struct {
	// Revision served the slot when the answer was given.
	Revision string
	At       time.Time
	// Request is the answered request's Deployment.RequestFingerprint;
	// "" for answers kept before fingerprints were (taken as the same).
	Request string
}

// Verdict is what Admit decided a store must answer.
type Verdict int

// Verdicts of Admit. A refusal is not a verdict but Admit's error.
const (
	// VerdictQueue: record Admission.Deployment as queued, after ending
	// Admission.Replace.
	VerdictQueue Verdict = iota
	// VerdictRepeat: record nothing; answer Admission.Deployment, which an
	// earlier request with the same Idempotency-Key created.
	VerdictRepeat
	// VerdictRepeatUnchanged: record nothing; an earlier request with the
	// same Idempotency-Key was answered Unchanged with Admission.Revision,
	// and this one gets that answer again.
	VerdictRepeatUnchanged
	// VerdictUnchanged: record no deployment; Admission.Revision still
	// serves as the caller compared (EnqueueRequest.IfUnchanged). With an
	// Idempotency-Key the store keeps this answer for repeats.
	VerdictUnchanged
)

func (v Verdict) String() string {
	switch v {
	case VerdictQueue:
		return "queue"
	case VerdictRepeat:
		return "repeat"
	case VerdictRepeatUnchanged:
		return "repeat-unchanged"
	case VerdictUnchanged:
		return "unchanged"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Admission is Admit's decision, which the store applies in the same
// transaction it read the QueueState in.
type Admission struct {
	Verdict Verdict
	// Deployment is, for VerdictQueue, the deployment to record (queued,
	// Kind defaulted); for VerdictRepeat, the earlier deployment to answer.
	Deployment Deployment
	// Revision is, for VerdictUnchanged and VerdictRepeatUnchanged, the
	// revision that serves; the answer is the deployment that created it.
	Revision string
	// Ahead is how many deployments will run before this one (VerdictQueue).
	Ahead int
	// Replace lists queued deployments that the new one ends, each moved to
	// ReplaceState with ReplaceReason as its error.
	Replace       []string
	ReplaceState  State
	ReplaceReason string
	// CancelRunning is the running deployment the new one asks to stop.
	CancelRunning string
}

// Admit decides an EnqueueRequest against the app's QueueState at now. In
// order: a frozen app refuses (EFROZEN) all but recovery (Kind.Recovery);
// a repeated Idempotency-Key within the window gets the first answer if
// the request is the same (RequestDiff), and is refused with
// EUNPROCESSABLE naming the key's deployment if it is not (the IETF
// httpapi Idempotency-Key draft); a request whose IfUnchanged still holds
// records nothing; then the conflict policy decides, refusing with ECONFLICT
// (policy fail on a busy app) or EQUEUEFULL (policy queue on a full queue),
// or queueing, possibly replacing queued deployments and cancelling the
// running one.
//
// Admit is pure: a store calls it between reading q and writing the
// result, in one transaction that holds the app's lock, so no two requests
// for one app are decided from the same state.
func Admit(req EnqueueRequest, q QueueState, now time.Time) (Admission, error) {
	d := req.Deployment
	if f := q.Frozen; f != nil && !d.Kind.Recovery() {
		return Admission{}, Errorf(EFROZEN, "app %q is frozen since %s by %s: %q; deployments, settings changes and swaps are refused until `baton unfreeze %s` (recovery stays allowed: rollback, stabilize, traffic, revisions)",
			d.App, f.At.UTC().Format(time.RFC3339), f.By, f.Reason, d.App)
	}
	if d.IdempotencyKey != "" {
		since := now.Add(-req.IdempotencyWindow)
		if r := q.Repeat; r != nil && !r.CreatedAt.Before(since) {
			if diff := RequestDiff(*r, d); diff != "" {
				return Admission{}, Errorf(EUNPROCESSABLE, "Idempotency-Key %q belongs to deployment %s (%s of %s/%s), and this request differs in %s; nothing was created. Send a new key for a new request (the same key only repeats the same request)",
					d.IdempotencyKey, r.ID, r.Kind, r.App, r.Slot, diff)
			}
			return Admission{Verdict: VerdictRepeat, Deployment: *r}, nil
		}
		if r := q.RepeatUnchanged; r != nil && !r.At.Before(since) {
			if r.Request != "" && r.Request != d.RequestFingerprint() {
				return Admission{}, Errorf(EUNPROCESSABLE, "Idempotency-Key %q belongs to an earlier request to %s that was answered \"%s already live\", and this request differs (artifact, slot or options); nothing was created. Send a new key for a new request (the same key only repeats the same request)",
					d.IdempotencyKey, d.App, r.Revision)
			}
			return Admission{Verdict: VerdictRepeatUnchanged, Revision: r.Revision}, nil
		}
	}
	if c := req.IfUnchanged; c != nil && stillServes(c, q) {
		return Admission{Verdict: VerdictUnchanged, Revision: c.Revision}, nil
	}
	return admitByPolicy(req, q, now)
}

// stillServes reports whether what the caller compared still serves (see
// EnqueueRequest.IfUnchanged): nothing of the app queued, running or newer
// than c.Seq, and c.Revision active in the slot with c.Weight.
func stillServes(c *LiveCheck, q QueueState) bool {
	if q.Running != nil || len(q.Queued) > 0 || q.NewestSeq > c.Seq {
		return false
	}
	for _, s := range q.Serving {
		if s.Revision == c.Revision {
			return s.Weight == c.Weight
		}
	}
	return false
}

// admitByPolicy applies the request's conflict policy. A new policy is a
// new case here (and in Policies); the stores apply whatever
// Admission it yields.
func admitByPolicy(req EnqueueRequest, q QueueState, now time.Time) (Admission, error) {
	d := req.Deployment
	if d.Kind == "" {
		d.Kind = KindDeploy
	}
	d.State = StateQueued
	adm := Admission{Verdict: VerdictQueue, Deployment: d}
	running := 0
	if q.Running != nil {
		running = 1
	}
	switch d.Policy {
	case PolicyQueue:
		if req.MaxQueue > 0 && len(q.Queued) >= req.MaxQueue {
			return Admission{}, &Error{
				Code:     EQUEUEFULL,
				Message:  fmt.Sprintf("app %q already has %d deployments queued (the limit); wait for some to finish (`baton wait %s`) or deploy with --on-conflict=supersede to replace them", d.App, len(q.Queued), d.App),
				Conflict: &ConflictDetail{App: d.App, Holder: q.Running, QueueLength: len(q.Queued)},
			}
		}
		adm.Ahead = running + len(q.Queued)
	case PolicyFail:
		if q.Running != nil || len(q.Queued) > 0 {
			return Admission{}, busy(d.App, q, now)
		}
	case PolicyCancel:
		adm.replaceQueued(q, StateCancelled, fmt.Sprintf("cancelled by deployment %s (on_conflict=cancel)", d.ID))
		if q.Running != nil {
			adm.CancelRunning = q.Running.ID
		}
	case PolicySupersede:
		adm.replaceQueued(q, StateSuperseded, fmt.Sprintf("superseded by deployment %s", d.ID))
		adm.Ahead = running
	case PolicyNewerOnly:
		return admitNewerOnly(req, q, now, adm)
	default:
		return Admission{}, Errorf(EINVALID, "unknown conflict policy %q", d.Policy)
	}
	return adm, nil
}

// busy is the 409 of policy fail: it names what holds the app — the
// running deployment, else the oldest queued one — and the queue's length.
func busy(app string, q QueueState, now time.Time) *Error {
	holder := q.Running
	if holder == nil {
		holder = &q.Queued[0]
	}
	return &Error{
		Code: ECONFLICT,
		Message: fmt.Sprintf("app %q is busy: %s, and %d more queued. Retry later, use `baton wait %s`, or deploy with --on-conflict=queue to wait in line",
			app, holder.Describe(now), len(q.Queued), app),
		Conflict: &ConflictDetail{App: app, Holder: holder, QueueLength: len(q.Queued),
			RunningForSeconds: int(holder.Duration(now).Seconds())},
	}
}

// replaceQueued asks the store to end every queued deployment in state,
// with reason as its error.
func (a *Admission) replaceQueued(q QueueState, state State, reason string) {
	if len(q.Queued) == 0 {
		return
	}
	a.Replace = make([]string, len(q.Queued))
	for i, d := range q.Queued {
		a.Replace[i] = d.ID
	}
	a.ReplaceState, a.ReplaceReason = state, reason
}

// admitNewerOnly is policy newer-only: deploys of a slot go live in the
// order of their keys, whatever order they arrive in. A key lower than
// the slot's newest (live, running or queued) is refused, naming the newer
// one; an equal key is the same pipeline run retried and is accepted.
// Queued deploys of the slot with lower or equal keys are superseded, so
// only the newest waits (deploys without a key are not ordered and keep
// their place); otherwise the request queues as with queue.
func admitNewerOnly(req EnqueueRequest, q QueueState, now time.Time, adm Admission) (Admission, error) {
	d := adm.Deployment
	if d.Kind != KindDeploy {
		return Admission{}, Errorf(EINVALID, "on_conflict=newer-only orders deploys by their order key; a %s operation has none: use queue, fail, cancel or supersede", d.Kind)
	}
	if d.OrderKey <= 0 {
		return Admission{}, Errorf(EINVALID, "on_conflict=newer-only needs an order key: pass --order-key N (a CI run number; baton deploy reads GITHUB_RUN_NUMBER, CI_PIPELINE_IID or BUILD_BUILDID when set)")
	}
	newer := q.Live
	consider := func(o *Deployment) {
		if o.Kind == KindDeploy && o.Slot == d.Slot && o.OrderKey > 0 && (newer == nil || o.OrderKey > newer.OrderKey) {
			newer = o
		}
	}
	if q.Running != nil {
		consider(q.Running)
	}
	for i := range q.Queued {
		consider(&q.Queued[i])
	}
	if newer != nil && d.OrderKey < newer.OrderKey {
		return Admission{}, &Error{
			Code: ECONFLICT,
			Message: fmt.Sprintf("a newer deploy of %s/%s exists: %s has order key %d, this request %d; an older pipeline never replaces a newer deploy (on_conflict=newer-only). Deploy with a key of at least %d, or with --on-conflict=queue to deploy this one anyway",
				d.App, d.Slot, newer.Describe(now), newer.OrderKey, d.OrderKey, newer.OrderKey),
			Conflict: &ConflictDetail{App: d.App, Holder: newer, QueueLength: len(q.Queued)},
		}
	}
	for _, o := range q.Queued {
		if o.Kind == KindDeploy && o.Slot == d.Slot && o.OrderKey > 0 {
			adm.Replace = append(adm.Replace, o.ID)
		}
	}
	if len(adm.Replace) > 0 {
		adm.ReplaceState = StateSuperseded
		adm.ReplaceReason = fmt.Sprintf("superseded by deployment %s with newer order key %d", d.ID, d.OrderKey)
	}
	if req.MaxQueue > 0 && len(q.Queued)-len(adm.Replace) >= req.MaxQueue {
		return Admission{}, Errorf(EQUEUEFULL, "app %q already has %d operations queued (the limit); wait for some to finish (`baton wait %s`)", d.App, len(q.Queued), d.App)
	}
	adm.Ahead = len(q.Queued) - len(adm.Replace)
	if q.Running != nil {
		adm.Ahead++
	}
	return adm, nil
}
