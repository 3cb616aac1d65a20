package api

import (
	"testing"
	"time"

	"github.com/batonhq/baton"
)

func TestDiffStatus(t *testing.T) {
	dep := func(id string, s baton.State, p baton.Phase) baton.Deployment {
		return baton.Deployment{ID: id, State: s, Phase: p}
	}
	running := func(d baton.Deployment) baton.AppStatus { return baton.AppStatus{Running: &d} }
	slot := func(weights ...int) baton.AppStatus {
		var rs []baton.RevisionStatus
		for i, w := range weights {
			rs = append(rs, baton.RevisionStatus{Name: string(rune('a' + i)), Weight: w, Instances: []baton.InstanceStatus{{Addr: "x", Healthy: true}}})
		}
		return baton.AppStatus{Slots: []baton.SlotStatus{{Name: "production", Revisions: rs}}}
	}
	unhealthy := slot(100)
	unhealthy.Slots[0].Revisions[0].Instances[0].Healthy = false
	frozen := baton.AppStatus{Frozen: &baton.Freeze{Reason: "r"}}
	scaled := func(n, perHost int) baton.AppStatus {
		st := slot(100)
		st.Slots[0].Scale = &baton.Scale{Instances: n, MaxPerHost: perHost}
		return st
	}
	placedAs := func(host string, n int, state baton.PlacementState) baton.AppStatus {
		st := slot(100)
		st.Slots[0].Revisions[0].Hosts = []baton.Placement{{Host: host, Instances: n, State: state}}
		return st
	}
	placed := func(host string, n int) baton.AppStatus { return placedAs(host, n, baton.PlacementHealthy) }
	for _, tc := range []struct {
		name      string
		prev, cur baton.AppStatus
		want      []string // type/change
	}{
		{"nothing", slot(100), slot(100), nil},
		{"queued", baton.AppStatus{}, baton.AppStatus{Queue: []baton.Deployment{dep("d1", baton.StateQueued, "")}}, []string{"deployment/queued"}},
		{"phase", running(dep("d1", baton.StateRunning, baton.PhaseBuilding)), running(dep("d1", baton.StateRunning, baton.PhaseStarting)), []string{"deployment/phase"}},
		{"finished", running(dep("d1", baton.StateRunning, baton.PhaseStarting)),
			baton.AppStatus{Recent: []baton.Deployment{dep("d1", baton.StateSucceeded, "")}}, []string{"deployment/finished"}},
		{"finished unseen", baton.AppStatus{}, baton.AppStatus{Recent: []baton.Deployment{dep("d2", baton.StateFailed, "")}}, []string{"deployment/finished"}},
		{"running and recent once", baton.AppStatus{}, baton.AppStatus{Running: &baton.Deployment{ID: "d3", State: baton.StateRunning},
			Recent: []baton.Deployment{dep("d3", baton.StateRunning, "")}}, []string{"deployment/queued"}},
		{"old recent falls off", baton.AppStatus{Recent: []baton.Deployment{dep("d0", baton.StateSucceeded, "")}}, baton.AppStatus{}, nil},
		{"weights", slot(80, 20), slot(50, 50), []string{"routing/"}},
		{"health", slot(100), unhealthy, []string{"health/"}},
		{"freeze", baton.AppStatus{}, frozen, []string{"freeze/"}},
		{"conflict", baton.AppStatus{}, baton.AppStatus{Conflicts: []baton.Conflict{{Code: "c"}}}, []string{"conflicts/"}},
		{"scale", slot(100), scaled(3, 0), []string{"placement/"}},
		{"cap", scaled(3, 0), scaled(3, 1), []string{"placement/"}},
		{"hosts", placed("h1", 2), placed("h2", 2), []string{"placement/"}},
		{"share state", placed("h1", 2), placedAs("h1", 2, baton.PlacementDraining), []string{"placement/"}},
		{"same placement", placed("h1", 2), placed("h1", 2), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range diffStatus(tc.prev, tc.cur) {
				got = append(got, e.Type+"/"+e.Change)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("events %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestEventRing: ids grow across apps, a resume inside the ring gets what
// followed, one older than the ring (or from an earlier baton) does not.
func TestEventRing(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h := newEventHub(now)
	start := h.head()
	h.poll("a", baton.AppStatus{}, now)
	if evs, ok := h.since("a", 1); ok || evs != nil {
		t.Fatalf("since(1) = %v %v: an id from before this hub resumes", evs, ok)
	}
	flip := func(i int) baton.AppStatus {
		if i%2 == 0 {
			return baton.AppStatus{Frozen: &baton.Freeze{Reason: "r"}}
		}
		return baton.AppStatus{}
	}
	for i := range eventRingSize + 10 {
		h.poll("a", flip(i), now)
	}
	if evs, ok := h.since("a", start); ok {
		t.Fatalf("since(start) after %d events = %d events, ok; want a snapshot", eventRingSize+10, len(evs))
	}
	head := h.head()
	evs, ok := h.since("a", head-3)
	if !ok || len(evs) != 3 || evs[0].ID != head-2 || evs[2].ID != head {
		t.Fatalf("since(head-3) = %+v %v", evs, ok)
	}
	h.poll("b", baton.AppStatus{}, now)
	h.poll("b", flip(0), now)
	if evs, ok := h.since("b", head); !ok || len(evs) != 1 || evs[0].ID != head+1 || evs[0].App != "b" {
		t.Fatalf("b since head = %+v %v", evs, ok)
	}
	if evs, ok := h.since("a", head); !ok || len(evs) != 0 {
		t.Fatalf("a since head = %+v %v", evs, ok)
	}
}
