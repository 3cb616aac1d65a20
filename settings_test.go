package baton_test

import (
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

func TestValidateSetting(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		refused    string // part of the message; "" when valid
	}{
		{"DB_URL", "postgres://x", ""},
		{"PEM", "a\nb", ""},
		{"1X", "", "not an environment variable name"},
		{"PORT", "1", "set by baton itself"},
		// baton's own options are not settings: they would be the app's
		// environment and make a revision.
		{"kudu_on_conflict", "fail", "baton apps set hello --kudu-on-conflict POLICY"},
		{"GIT_ON_CONFLICT", "fail", "baton apps set hello --git-on-conflict POLICY"},
		{"A", "x\x00y", "without NUL"},
	} {
		err := baton.ValidateSetting(baton.Setting{App: "hello", Key: tc.key, Value: tc.value})
		if tc.refused == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.key, err)
			}
			continue
		}
		if baton.ErrorCode(err) != baton.EINVALID || !strings.Contains(err.Error(), tc.refused) {
			t.Errorf("%s: %v; want EINVALID saying %q", tc.key, err, tc.refused)
		}
	}
	o := baton.AppOptions{KuduOnConflict: "sometimes"}
	if err := o.Check(); baton.ErrorCode(err) != baton.EINVALID || !strings.Contains(err.Error(), "kudu_on_conflict") {
		t.Errorf("AppOptions.Check: %v", err)
	}
	if err := (baton.AppOptions{GitOnConflict: baton.PolicyFail}).Check(); err != nil {
		t.Errorf("AppOptions.Check: %v", err)
	}
}
