package baton_test

import (
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

func TestCheckActivate(t *testing.T) {
	live := []baton.RevisionWeight{{Revision: "a--000001", Weight: 100}}
	for _, tc := range []struct {
		name, mode, slot string
		active           []baton.RevisionWeight
		want             string // part of the refusal; "" when allowed
	}{
		{"single, empty slot", baton.RevisionsSingle, "production", nil, ""},
		{"multiple", baton.RevisionsMultiple, "production", live, ""},
		{"single, one active", baton.RevisionsSingle, "production", live, "`baton rollback a --to a--000002`"},
		{"single, staging", baton.RevisionsSingle, "staging", live, "`baton rollback a --to a--000002 --slot staging`"},
		{"mode unset means single", "", "production", live, "--revision-mode multiple"},
	} {
		err := baton.CheckActivate("a", tc.slot, tc.mode, "a--000002", tc.active)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want a conflict saying %s", tc.name, err, tc.want)
		}
	}
}

func TestCheckRevisionMode(t *testing.T) {
	two := []baton.RevisionWeight{{Revision: "a--000001", Weight: 30}, {Revision: "a--000002", Weight: 70}}
	one := []baton.RevisionWeight{{Revision: "a--000003", Weight: 100}}
	for _, tc := range []struct {
		name, mode string
		active     map[string][]baton.RevisionWeight
		want       string
	}{
		{"to multiple", baton.RevisionsMultiple, map[string][]baton.RevisionWeight{"production": two}, ""},
		{"to single, one each", baton.RevisionsSingle, map[string][]baton.RevisionWeight{"production": one, "staging": one}, ""},
		{"to single, two active", baton.RevisionsSingle, map[string][]baton.RevisionWeight{"production": two}, "`baton stabilize a --revision a--000002`"},
		{"to single, two in staging", baton.RevisionsSingle, map[string][]baton.RevisionWeight{"production": one, "staging": two}, "`baton stabilize a --slot staging --revision a--000002`"},
	} {
		err := baton.CheckRevisionMode("a", tc.mode, tc.active)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want a conflict saying %s", tc.name, err, tc.want)
		}
	}
}
