package baton

import (
	"encoding/json"
	"time"
)

// OpRequest asks for an operation that goes through the app's queue and
// lock like a deployment (traffic, stabilize, revision changes, settings,
// swaps). Params must be the type Kind takes (see OpParams).
type OpRequest struct {
	App, Slot string
	Kind      Kind
	Params    OpParams
	Policy    Policy
	Author    string
	Message   string
}

// OpParams is the arguments of an operation, one type per kind:
//
//	KindDeploy                    DeployParams
//	KindConfig                    SettingsChange
//	KindSwap                      SwapParams
//	KindTraffic                   TrafficParams
//	KindStabilize, KindActivate,
//	KindDeactivate, KindRestart   RevisionParams
//	KindRollback                  RollbackParams
//	KindScale                     ScaleParams
//
// A deployment record keeps them as JSON in Deployment.Params, written by
// EncodeParams and read by DecodeParams; nothing else builds or parses
// that text.
type OpParams interface {
	// takes reports whether operations of kind k take these params.
	takes(k Kind) bool
}

var (
	_ OpParams = DeployParams{}
	_ OpParams = SettingsChange{}
	_ OpParams = SwapParams{}
	_ OpParams = TrafficParams{}
	_ OpParams = RevisionParams{}
	_ OpParams = RollbackParams{}
	_ OpParams = ScaleParams{}
)

// DeployParams is the params of a KindDeploy operation.
type DeployParams struct {
	// Weight asks for this percent of the slot's traffic in multiple
	// revision mode; nil asks for nothing (as 0: the new revision joins
	// without traffic, or takes 100 % when nothing had traffic).
	Weight *int `json:"weight,omitempty"`
	// Image is where a container image came from ("registry/app:v1",
	// "archive", "push app:v1"), for people; the revision records its
	// digest.
	Image string `json:"image,omitempty"`
	// Manifest is a baton.toml given with the deploy (baton deploy
	// --manifest); for an image it wins over the image's own.
	Manifest string `json:"manifest,omitempty"`
}

func (DeployParams) takes(k Kind) bool { return k == KindDeploy || k == "" }

// RequestedWeight is the traffic percent the deploy asked for, 0 for none.
func (p DeployParams) RequestedWeight() int {
	if p.Weight == nil {
		return 0
	}
	return *p.Weight
}

// SettingsChange is the params of a KindConfig operation: settings of the
// slot to set and to remove.
type SettingsChange struct {
	Set   []Setting `json:"set,omitempty"`
	Unset []string  `json:"unset,omitempty"`
}

func (SettingsChange) takes(k Kind) bool { return k == KindConfig }

// SwapParams is the params of a KindSwap operation (and the body of the
// API's swap request).
type SwapParams struct {
	Source  string `json:"source"`
	Target  string `json:"target"`
	Preview bool   `json:"preview"`
	// PreviewTimeout is how long a preview waits for complete before it is
	// cancelled, as a Go duration ("30m"); empty: DefaultPreviewTimeout.
	// Only with Preview.
	PreviewTimeout string `json:"preview_timeout,omitempty"`
}

func (SwapParams) takes(k Kind) bool { return k == KindSwap }

// DefaultPreviewTimeout is how long a swap preview waits for complete.
const DefaultPreviewTimeout = time.Hour

// Check validates a swap request and fills in its defaults: Target
// production, PreviewTimeout written out in full (DefaultPreviewTimeout
// for a preview that gives none).
func (sp *SwapParams) Check() error {
	if sp.Target == "" {
		sp.Target = ProductionSlot
	}
	if sp.Source == sp.Target {
		return Errorf(EINVALID, "source and target are both %q: a swap needs two different slots", sp.Source)
	}
	if sp.PreviewTimeout == "" {
		if sp.Preview {
			sp.PreviewTimeout = DefaultPreviewTimeout.String()
		}
		return nil
	}
	if !sp.Preview {
		return Errorf(EINVALID, "preview_timeout %q is given without preview: only a preview waits", sp.PreviewTimeout)
	}
	d, err := time.ParseDuration(sp.PreviewTimeout)
	if err != nil || d <= 0 {
		return Errorf(EINVALID, "preview_timeout %q is not a positive duration such as 30m or 2h", sp.PreviewTimeout)
	}
	sp.PreviewTimeout = d.String()
	return nil
}

// PreviewLimit is how long the preview waits for complete: PreviewTimeout
// (as Check wrote it), else DefaultPreviewTimeout.
func (sp SwapParams) PreviewLimit() time.Duration {
	if d, err := time.ParseDuration(sp.PreviewTimeout); err == nil && d > 0 {
		return d
	}
	return DefaultPreviewTimeout
}

// TrafficParams is the params of a KindTraffic operation (and the body of
// the API's traffic request): percent by revision name; the name "latest"
// stands for the slot's newest active revision.
type TrafficParams struct {
	Weights map[string]int `json:"weights"`
}

func (TrafficParams) takes(k Kind) bool { return k == KindTraffic }

// ValidateWeights checks what can be checked without looking at the app:
// integers 0..100 summing to exactly 100.
func ValidateWeights(w map[string]int) error {
	if len(w) == 0 {
		return Errorf(EINVALID, "weights are empty: give at least one revision=percent, e.g. hello--000003=100")
	}
	sum := 0
	for rev, n := range w {
		if n < 0 || n > 100 {
			return Errorf(EINVALID, "weight of %s is %d: weights are whole percents from 0 to 100", rev, n)
		}
		sum += n
	}
	if sum != 100 {
		return Errorf(EINVALID, "weights sum to %d: they must sum to exactly 100", sum)
	}
	return nil
}

// RevisionParams is the params of the operations on one revision:
// KindStabilize (empty Revision: the newest healthy one), KindActivate,
// KindDeactivate and KindRestart.
type RevisionParams struct {
	Revision string `json:"revision"`
}

func (RevisionParams) takes(k Kind) bool {
	switch k {
	case KindStabilize, KindActivate, KindDeactivate, KindRestart:
		return true
	}
	return false
}

// RollbackParams is the params of a KindRollback operation (and the body
// of the API's rollback request).
type RollbackParams struct {
	// To is the revision to go back to, by name (APP--NNNNNN) or by the
	// id of the deployment that created it; empty: the revision that
	// served the slot before the current one. The coordinator writes the
	// revision it chose here when it accepts the request.
	To string `json:"to,omitempty"`
	// CurrentSettings runs the revision's code with the slot's settings of
	// now, as a new revision, instead of the settings it was deployed with.
	CurrentSettings bool `json:"current_settings,omitempty"`
}

func (RollbackParams) takes(k Kind) bool { return k == KindRollback }

// ScaleParams is the params of a KindScale operation (and the body of
// the API's scale request): the slot's new Scale. With Rebalance the
// scale stays as it is and the slot's instances are placed again: baton
// queues that itself when a host is lost or drained.
type ScaleParams struct {
	Instances  int  `json:"instances"`
	MaxPerHost int  `json:"max_per_host"`
	Rebalance  bool `json:"rebalance,omitempty"`
	// Reason says why baton rebalanced ("host h2 lost").
	Reason string `json:"reason,omitempty"`
}

func (ScaleParams) takes(k Kind) bool { return k == KindScale }

// EncodeParams is the stored form of an operation's params
// (Deployment.Params): JSON, or "" for a deploy that asks for nothing (nil
// p is that too). p must be the type kind takes (EINTERNAL otherwise).
func EncodeParams(kind Kind, p OpParams) (string, error) {
	if p == nil {
		p = DeployParams{}
	}
	if !p.takes(kind) {
		return "", Errorf(EINTERNAL, "a %s operation does not take %T", kind, p)
	}
	if dp, ok := p.(DeployParams); ok && dp == (DeployParams{}) {
		return "", nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", Errorf(EINTERNAL, "encode the params of a %s operation: %v", kind, err)
	}
	return string(b), nil
}

// DecodeParams reads the stored params of an operation of kind (see
// EncodeParams) as P, the type that kind takes. A deploy's params may be
// empty; any other kind's must be JSON of its type, else the error
// (EINVALID) says what is wrong, and the operation must not run.
func DecodeParams[P OpParams](kind Kind, params string) (P, error) {
	var p P
	if !p.takes(kind) {
		return p, Errorf(EINTERNAL, "a %s operation does not take %T", kind, p)
	}
	if params == "" {
		if _, ok := any(p).(DeployParams); ok {
			return p, nil
		}
		return p, Errorf(EINVALID, "the %s operation has no params", kind)
	}
	if err := json.Unmarshal([]byte(params), &p); err != nil {
		return p, Errorf(EINVALID, "the params of the %s operation are not what it takes: %v", kind, err)
	}
	return p, nil
}

// NamedRevisions returns the revisions an operation's params name: a
// revision operation's revision, a rollback's target, the revisions a
// traffic change weighs. Params that do not decode name none.
func NamedRevisions(kind Kind, params string) []string {
	switch kind {
	case KindStabilize, KindActivate, KindDeactivate, KindRestart:
		if p, err := DecodeParams[RevisionParams](kind, params); err == nil && p.Revision != "" {
			return []string{p.Revision}
		}
	case KindRollback:
		if p, err := DecodeParams[RollbackParams](kind, params); err == nil && p.To != "" {
			return []string{p.To}
		}
	case KindTraffic:
		if p, err := DecodeParams[TrafficParams](kind, params); err == nil {
			names := make([]string, 0, len(p.Weights))
			for name := range p.Weights {
				names = append(names, name)
			}
			return names
		}
	}
	return nil
}
