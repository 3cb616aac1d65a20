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
