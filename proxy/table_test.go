package proxy

import (
	"net/http"
	"strings"
	"testing"
)

func TestLookupNormalizesHost(t *testing.T) {
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{
		route1("Hello.Localhost:8080", "hello", "hello--000001", "127.0.0.1:1"),
		route1("[::1]", "v6", "v6--000001", "127.0.0.1:2"),
	})
	tab := p.table.Load()
	for _, tc := range []struct {
		host, want string
	}{
		{"hello.localhost", "hello"},
		{"HELLO.LOCALHOST", "hello"},
		{"hello.localhost:80", "hello"},
		{"Hello.LocalHost:8080", "hello"},
		{"hello.localhost.", "hello"},
		{"[::1]:8080", "v6"},
		{"[::1]", "v6"},
		{"other.localhost", ""},
		{"", ""},
		{strings.Repeat("A", 300), ""},
	} {
		got := ""
		if rt := tab.lookup(tc.host); rt != nil {
			got = rt.app
		}
		if got != tc.want {
			t.Errorf("lookup(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestRoutesByHost(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{
		route1("a.localhost", "a", "a--000001", addrOf(a)),
		route1("b.localhost", "b", "b--000001", addrOf(b)),
	})
	for _, tc := range []struct{ host, want string }{
		{"a.localhost", "a"},
		{"a.localhost:8080", "a"},
		{"A.LocalHost", "a"},
		{"B.LOCALHOST:80", "b"},
		{"b.localhost.", "b"},
	} {
		w := serve(t, p, http.MethodGet, tc.host)
		if w.Code != http.StatusOK || w.Body.String() != tc.want {
			t.Errorf("Host %q: %d %q, want 200 %q", tc.host, w.Code, w.Body, tc.want)
		}
	}
}

func TestUnknownHostIsProblem404(t *testing.T) {
	up := startUpstream(t, "a")
	p := newTestProxy(t, Config{Domain: "apps.example.test"})
	p.SetRoutes([]Route{route1("a.apps.example.test", "a", "a--000001", addrOf(up))})

	w := serve(t, p, http.MethodGet, "Nope.apps.example.test:8080")
	pb := decodeProblem(t, w, http.StatusNotFound)
	for _, want := range []string{`"nope.apps.example.test"`, "APP.apps.example.test", "APP-SLOT.apps.example.test"} {
		if !strings.Contains(pb.Detail, want) {
			t.Errorf("detail %q does not mention %s", pb.Detail, want)
		}
	}
	if pb.Host != "nope.apps.example.test" {
		t.Errorf("host member = %q", pb.Host)
	}
}

func TestNoLiveRevisionIsProblem503(t *testing.T) {
	up := startUpstream(t, "a")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{
		{Host: "empty.localhost", App: "empty", Slot: "staging"},
		{Host: "zero.localhost", App: "zero", Slot: "production",
			Backends: []Backend{{Revision: "zero--000001", Weight: 0, Addrs: []string{addrOf(up)}}}},
	})
	for host, want := range map[string]string{
		"empty.localhost": "app empty has no live revision in slot staging yet; deploy one with `baton deploy empty PATH`",
		"zero.localhost":  "app zero has no live revision in slot production yet; deploy one with `baton deploy zero PATH`",
	} {
		w := serve(t, p, http.MethodGet, host)
		pb := decodeProblem(t, w, http.StatusServiceUnavailable)
		if pb.Detail != want {
			t.Errorf("%s: detail %q, want %q", host, pb.Detail, want)
		}
		if w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", host)
		}
	}
}

func TestWeightedRevisionWithoutInstancesIsProblem503(t *testing.T) {
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{{Host: "a.localhost", App: "a", Slot: "production",
		Backends: []Backend{{Revision: "a--000001", Weight: 100}}}})
	pb := decodeProblem(t, serve(t, p, http.MethodGet, "a.localhost"), http.StatusServiceUnavailable)
	if !strings.Contains(pb.Detail, "no instance") {
		t.Errorf("detail %q", pb.Detail)
	}
}

func TestSetRoutesReplacesTable(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("x.localhost", "x", "x--000001", addrOf(a))})
	if got := serve(t, p, http.MethodGet, "x.localhost").Body.String(); got != "a" {
		t.Fatalf("before switch: %q", got)
	}
	p.SetRoutes([]Route{route1("x.localhost", "x", "x--000002", addrOf(b))})
	if got := serve(t, p, http.MethodGet, "x.localhost").Body.String(); got != "b" {
		t.Fatalf("after switch: %q", got)
	}
	p.SetRoutes(nil)
	decodeProblem(t, serve(t, p, http.MethodGet, "x.localhost"), http.StatusNotFound)
	p.mu.Lock()
	n := len(p.reg)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("registry keeps %d idle upstreams no table references", n)
	}
}
