package proxy

import (
	"net/http"
	"strings"
	"testing"
)

func TestWeightsSplitTraffic(t *testing.T) {
	old, cur := startUpstream(t, "old"), startUpstream(t, "new")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{{Host: "w.localhost", App: "w", Slot: "production", Backends: []Backend{
		{Revision: "w--000001", Weight: 80, Addrs: []string{addrOf(old)}},
		{Revision: "w--000002", Weight: 20, Addrs: []string{addrOf(cur)}},
	}}})

	const n = 4000
	counts := map[string]int{}
	for range n {
		w := serve(t, p, http.MethodGet, "w.localhost")
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		counts[w.Body.String()]++
	}
	// ±4 % of all requests; the standard deviation is 0.63 %, so this never
	// fails by chance.
	for name, want := range map[string]int{"old": n * 80 / 100, "new": n * 20 / 100} {
		if got := counts[name]; got < want-n*4/100 || got > want+n*4/100 {
			t.Errorf("%s got %d of %d requests, want %d ± %d", name, got, n, want, n*4/100)
		}
	}
}

func TestRoundRobinAcrossInstances(t *testing.T) {
	ups := []string{}
	names := []string{"i1", "i2", "i3"}
	for _, name := range names {
		ups = append(ups, addrOf(startUpstream(t, name)))
	}
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("rr.localhost", "rr", "rr--000001", ups...)})

	counts := map[string]int{}
	var order []string
	for range 30 {
		body := serve(t, p, http.MethodGet, "rr.localhost").Body.String()
		counts[body]++
		order = append(order, body)
	}
	for _, name := range names {
		if counts[name] != 10 {
			t.Errorf("%s got %d of 30 requests, want 10 (order %v)", name, counts[name], order)
		}
	}
	for i := 1; i < len(order); i++ {
		if order[i] == order[i-1] {
			t.Fatalf("instance %s served twice in a row: %v", order[i], order)
		}
	}
}

func TestRevisionHeaderPins(t *testing.T) {
	live, canary := startUpstream(t, "live"), startUpstream(t, "canary")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{{Host: "pin.localhost", App: "pin", Slot: "production", Backends: []Backend{
		{Revision: "pin--000001", Weight: 100, Addrs: []string{addrOf(live)}},
		{Revision: "pin--000002", Weight: 0, Addrs: []string{addrOf(canary)}},
	}}})

	for range 10 {
		if got := serve(t, p, http.MethodGet, "pin.localhost", "Baton-Revision", "pin--000002").Body.String(); got != "canary" {
			t.Fatalf("pinned to pin--000002, served by %q", got)
		}
	}
	if got := serve(t, p, http.MethodGet, "pin.localhost").Body.String(); got != "live" {
		t.Fatalf("unpinned served by %q", got)
	}

	w := serve(t, p, http.MethodGet, "pin.localhost", "Baton-Revision", "pin--000009")
	pb := decodeProblem(t, w, http.StatusNotFound)
	for _, want := range []string{`"pin--000009"`, "pin--000001, pin--000002", "app pin"} {
		if !strings.Contains(pb.Detail, want) {
			t.Errorf("detail %q does not mention %s", pb.Detail, want)
		}
	}
	if pb.Revision != "pin--000009" {
		t.Errorf("revision member = %q", pb.Revision)
	}
}
