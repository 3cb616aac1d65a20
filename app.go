package baton

import (
	"regexp"
	"sync"
	"time"
)

// App is a named application. Its name is a DNS label so it can be used as a
// host name on the proxy.
type App struct {
	Name string `json:"name"`
	// RevisionMode is RevisionsSingle (default) or RevisionsMultiple.
	RevisionMode string    `json:"revision_mode"`
	CreatedAt    time.Time `json:"created_at"`
	Slots        []Slot    `json:"slots,omitempty"`
	// Frozen is set while new deployments are refused.
	Frozen *Freeze `json:"frozen,omitempty"`
	// Controller is the controller that runs the app ("" until one claims it).
	Controller string `json:"controller,omitempty"`
	// RoutingGeneration advances with each change of the app's routing
	// (see RoutingState).
	RoutingGeneration int64 `json:"routing_generation,omitempty"`
	// Options are baton's own per-app options (baton apps set).
	Options AppOptions `json:"options"`
}

// AppOptions are baton's own options for an app: how baton treats it,
// never part of its environment (settings are). They are set with
// `baton apps set APP --kudu-on-conflict …` and kept on the app.
type AppOptions struct {
	// KuduOnConflict is the conflict policy of a deployment through the
	// Kudu API whose request names none; "" is queue.
	KuduOnConflict Policy `json:"kudu_on_conflict,omitempty"`
	// GitOnConflict is the conflict policy of a git push that sets no
	// -o on-conflict; "" is queue.
	GitOnConflict Policy `json:"git_on_conflict,omitempty"`
	// RegistryOnConflict is the conflict policy of an image pushed to
	// baton's registry (a push cannot say one); "" is queue.
	RegistryOnConflict Policy `json:"registry_on_conflict,omitempty"`
}

// Check validates the options' policies ("" stays: queue).
func (o AppOptions) Check() error {
	for name, p := range map[string]Policy{"kudu_on_conflict": o.KuduOnConflict, "git_on_conflict": o.GitOnConflict, "registry_on_conflict": o.RegistryOnConflict} {
		if p == "" {
			continue
		}
		if _, err := ParsePolicy(string(p)); err != nil {
			return Errorf(EINVALID, "app option %s: %s", name, ErrorMessage(err))
		}
	}
	return nil
}

// appOptionKeys are the settings names people used for app options
// before there were options: refused as settings, naming the option.
var appOptionKeys = map[string]string{"kudu_on_conflict": "--kudu-on-conflict", "git_on_conflict": "--git-on-conflict"}

// Freeze records who stopped an app's deployments, when and why.
type Freeze struct {
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// Revision modes.
const (
	// RevisionsSingle: a successful deployment takes 100 % of its slot and
	// the previous revision is deactivated after draining.
	RevisionsSingle = "single"
	// RevisionsMultiple: several revisions stay active with traffic weights.
	RevisionsMultiple = "multiple"
)

// ParseRevisionMode validates a revision mode; "" means single.
func ParseRevisionMode(s string) (string, error) {
	switch s {
	case "", RevisionsSingle:
		return RevisionsSingle, nil
	case RevisionsMultiple:
		return s, nil
	}
	return "", Errorf(EINVALID, "revision_mode %q is not single or multiple", s)
}

// Slot returns the named slot of the app.
func (a App) Slot(name string) (Slot, bool) {
	for _, s := range a.Slots {
		if s.Name == name {
			return s, true
		}
	}
	return Slot{}, false
}

// Slot is a live environment of an app. "production" always exists.
type Slot struct {
	App  string `json:"app"`
	Name string `json:"name"`
	// LiveRevision is the revision with the most traffic in the slot, "" when none.
	LiveRevision string `json:"live_revision"`
	// AutoSwapTo names the slot this one swaps into after each successful deployment.
	AutoSwapTo string `json:"auto_swap_to,omitempty"`
}

// ProductionSlot is the slot every app has.
const ProductionSlot = "production"

// dnsLabel is compiled on first use: its counted repetition makes a large
// program, and compiling both of this package's patterns at init cost
// every baton process, each CLI command among them, 2 ms.
var dnsLabel = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
})

// ValidateName checks that name is usable as an app or slot name: a
// lowercase DNS label without "--" (which separates app and revision number).
func ValidateName(kind, name string) error {
	if !dnsLabel().MatchString(name) {
		return Errorf(EINVALID, "%s name %q is not a DNS label: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit", kind, name)
	}
	if containsDoubleDash(name) {
		return Errorf(EINVALID, "%s name %q contains \"--\", which baton reserves for revision names (APP--000001)", kind, name)
	}
	return nil
}

func containsDoubleDash(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '-' && s[i+1] == '-' {
			return true
		}
	}
	return false
}
