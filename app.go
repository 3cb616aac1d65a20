package baton

import (
	"regexp"
	"time"
)

// App is a named application. Its name is a DNS label so it can be used as a
// host name on the proxy.
type App struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Slots     []Slot    `json:"slots,omitempty"`
}

// Slot is a live environment of an app. "production" always exists.
type Slot struct {
	App  string `json:"app"`
	Name string `json:"name"`
	// LiveRevision is the revision that serves the slot, "" when none.
	LiveRevision string `json:"live_revision"`
}

// ProductionSlot is the slot every app has.
const ProductionSlot = "production"

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateName checks that name is usable as an app or slot name: a
// lowercase DNS label without "--" (which separates app and revision number).
func ValidateName(kind, name string) error {
	if !dnsLabel.MatchString(name) {
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
