package baton_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

// TestHookJSONSignedFromSecret: "signed" follows the secret, which is
// never written; a hook decoded from JSON (a client's) keeps what it read.
func TestHookJSONSignedFromSecret(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    baton.Hook
		want bool
	}{
		{"secret, Signed unset", baton.Hook{ID: "h-1", Secret: "s3cret"}, true},
		{"no secret", baton.Hook{ID: "h-2"}, false},
	} {
		b, err := json.Marshal(tc.h)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Signed bool }
		if err := json.Unmarshal(b, &got); err != nil || got.Signed != tc.want || strings.Contains(string(b), "s3cret") {
			t.Errorf("%s: %s, want signed %t and no secret", tc.name, b, tc.want)
		}
	}
	var client baton.Hook
	if err := json.Unmarshal([]byte(`{"id":"h-1","signed":true}`), &client); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(client); !strings.Contains(string(b), `"signed":true`) {
		t.Errorf("a client's signed hook written again: %s", b)
	}
}

// TestHookWants: a hook's app and event patterns; "KIND.*" asks for any
// type of a kind (how the conflict watcher asks whether to look).
func TestHookWants(t *testing.T) {
	all := baton.Hook{}
	web := baton.Hook{App: "web", Events: []string{"deployment.failed", "swap.*"}}
	frozen := baton.Hook{Events: []string{"conflict.app_frozen"}}
	star := baton.Hook{App: "web", Events: []string{"*"}}
	for _, tc := range []struct {
		name      string
		h         baton.Hook
		typ, app  string
		want      bool
		wantsType bool
	}{
		{"every event", all, "deployment.failed", "api", true, true},
		{"exact type", web, "deployment.failed", "web", true, true},
		{"other state", web, "deployment.succeeded", "web", false, false},
		{"kind pattern", web, "swap.succeeded", "web", true, true},
		{"other app", web, "deployment.failed", "api", false, true},
		{"any type of a kind asked", frozen, "conflict.*", "api", true, true},
		{"any type of another kind", frozen, "deployment.*", "api", false, false},
		{"pattern asked of a kind pattern", web, "swap.*", "web", true, true},
		{"star", star, "conflict.*", "web", true, true},
		{"star, other app", star, "conflict.*", "api", false, true},
	} {
		if got := tc.h.Wants(tc.typ, tc.app); got != tc.want {
			t.Errorf("%s: Wants(%q, %q) = %t", tc.name, tc.typ, tc.app, got)
		}
		if got := tc.h.WantsType(tc.typ); got != tc.wantsType {
			t.Errorf("%s: WantsType(%q) = %t", tc.name, tc.typ, got)
		}
	}
}
