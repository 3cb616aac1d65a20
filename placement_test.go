package baton

import (
	"maps"
	"testing"
)

func TestPlace(t *testing.T) {
	three := []HostLoad{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	for _, tc := range []struct {
		name      string
		n, max    int
		hosts     []HostLoad
		cur, want map[string]int
		anchor    string
		wantErr   string
	}{
		{name: "spread over three", n: 3, hosts: three, want: map[string]int{"a": 1, "b": 1, "c": 1}},
		{name: "four: the extra by id", n: 4, hosts: three, want: map[string]int{"a": 2, "b": 1, "c": 1}},
		{name: "one on the least loaded", n: 1, hosts: []HostLoad{{ID: "a", Instances: 5}, {ID: "b", Instances: 2}, {ID: "c", Instances: 9}},
			want: map[string]int{"b": 1}},
		{name: "stable: the extra stays", n: 4, hosts: three, cur: map[string]int{"c": 2, "a": 1, "b": 1},
			want: map[string]int{"a": 1, "b": 1, "c": 2}},
		{name: "stable when scaling down", n: 1, hosts: three, cur: map[string]int{"a": 1, "b": 1, "c": 1},
			want: map[string]int{"a": 1}},
		{name: "spread beats stable", n: 3, hosts: three, cur: map[string]int{"b": 3},
			want: map[string]int{"a": 1, "b": 1, "c": 1}},
		{name: "load besides the revision counts", n: 2, hosts: []HostLoad{{ID: "a", Instances: 3}, {ID: "b", Instances: 1}, {ID: "c", Instances: 2}},
			cur: map[string]int{"a": 1, "b": 0, "c": 1}, want: map[string]int{"a": 1, "c": 1}},
		{name: "lost host's share moves", n: 3, hosts: three[:2], cur: map[string]int{"a": 1, "b": 1, "c": 1},
			want: map[string]int{"a": 2, "b": 1}},
		{name: "the anchor runs one", n: 1, hosts: three, cur: map[string]int{"a": 1}, anchor: "c",
			want: map[string]int{"c": 1}},
		{name: "the anchor gets the extra", n: 4, hosts: three, anchor: "b", want: map[string]int{"a": 1, "b": 2, "c": 1}},
		{name: "an anchor that is not live is ignored", n: 2, hosts: three, anchor: "z", want: map[string]int{"a": 1, "b": 1}},
		{name: "cap holds", n: 6, max: 2, hosts: three, want: map[string]int{"a": 2, "b": 2, "c": 2}},
		{name: "cap too low", n: 7, max: 2, hosts: three, wantErr: ECONFLICT},
		{name: "no hosts", n: 1, hosts: nil, wantErr: ECONFLICT},
		{name: "zero instances", n: 0, hosts: three, wantErr: EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Place(tc.n, tc.max, tc.hosts, tc.cur, tc.anchor)
			if tc.wantErr != "" {
				if ErrorCode(err) != tc.wantErr {
					t.Fatalf("Place = %v, %v; want error %s", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !maps.Equal(got, tc.want) {
				t.Fatalf("Place = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestScaleValidate(t *testing.T) {
	for _, s := range []Scale{{Instances: -1}, {Instances: MaxScaleInstances + 1}, {Instances: 2, MaxPerHost: -1}} {
		if ErrorCode(s.Validate()) != EINVALID {
			t.Errorf("%+v: want EINVALID", s)
		}
	}
	if err := (Scale{Instances: 3, MaxPerHost: 1}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestValidatePlacements(t *testing.T) {
	p := func(host string, n int, st PlacementState) Placement {
		return Placement{App: "web", Slot: "production", Revision: "web--000001", Host: host, Instances: n, State: st}
	}
	ok := p("h1", 2, PlacementStarting)
	for _, tc := range []struct {
		name string
		ps   []Placement
		ok   bool
	}{
		{name: "none", ok: true},
		{name: "two hosts", ps: []Placement{ok, p("h2", 1, PlacementHealthy)}, ok: true},
		{name: "other app", ps: []Placement{ok, {App: "api", Slot: "production", Revision: "web--000001", Host: "h2", Instances: 1, State: PlacementStarting}}},
		{name: "other slot", ps: []Placement{{App: "web", Slot: "staging", Revision: "web--000001", Host: "h2", Instances: 1, State: PlacementStarting}}},
		{name: "other revision", ps: []Placement{{App: "web", Slot: "production", Revision: "web--000002", Host: "h2", Instances: 1, State: PlacementStarting}}},
		{name: "no host", ps: []Placement{p("", 1, PlacementStarting)}},
		{name: "host twice", ps: []Placement{ok, p("h1", 1, PlacementStarting)}},
		{name: "no instances", ps: []Placement{p("h1", 0, PlacementStarting)}},
		{name: "no state", ps: []Placement{p("h1", 1, "")}},
	} {
		err := ValidatePlacements("web", "production", "web--000001", tc.ps)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && ErrorCode(err) != EINVALID {
			t.Errorf("%s: %v, want EINVALID", tc.name, err)
		}
	}
}
