package coordinator

import (
	"testing"

	"github.com/batonhq/baton"
)

func TestStandIn(t *testing.T) {
	// Revisions named "same…" are equal to the one a deploy would create.
	rev := func(name string, weight int) baton.Revision {
		return baton.Revision{Name: name, Active: true, Weight: weight}
	}
	same := func(r baton.Revision) bool { return r.Name[:4] == "same" }
	single, multiple := baton.RevisionsSingle, baton.RevisionsMultiple
	tests := []struct {
		name   string
		mode   string
		active []baton.Revision
		weight int
		want   string // "" when the deploy would change something
	}{
		{"nothing serves", single, nil, 0, ""},
		{"single: the same at 100 %", single, []baton.Revision{rev("same1", 100)}, 0, "same1"},
		{"single: another at 100 %", single, []baton.Revision{rev("other", 100)}, 0, ""},
		{"single: the deploy would stop another active one", single, []baton.Revision{rev("same1", 100), rev("other", 0)}, 0, ""},
		{"single: weights not summing to 100 would be fixed", single, []baton.Revision{rev("same1", 90)}, 0, ""},
		{"single: the weight asked is ignored", single, []baton.Revision{rev("same1", 100)}, 30, "same1"},
		{"multiple: joining at 0 % beside the same", multiple, []baton.Revision{rev("other", 80), rev("same1", 20)}, 0, "same1"},
		{"multiple: joining at 0 % beside a same one without traffic", multiple, []baton.Revision{rev("other", 100), rev("same1", 0)}, 0, "same1"},
		{"multiple: joining at 0 %, nothing the same", multiple, []baton.Revision{rev("other", 100)}, 0, ""},
		{"multiple: nothing has traffic, it would take 100 %", multiple, []baton.Revision{rev("same1", 0)}, 0, ""},
		{"multiple: 20 % would take traffic from another", multiple, []baton.Revision{rev("other", 80), rev("same1", 20)}, 20, ""},
		{"multiple: 20 % when the same has it all", multiple, []baton.Revision{rev("same1", 100), rev("other", 0)}, 20, "same1"},
		{"multiple: 20 % split between two same ones", multiple, []baton.Revision{rev("same1", 60), rev("same2", 40)}, 20, "same1"},
		{"multiple: 100 % would stop another one", multiple, []baton.Revision{rev("same1", 100), rev("other", 0)}, 100, ""},
		{"multiple: 100 % when the same is all there is", multiple, []baton.Revision{rev("same1", 100)}, 100, "same1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := standIn(tc.mode, tc.active, tc.weight, same)
			got := ""
			if ok {
				got = r.Name
			}
			if got != tc.want {
				t.Fatalf("standIn = %q, want %q", got, tc.want)
			}
		})
	}
}
