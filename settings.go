package baton

import (
	"regexp"
	"strings"
	"sync"
)

// Setting is an environment variable of a slot. A sticky setting stays with
// the slot on swap; the others travel with the revision. A secret's value
// is never shown in full.
type Setting struct {
	App    string `json:"app"`
	Slot   string `json:"slot"`
	Key    string `json:"key"`
	Value  string `json:"value"`
	Sticky bool   `json:"sticky"`
	Secret bool   `json:"secret"`
}

// settingKey is compiled on first use, as dnsLabel is.
var settingKey = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
})

// reservedKeys are set by baton itself and cannot be overridden.
var reservedKeys = map[string]bool{"PORT": true, "BATON_APP": true, "BATON_SLOT": true, "BATON_REVISION": true, "PATH": true, "HOME": true}

// ValidateSetting checks a setting's key and value.
func ValidateSetting(s Setting) error {
	if !settingKey().MatchString(s.Key) {
		return Errorf(EINVALID, "setting name %q is not an environment variable name: use letters, digits and '_', not starting with a digit", s.Key)
	}
	if flag, ok := appOptionKeys[strings.ToLower(s.Key)]; ok {
		return Errorf(EINVALID, "%s is an option of baton's, not an environment variable of the app: set it with `baton apps set %s %s POLICY`", s.Key, orApp(s.App), flag)
	}
	if reservedKeys[s.Key] {
		return Errorf(EINVALID, "setting %s is set by baton itself and cannot be changed", s.Key)
	}
	if strings.ContainsRune(s.Value, 0) || len(s.Value) > 32<<10 {
		return Errorf(EINVALID, "setting %s: value must be under 32 KiB without NUL bytes", s.Key)
	}
	return nil
}

func orApp(app string) string {
	if app == "" {
		return "APP"
	}
	return app
}

// Masked returns the setting with a secret value hidden.
func (s Setting) Masked() Setting {
	if s.Secret {
		s.Value = SecretMask
	}
	return s
}
