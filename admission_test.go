package baton_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

var admitNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// queueFixture is an app's queue: r runs (started a minute ago), q1 and q2
// wait in that order.
var (
	runningD = baton.Deployment{ID: "d-r", App: "hello", Slot: baton.ProductionSlot, Kind: baton.KindDeploy, OrderKey: 4,
		State: baton.StateRunning, Phase: baton.PhaseBuilding,
		Author: "ada", StartedAt: ptr(admitNow.Add(-time.Minute)), CreatedAt: admitNow.Add(-2 * time.Minute)}
	queued1 = baton.Deployment{ID: "d-q1", App: "hello", Slot: baton.ProductionSlot, Kind: baton.KindDeploy, OrderKey: 5,
		State: baton.StateQueued, CreatedAt: admitNow.Add(-time.Minute)}
	queued2 = baton.Deployment{ID: "d-q2", App: "hello", Slot: baton.ProductionSlot, Kind: baton.KindDeploy, OrderKey: 6,
		State: baton.StateQueued, CreatedAt: admitNow.Add(-time.Second)}
)

func ptr[T any](v T) *T { return &v }

// admitCase is the state an app's queue can be in when a request arrives.
type admitCase struct {
	q        baton.QueueState
	maxQueue int
}

var admitCases = map[string]admitCase{
	"empty":          {},
	"running":        {q: baton.QueueState{Running: &runningD}},
	"queued":         {q: baton.QueueState{Queued: []baton.Deployment{queued1, queued2}}},
	"running+queued": {q: baton.QueueState{Running: &runningD, Queued: []baton.Deployment{queued1, queued2}}, maxQueue: 3},
	"full":           {q: baton.QueueState{Running: &runningD, Queued: []baton.Deployment{queued1, queued2}}, maxQueue: 2},
}

// admitted is what a queueing Admission must say; refused, the error code.
type admitted struct {
	refused       string
	ahead         int
	replace       []string
	replaceState  baton.State
	cancelRunning string
}

// admitWant holds, for every policy and every queue state, the decision.
// TestAdmitPolicies fails when a policy from baton.Policies() lacks a row
// here, so a new policy cannot go in undecided.
var admitWant = map[baton.Policy]map[string]admitted{
	baton.PolicyQueue: {
		"empty":          {},
		"running":        {ahead: 1},
		"queued":         {ahead: 2},
		"running+queued": {ahead: 3},
		"full":           {refused: baton.EQUEUEFULL},
	},
	baton.PolicyFail: {
		"empty":          {},
		"running":        {refused: baton.ECONFLICT},
		"queued":         {refused: baton.ECONFLICT},
		"running+queued": {refused: baton.ECONFLICT},
		"full":           {refused: baton.ECONFLICT},
	},
	baton.PolicyCancel: {
		"empty":          {},
		"running":        {cancelRunning: "d-r"},
		"queued":         {replace: []string{"d-q1", "d-q2"}, replaceState: baton.StateCancelled},
		"running+queued": {replace: []string{"d-q1", "d-q2"}, replaceState: baton.StateCancelled, cancelRunning: "d-r"},
		"full":           {replace: []string{"d-q1", "d-q2"}, replaceState: baton.StateCancelled, cancelRunning: "d-r"},
	},
	baton.PolicySupersede: {
		"empty":          {},
		"running":        {ahead: 1},
		"queued":         {replace: []string{"d-q1", "d-q2"}, replaceState: baton.StateSuperseded},
		"running+queued": {ahead: 1, replace: []string{"d-q1", "d-q2"}, replaceState: baton.StateSuperseded},
		"full":           {ahead: 1, replace: []string{"d-q1", "d-q2"}, replaceState: baton.StateSuperseded},
	},
	// The request's order key (10, newRequest) is newer than every key in
	// the fixtures; TestAdmitNewerOnly covers older and equal keys.
	baton.PolicyNewerOnly: {
		"empty":          {},
		"running":        {ahead: 1},
		"queued":         {replace: []string{"d-q1", "d-q2"}, replaceState: baton.StateSuperseded},
		"running+queued": {ahead: 1, replace: []string{"d-q1", "d-q2"}, replaceState: baton.StateSuperseded},
		"full":           {ahead: 1, replace: []string{"d-q1", "d-q2"}, replaceState: baton.StateSuperseded},
	},
}

func newRequest(p baton.Policy) baton.EnqueueRequest {
	return baton.EnqueueRequest{
		Deployment:        baton.Deployment{ID: "d-new", App: "hello", Slot: baton.ProductionSlot, Policy: p, OrderKey: 10},
		IdempotencyWindow: time.Hour,
	}
}

func TestAdmitPolicies(t *testing.T) {
	for _, p := range baton.Policies() {
		for name, c := range admitCases {
			t.Run(string(p)+"/"+name, func(t *testing.T) {
				want, ok := admitWant[p][name]
				if !ok {
					t.Fatalf("admitWant has no decision for policy %s with queue state %s", p, name)
				}
				req := newRequest(p)
				req.MaxQueue = c.maxQueue
				adm, err := baton.Admit(req, c.q, admitNow)
				if want.refused != "" {
					if code := baton.ErrorCode(err); code != want.refused {
						t.Fatalf("Admit = %+v, %v; want refusal %s", adm, err, want.refused)
					}
					return
				}
				if err != nil {
					t.Fatalf("Admit refused: %v", err)
				}
				got := admitted{ahead: adm.Ahead, replace: adm.Replace, replaceState: adm.ReplaceState, cancelRunning: adm.CancelRunning}
				if adm.Verdict != baton.VerdictQueue || !reflect.DeepEqual(got, want) {
					t.Fatalf("Admit = %s %+v, want queue %+v", adm.Verdict, got, want)
				}
				if d := adm.Deployment; d.ID != "d-new" || d.State != baton.StateQueued || d.Kind != baton.KindDeploy || d.Policy != p {
					t.Fatalf("deployment to record = %+v, want d-new queued, kind deploy, policy %s", d, p)
				}
				if len(adm.Replace) > 0 && !strings.Contains(adm.ReplaceReason, "d-new") {
					t.Fatalf("replace reason %q does not name the new deployment", adm.ReplaceReason)
				}
			})
		}
	}
}

// TestAdmitFailNamesHolder: the 409 of policy fail names whoever holds the
// app — the running deployment, else the oldest queued one — and the queue.
func TestAdmitFailNamesHolder(t *testing.T) {
	for name, tc := range map[string]struct {
		q      baton.QueueState
		holder string
	}{
		"running":        {baton.QueueState{Running: &runningD}, "d-r"},
		"queued only":    {baton.QueueState{Queued: []baton.Deployment{queued1, queued2}}, "d-q1"},
		"running+queued": {baton.QueueState{Running: &runningD, Queued: []baton.Deployment{queued1}}, "d-r"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := baton.Admit(newRequest(baton.PolicyFail), tc.q, admitNow)
			var e *baton.Error
			if !errors.As(err, &e) || e.Code != baton.ECONFLICT || e.Conflict == nil || e.Conflict.Holder == nil {
				t.Fatalf("Admit error = %v, want a conflict naming its holder", err)
			}
			if e.Conflict.Holder.ID != tc.holder || e.Conflict.QueueLength != len(tc.q.Queued) || e.Conflict.App != "hello" {
				t.Fatalf("conflict = %+v (holder %s), want holder %s and queue length %d", e.Conflict, e.Conflict.Holder.ID, tc.holder, len(tc.q.Queued))
			}
			if !strings.Contains(e.Message, tc.holder) {
				t.Fatalf("message %q does not name the holder %s", e.Message, tc.holder)
			}
		})
	}
	_, err := baton.Admit(newRequest(baton.PolicyFail), baton.QueueState{Running: &runningD}, admitNow)
	var e *baton.Error
	if !errors.As(err, &e) || e.Conflict.RunningForSeconds != 60 {
		t.Fatalf("conflict %+v, want the holder running for 60 s", err)
	}
}

func TestAdmitQueueFullNamesRunning(t *testing.T) {
	req := newRequest(baton.PolicyQueue)
	req.MaxQueue = 2
	_, err := baton.Admit(req, admitCases["full"].q, admitNow)
	var e *baton.Error
	if !errors.As(err, &e) || e.Code != baton.EQUEUEFULL || e.Conflict == nil || e.Conflict.Holder != &runningD || e.Conflict.QueueLength != 2 {
		t.Fatalf("Admit error = %+v, want queue full naming d-r and 2 queued", err)
	}
}

// TestAdmitFrozen: a frozen app refuses every policy, in any queue state,
// even a repeated Idempotency-Key, quoting who froze it and why.
func TestAdmitFrozen(t *testing.T) {
	freeze := &baton.Freeze{Reason: "incident 42", By: "alice", At: admitNow.Add(-time.Hour)}
	for _, p := range baton.Policies() {
		for name, c := range admitCases {
			q := c.q
			q.Frozen = freeze
			q.Repeat = &queued1
			req := newRequest(p)
			req.Deployment.IdempotencyKey = "k"
			_, err := baton.Admit(req, q, admitNow)
			if baton.ErrorCode(err) != baton.EFROZEN || !strings.Contains(err.Error(), "incident 42") || !strings.Contains(err.Error(), "alice") {
				t.Fatalf("%s/%s: Admit error = %v, want EFROZEN quoting reason and who", p, name, err)
			}
		}
	}
}

// TestAdmitFrozenAllowsRecovery: a freeze stops new code (deploys,
// settings changes, swaps) and lets recovery through, so an operator can
// stabilize or roll back during an incident without unfreezing for CI.
func TestAdmitFrozenAllowsRecovery(t *testing.T) {
	q := baton.QueueState{Frozen: &baton.Freeze{Reason: "incident 42", By: "alice", At: admitNow}}
	for kind, allowed := range map[baton.Kind]bool{
		baton.KindDeploy: false, baton.KindConfig: false, baton.KindSwap: false,
		baton.KindRollback: true, baton.KindStabilize: true, baton.KindTraffic: true,
		baton.KindActivate: true, baton.KindDeactivate: true, baton.KindRestart: true,
	} {
		req := newRequest(baton.PolicyQueue)
		req.Deployment.Kind = kind
		_, err := baton.Admit(req, q, admitNow)
		if allowed && err != nil {
			t.Errorf("%s while frozen: %v, want it admitted (recovery)", kind, err)
		}
		if !allowed && baton.ErrorCode(err) != baton.EFROZEN {
			t.Errorf("%s while frozen: %v, want EFROZEN", kind, err)
		}
	}
}

// TestAdmitRepeat: a repeated Idempotency-Key within the window gets the
// first answer whatever the policy and the queue (a full queue, a busy
// app under fail); outside the window, or with another key, the request
// is decided afresh.
func TestAdmitRepeat(t *testing.T) {
	unchanged := &baton.UnchangedAnswer{Revision: "hello--000003", At: admitNow.Add(-time.Minute)}
	for _, p := range baton.Policies() {
		for name, c := range admitCases {
			req := newRequest(p)
			req.MaxQueue = c.maxQueue
			req.Deployment.IdempotencyKey = "k"
			// The first request was this one, sent a minute ago by someone else.
			first := req.Deployment
			first.ID, first.State, first.Kind, first.CreatedAt, first.Author = "d-q1", baton.StateQueued, baton.KindDeploy, admitNow.Add(-time.Minute), "bob"
			unchanged.Request = req.Deployment.RequestFingerprint()

			q := c.q
			q.Repeat = &first
			adm, err := baton.Admit(req, q, admitNow)
			if err != nil || adm.Verdict != baton.VerdictRepeat || adm.Deployment.ID != first.ID {
				t.Fatalf("%s/%s: repeat = %s %s, %v; want the first deployment %s", p, name, adm.Verdict, adm.Deployment.ID, err, first.ID)
			}

			q = c.q
			q.RepeatUnchanged = unchanged
			adm, err = baton.Admit(req, q, admitNow)
			if err != nil || adm.Verdict != baton.VerdictRepeatUnchanged || adm.Revision != unchanged.Revision {
				t.Fatalf("%s/%s: repeat of an unchanged answer = %s %q, %v; want it again", p, name, adm.Verdict, adm.Revision, err)
			}

			// Outside the window: decided like a request without a key.
			q = c.q
			q.Repeat, q.RepeatUnchanged = &first, unchanged
			late := req
			late.IdempotencyWindow = 30 * time.Second
			adm, err = baton.Admit(late, q, admitNow)
			fresh, freshErr := baton.Admit(newRequestLike(late), c.q, admitNow)
			if adm.Verdict != fresh.Verdict || baton.ErrorCode(err) != baton.ErrorCode(freshErr) {
				t.Fatalf("%s/%s: outside the window = %s, %v; want as without a key: %s, %v", p, name, adm.Verdict, err, fresh.Verdict, freshErr)
			}
		}
	}
}

// TestAdmitRepeatOtherRequest: the same Idempotency-Key with another
// request (artifact, slot, options, policy, order key) is refused with 422
// naming the deployment the key belongs to, whatever the queue; the same
// request from another author or with another message is a repeat.
func TestAdmitRepeatOtherRequest(t *testing.T) {
	base := baton.Deployment{ID: "d-new", App: "hello", Slot: baton.ProductionSlot, Kind: baton.KindDeploy, Policy: baton.PolicyQueue,
		ArtifactDigest: "aaaa", Params: `{"weight":10}`, OrderKey: 7, IdempotencyKey: "k", Author: "ada", Message: "m"}
	first := base
	first.ID, first.State, first.CreatedAt = "d-first", baton.StateFailed, admitNow.Add(-time.Minute)
	for name, tc := range map[string]struct {
		change func(d *baton.Deployment)
		diff   string // "" for a repeat
	}{
		"same request":        {func(d *baton.Deployment) {}, ""},
		"other author":        {func(d *baton.Deployment) { d.Author, d.Message, d.Commit = "bob", "retry", "c2" }, ""},
		"policy spelled out":  {func(d *baton.Deployment) { d.Policy = "" }, ""},
		"other artifact":      {func(d *baton.Deployment) { d.ArtifactDigest = "bbbb" }, "artifact digest"},
		"other slot":          {func(d *baton.Deployment) { d.Slot = "staging" }, "slot"},
		"other options":       {func(d *baton.Deployment) { d.Params = `{"weight":50}` }, "options"},
		"other policy":        {func(d *baton.Deployment) { d.Policy = baton.PolicyFail }, "on_conflict"},
		"other order key":     {func(d *baton.Deployment) { d.OrderKey = 8 }, "order key"},
		"other kind and slot": {func(d *baton.Deployment) { d.Kind, d.Slot = baton.KindConfig, "staging" }, "kind"},
	} {
		for qname, c := range admitCases {
			req := baton.EnqueueRequest{Deployment: base, IdempotencyWindow: time.Hour, MaxQueue: c.maxQueue}
			tc.change(&req.Deployment)
			for _, form := range []string{"deployment", "unchanged"} {
				q := c.q
				if form == "deployment" {
					q.Repeat = &first
				} else {
					q.RepeatUnchanged = &baton.UnchangedAnswer{Revision: "hello--000003", At: first.CreatedAt, Request: first.RequestFingerprint()}
				}
				adm, err := baton.Admit(req, q, admitNow)
				if tc.diff == "" {
					if err != nil || (adm.Verdict != baton.VerdictRepeat && adm.Verdict != baton.VerdictRepeatUnchanged) {
						t.Errorf("%s/%s/%s: %s, %v; want the first answer", name, qname, form, adm.Verdict, err)
					}
					continue
				}
				if baton.ErrorCode(err) != baton.EUNPROCESSABLE {
					t.Errorf("%s/%s/%s: %s, %v; want 422 unprocessable", name, qname, form, adm.Verdict, err)
					continue
				}
				if form == "deployment" && (!strings.Contains(err.Error(), "d-first") || !strings.Contains(err.Error(), tc.diff)) {
					t.Errorf("%s/%s: %v; want it to name d-first and %q", name, qname, err, tc.diff)
				}
			}
		}
	}
	// An Unchanged answer kept before fingerprints (Request "") repeats.
	q := baton.QueueState{RepeatUnchanged: &baton.UnchangedAnswer{Revision: "hello--000003", At: first.CreatedAt}}
	other := base
	other.ArtifactDigest = "cccc"
	if adm, err := baton.Admit(baton.EnqueueRequest{Deployment: other, IdempotencyWindow: time.Hour}, q, admitNow); err != nil || adm.Verdict != baton.VerdictRepeatUnchanged {
		t.Errorf("old unchanged answer: %s, %v; want a repeat", adm.Verdict, err)
	}
}

// newRequestLike is req without its Idempotency-Key.
func newRequestLike(req baton.EnqueueRequest) baton.EnqueueRequest {
	req.Deployment.IdempotencyKey = ""
	return req
}

// TestAdmitUnchanged: a request whose IfUnchanged still holds records
// nothing under any policy; if anything moved, the policy decides.
func TestAdmitUnchanged(t *testing.T) {
	check := &baton.LiveCheck{Revision: "hello--000003", Weight: 100, Seq: 7}
	serving := []baton.RevisionWeight{{Revision: "hello--000002", Weight: 0}, {Revision: "hello--000003", Weight: 100}}
	idle := baton.QueueState{NewestSeq: 7, Serving: serving}
	for name, tc := range map[string]struct {
		q     baton.QueueState
		holds bool
	}{
		"still serves":      {idle, true},
		"running":           {baton.QueueState{NewestSeq: 8, Serving: serving, Running: &runningD}, false},
		"queued":            {baton.QueueState{NewestSeq: 8, Serving: serving, Queued: []baton.Deployment{queued1}}, false},
		"newer deployment":  {baton.QueueState{NewestSeq: 8, Serving: serving}, false},
		"other weight":      {baton.QueueState{NewestSeq: 7, Serving: []baton.RevisionWeight{{Revision: "hello--000003", Weight: 50}}}, false},
		"revision inactive": {baton.QueueState{NewestSeq: 7, Serving: serving[:1]}, false},
	} {
		for _, p := range baton.Policies() {
			req := newRequest(p)
			req.IfUnchanged = check
			adm, err := baton.Admit(req, tc.q, admitNow)
			if tc.holds {
				if err != nil || adm.Verdict != baton.VerdictUnchanged || adm.Revision != check.Revision {
					t.Fatalf("%s/%s: Admit = %s %q, %v; want unchanged %s", name, p, adm.Verdict, adm.Revision, err, check.Revision)
				}
				continue
			}
			if adm.Verdict == baton.VerdictUnchanged {
				t.Fatalf("%s/%s: answered unchanged though something moved", name, p)
			}
		}
	}
}

func TestAdmitUnknownPolicy(t *testing.T) {
	for _, p := range []baton.Policy{"", "later"} {
		if _, err := baton.Admit(newRequest(p), baton.QueueState{}, admitNow); baton.ErrorCode(err) != baton.EINVALID {
			t.Fatalf("policy %q: error %v, want EINVALID", p, err)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]baton.Policy{"": baton.PolicyQueue, "queue": baton.PolicyQueue, "fail": baton.PolicyFail,
		"cancel": baton.PolicyCancel, "supersede": baton.PolicySupersede, "newer-only": baton.PolicyNewerOnly} {
		if got, err := baton.ParsePolicy(in); got != want || err != nil {
			t.Fatalf("ParsePolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := baton.ParsePolicy("Queue")
	if baton.ErrorCode(err) != baton.EINVALID || !strings.Contains(err.Error(), "queue, fail, cancel, supersede, newer-only") {
		t.Fatalf("ParsePolicy(Queue) error = %v, want EINVALID listing the policies", err)
	}
	if got := baton.PolicyChoices(); got != "queue | fail | cancel | supersede | newer-only" {
		t.Fatalf("PolicyChoices() = %q", got)
	}
}

// TestInterruptedOutcome: a deployment whose controller stopped succeeded
// if its revision serves — routing recorded, or past the switch — and
// failed otherwise.
func TestInterruptedOutcome(t *testing.T) {
	phases := []baton.Phase{baton.PhaseNone, baton.PhaseExtracting, baton.PhaseBuilding, baton.PhaseReleasing,
		baton.PhaseWaitingForResource, baton.PhaseStarting, baton.PhaseHealthChecking, baton.PhaseWarming,
		baton.PhaseSwitching, baton.PhaseDraining, baton.PhaseAwaitingCompletion}
	for _, p := range phases {
		if got := baton.InterruptedOutcome(p, true); got != baton.StateSucceeded {
			t.Errorf("%q with routing recorded: %s, want succeeded", p, got)
		}
		want := baton.StateFailed
		if p == baton.PhaseDraining {
			want = baton.StateSucceeded
		}
		if got := baton.InterruptedOutcome(p, false); got != want {
			t.Errorf("%q without routing recorded: %s, want %s", p, got, want)
		}
	}
}

// TestAdmitNewerOnly: policy newer-only refuses a key lower than the
// slot's live, running or queued deploy (naming it), accepts an equal key
// (a retried run), supersedes only keyed deploys of its own slot, and
// refuses requests it cannot order.
func TestAdmitNewerOnly(t *testing.T) {
	live := baton.Deployment{ID: "d-live", App: "hello", Slot: baton.ProductionSlot, Kind: baton.KindDeploy, OrderKey: 12,
		State: baton.StateSucceeded, Commit: "0123456789abcdef"}
	unkeyed := baton.Deployment{ID: "d-nokey", App: "hello", Slot: baton.ProductionSlot, Kind: baton.KindDeploy, State: baton.StateQueued}
	staging := baton.Deployment{ID: "d-stg", App: "hello", Slot: "staging", Kind: baton.KindDeploy, OrderKey: 50, State: baton.StateQueued}
	for _, tc := range []struct {
		name    string
		key     int64
		kind    baton.Kind
		q       baton.QueueState
		refused string
		names   string // the refusal names this deployment
		replace []string
	}{
		{name: "older than live", key: 11, q: baton.QueueState{Live: &live}, refused: baton.ECONFLICT, names: "d-live"},
		{name: "older than running", key: 3, q: baton.QueueState{Running: &runningD}, refused: baton.ECONFLICT, names: "d-r"},
		{name: "older than queued", key: 5, q: baton.QueueState{Queued: []baton.Deployment{queued1, queued2}}, refused: baton.ECONFLICT, names: "d-q2"},
		{name: "equal to live", key: 12, q: baton.QueueState{Live: &live}},
		{name: "newer than live", key: 13, q: baton.QueueState{Live: &live, Queued: []baton.Deployment{queued1}}, replace: []string{"d-q1"}},
		{name: "unkeyed and other slots keep their place", key: 7, q: baton.QueueState{Queued: []baton.Deployment{unkeyed, staging, queued2}}, replace: []string{"d-q2"}},
		{name: "no order key", key: 0, refused: baton.EINVALID},
		{name: "not a deploy", key: 20, kind: baton.KindSwap, refused: baton.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(baton.PolicyNewerOnly)
			req.Deployment.OrderKey, req.Deployment.Kind = tc.key, tc.kind
			adm, err := baton.Admit(req, tc.q, admitNow)
			if tc.refused != "" {
				if baton.ErrorCode(err) != tc.refused || !strings.Contains(baton.ErrorMessage(err), tc.names) {
					t.Fatalf("Admit = %+v, %v; want %s naming %q", adm, err, tc.refused, tc.names)
				}
				return
			}
			if err != nil {
				t.Fatalf("Admit refused: %v", err)
			}
			if !reflect.DeepEqual(adm.Replace, tc.replace) {
				t.Fatalf("replaced %v, want %v", adm.Replace, tc.replace)
			}
		})
	}
}
