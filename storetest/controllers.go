package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

func testControllers(t *testing.T, s baton.Store) {
	ctx := context.Background()
	if err := s.RegisterController(ctx, baton.ControllerInfo{ID: "c1", Addr: "10.0.0.1:7070", Advertise: "10.0.0.1", Peer: "10.0.0.1:7071", SendsPeerKey: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterController(ctx, baton.ControllerInfo{ID: "c2", Addr: "10.0.0.2:7070"}); err != nil {
		t.Fatal(err)
	}
	if err := s.HeartbeatController(ctx, "c1", baton.Heartbeat{Instances: 3, Draining: true}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.HeartbeatController(ctx, "nope", baton.Heartbeat{}), baton.ENOTFOUND)
	cs := must(s.Controllers(ctx)).on(t)
	if len(cs) != 2 || cs[0].ID != "c1" || cs[1].Addr != "10.0.0.2:7070" || cs[0].LastSeen.IsZero() || cs[0].Silence < 0 {
		t.Fatalf("controllers = %+v", cs)
	}
	// What a host registers and reports with its heartbeat is kept.
	if c := cs[0]; c.Advertise != "10.0.0.1" || c.Peer != "10.0.0.1:7071" || c.Instances != 3 || !c.Draining || !c.SendsPeerKey {
		t.Fatalf("host c1 = %+v", c)
	}
	if c := cs[1]; c.Advertise != "" || c.Peer != "" || c.Instances != 0 || c.Draining || c.SendsPeerKey {
		t.Fatalf("host c2 = %+v", c)
	}
	if err := s.HeartbeatController(ctx, "c1", baton.Heartbeat{Instances: 1}); err != nil {
		t.Fatal(err)
	}
	if c := must(s.Controllers(ctx)).on(t)[0]; c.Instances != 1 || c.Draining || c.Advertise != "10.0.0.1" {
		t.Fatalf("host c1 after a second heartbeat = %+v", c)
	}
	// Registering again (a restart) replaces the addresses and resets the report.
	if err := s.RegisterController(ctx, baton.ControllerInfo{ID: "c1", Addr: "10.0.0.1:7070", Advertise: "10.0.0.9", Peer: "10.0.0.9:7071"}); err != nil {
		t.Fatal(err)
	}
	if c := must(s.Controllers(ctx)).on(t)[0]; c.Advertise != "10.0.0.9" || c.Peer != "10.0.0.9:7071" || c.Instances != 0 || c.SendsPeerKey {
		t.Fatalf("host c1 after registering again = %+v", c)
	}
	if err := s.DeregisterController(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if cs := must(s.Controllers(ctx)).on(t); len(cs) != 1 {
		t.Fatalf("after deregister: %+v", cs)
	}
	// Placement is a compare-and-swap.
	must(s.CreateApp(ctx, "placed")).on(t)
	if err := s.AssignApp(ctx, "placed", "", "c1"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.AssignApp(ctx, "placed", "", "c2"), baton.ECONFLICT)
	if err := s.AssignApp(ctx, "placed", "c1", "c2"); err != nil {
		t.Fatal(err)
	}
	if a := must(s.App(ctx, "placed")).on(t); a.Controller != "c2" {
		t.Fatalf("controller = %q", a.Controller)
	}
	wantCode(t, s.AssignApp(ctx, "nope", "", "c1"), baton.ENOTFOUND)
}

func testFailExpired(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "alive")).on(t)
	must(s.CreateApp(ctx, "dead")).on(t)
	alive := enqueue(t, s, newDeployment("alive", baton.PolicyQueue)).Deployment
	start(t, s, alive)
	dead := enqueue(t, s, newDeployment("dead", baton.PolicyQueue)).Deployment
	l := must(s.AcquireLease(ctx, baton.AppLeaseKey("dead"), dead.ID, time.Microsecond)).on(t)
	must(s.StartDeployment(ctx, baton.Fence{Key: l.Key, Token: l.Token}, dead.ID)).on(t)
	failed := must(s.FailExpired(ctx)).on(t)
	if len(failed) != 1 || failed[0].ID != dead.ID {
		t.Fatalf("FailExpired = %+v, want only %s", failed, dead.ID)
	}
	if d := must(s.Deployment(ctx, dead.ID)).on(t); d.State != baton.StateFailed {
		t.Fatalf("dead deployment: %s", d.State)
	}
	if d := must(s.Deployment(ctx, alive.ID)).on(t); d.State != baton.StateRunning {
		t.Fatalf("a deployment with a live lease was failed: %s", d.State)
	}
	if _, err := s.Lease(ctx, baton.AppLeaseKey("dead")); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("expired lease kept: %v", err)
	}
}

// testRoutingGenerations: SetRouting, AssignApp and DeleteSlot advance an
// app's routing generation (a stale fence does not); hosts' acks are kept per
// host and app, replaced by the next, and go with their host.
func testRoutingGenerations(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "gen")).on(t)
	st := must(s.RoutingAcks(ctx, "gen")).on(t)
	if st.Generation != 0 || len(st.Acks) != 0 || st.Acks == nil {
		t.Fatalf("new app: %+v", st)
	}
	d := enqueue(t, s, newDeployment("gen", baton.PolicyQueue)).Deployment
	f := start(t, s, d)
	r := must(s.CreateRevision(ctx, f, baton.Revision{App: "gen", Slot: baton.ProductionSlot, Deployment: d.ID})).on(t)
	route := map[string][]baton.RevisionWeight{baton.ProductionSlot: {{Revision: r.Name, Weight: 100}}}
	must(0, s.SetRouting(ctx, f, route)).on(t)
	if a := must(s.App(ctx, "gen")).on(t); a.RoutingGeneration != 1 {
		t.Fatalf("generation after a switch = %d, want 1", a.RoutingGeneration)
	}
	stale := f
	stale.Token--
	if err := s.SetRouting(ctx, stale, route); err == nil {
		t.Fatal("stale SetRouting accepted")
	}
	must(0, s.AssignApp(ctx, "gen", "", "c1")).on(t)
	st = must(s.RoutingAcks(ctx, "gen")).on(t)
	if st.Generation != 2 || st.Age < 0 || st.Age > time.Hour {
		t.Fatalf("after a stale switch and a move: %+v, want generation 2", st)
	}
	if a := must(s.Apps(ctx)).on(t); len(a) == 0 || a[len(a)-1].RoutingGeneration != 2 {
		t.Fatalf("Apps: %+v", a)
	}
	// Deleting a slot stops its revisions being routed: a routing change.
	must(s.CreateSlot(ctx, "gen", "staging")).on(t)
	must(0, s.DeleteSlot(ctx, "gen", "staging")).on(t)
	if a := must(s.App(ctx, "gen")).on(t); a.RoutingGeneration != 3 {
		t.Fatalf("generation after deleting a slot = %d, want 3", a.RoutingGeneration)
	}
	st = must(s.RoutingAcks(ctx, "gen")).on(t)
	if st.Generation != 3 {
		t.Fatalf("acks after deleting a slot: %+v, want generation 3", st)
	}

	must(0, s.RegisterController(ctx, baton.ControllerInfo{ID: "c1", Addr: "a:1"})).on(t)
	must(0, s.RegisterController(ctx, baton.ControllerInfo{ID: "c2", Addr: "a:2"})).on(t)
	must(0, s.AckRouting(ctx, "c1", map[string]int64{"gen": 2})).on(t)
	must(0, s.AckRouting(ctx, "c2", map[string]int64{"gen": 1})).on(t)
	must(0, s.AckRouting(ctx, "c2", nil)).on(t)
	st = must(s.RoutingAcks(ctx, "gen")).on(t)
	if len(st.Acks) != 2 || st.Acks[0].Controller != "c1" || st.Acks[0].Generation != 2 || st.Acks[1].Generation != 1 || st.Acks[0].AppliedAt.IsZero() {
		t.Fatalf("acks = %+v", st.Acks)
	}
	must(0, s.AckRouting(ctx, "c2", map[string]int64{"gen": 2})).on(t)
	if st = must(s.RoutingAcks(ctx, "gen")).on(t); st.Acks[1].Generation != 2 {
		t.Fatalf("acks after c2 caught up = %+v", st.Acks)
	}
	// Every app's at once: the same as each app's, by name; an app no
	// host acked has none ("a-gen" sorts first, "gen-b" after "gen").
	must(s.CreateApp(ctx, "a-gen")).on(t)
	must(s.CreateApp(ctx, "gen-b")).on(t)
	must(0, s.AckRouting(ctx, "c1", map[string]int64{"gen": 2, "gen-b": 0})).on(t)
	all := must(s.AllRoutingAcks(ctx)).on(t)
	var names []string
	for _, a := range all {
		names = append(names, a.App)
		one := must(s.RoutingAcks(ctx, a.App)).on(t)
		if a.Generation != one.Generation || len(a.Acks) != len(one.Acks) || a.Age < 0 || a.Age > time.Hour {
			t.Fatalf("AllRoutingAcks has %+v for %s, RoutingAcks %+v", a, a.App, one)
		}
		for i := range a.Acks {
			if a.Acks[i].Controller != one.Acks[i].Controller || a.Acks[i].Generation != one.Acks[i].Generation || !a.Acks[i].AppliedAt.Equal(one.Acks[i].AppliedAt) {
				t.Fatalf("AllRoutingAcks' acks of %s: %+v, RoutingAcks': %+v", a.App, a.Acks, one.Acks)
			}
		}
	}
	if want := []string{"a-gen", "gen", "gen-b"}; !slices.Equal(names, want) {
		t.Fatalf("AllRoutingAcks lists %v, want %v", names, want)
	}
	if len(all[0].Acks) != 0 || all[0].Acks == nil || len(all[1].Acks) != 2 || len(all[2].Acks) != 1 {
		t.Fatalf("AllRoutingAcks: %+v", all)
	}
	must(0, s.DeleteApp(ctx, "a-gen")).on(t)
	must(0, s.DeleteApp(ctx, "gen-b")).on(t)
	must(0, s.DeregisterController(ctx, "c2")).on(t)
	if st = must(s.RoutingAcks(ctx, "gen")).on(t); len(st.Acks) != 1 || st.Acks[0].Controller != "c1" {
		t.Fatalf("acks after c2 left = %+v", st.Acks)
	}
	_, err := s.RoutingAcks(ctx, "nope")
	wantCode(t, err, baton.ENOTFOUND)
}
