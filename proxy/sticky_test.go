package proxy

import (
	"net/http"
	"strings"
	"testing"
)

func TestStickyRevisionParsing(t *testing.T) {
	for _, tc := range []struct{ cookie, want string }{
		{"baton_revision=a--000001", "a--000001"},
		{"x=1; baton_revision=a--000002; y=2", "a--000002"},
		{"x=1;baton_revision=\"a--000003\"", "a--000003"},
		{"xbaton_revision=a; baton_revision_x=b", ""},
		{"", ""},
		{"baton_revision=", ""},
	} {
		if got := stickyRevision(tc.cookie); got != tc.want {
			t.Errorf("stickyRevision(%q) = %q, want %q", tc.cookie, got, tc.want)
		}
	}
}

// TestStickyCookie: on a route that splits traffic, the first response
// sets baton_revision, and requests carrying it stay on that revision while
// it has weight; otherwise they are split by weight and the cookie is
// replaced. The Baton-Revision header pins whatever the cookie says.
func TestStickyCookie(t *testing.T) {
	one, two, canary := startUpstream(t, "one"), startUpstream(t, "two"), startUpstream(t, "canary")
	solo := startUpstream(t, "solo")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{
		{Host: "s.localhost", App: "s", Slot: "production", Backends: []Backend{
			{Revision: "s--000001", Weight: 50, Addrs: []string{addrOf(one)}},
			{Revision: "s--000002", Weight: 50, Addrs: []string{addrOf(two)}},
			{Revision: "s--000003", Weight: 0, Addrs: []string{addrOf(canary)}},
		}},
		route1("solo.localhost", "solo", "solo--000001", addrOf(solo)),
	})
	revOf := map[string]string{"s--000001": "one", "s--000002": "two", "s--000003": "canary"}
	for _, f := range fronts(t, p) {
		t.Run(f.name, func(t *testing.T) {
			c := newClient(t, 1)
			w := do(t, c, "GET", f.url, "s.localhost", nil)
			rev, attrs := parseSetCookie(t, w.Header().Values("Set-Cookie"))
			if revOf[rev] != w.Body.String() {
				t.Fatalf("cookie names %q but %q served", rev, w.Body)
			}
			if attrs != "Path=/; HttpOnly; SameSite=Lax" {
				t.Errorf("cookie attributes %q", attrs)
			}
			for range 40 {
				w := do(t, c, "GET", f.url, "s.localhost", nil, "Cookie", "other=1; "+CookieName+"="+rev)
				if w.Body.String() != revOf[rev] {
					t.Fatalf("with the cookie for %s, served by %q", rev, w.Body)
				}
				if sc := w.Header().Values("Set-Cookie"); len(sc) > 0 {
					t.Fatalf("cookie set again: %v", sc)
				}
			}
			// A cookie for a revision without weight (or unknown) is replaced.
			seen := map[string]bool{}
			for _, stale := range []string{"s--000003", "s--000099"} {
				for range 20 {
					w := do(t, c, "GET", f.url, "s.localhost", nil, "Cookie", CookieName+"="+stale)
					got, _ := parseSetCookie(t, w.Header().Values("Set-Cookie"))
					if got == stale || revOf[got] != w.Body.String() {
						t.Fatalf("stale cookie %s: served by %q, new cookie %q", stale, w.Body, got)
					}
					seen[got] = true
				}
			}
			if !seen["s--000001"] || !seen["s--000002"] {
				t.Errorf("stale cookies were not split by weight: %v", seen)
			}
			// The header pins any revision, weight 0 included, and sets nothing.
			w = do(t, c, "GET", f.url, "s.localhost", nil, PinHeader, "s--000003", "Cookie", CookieName+"=s--000001")
			if w.Body.String() != "canary" || len(w.Header().Values("Set-Cookie")) > 0 {
				t.Errorf("pinned: served by %q, Set-Cookie %v", w.Body, w.Header().Values("Set-Cookie"))
			}
			// A route without a split sets no cookie.
			if w := do(t, c, "GET", f.url, "solo.localhost", nil); len(w.Header().Values("Set-Cookie")) > 0 {
				t.Errorf("single-revision route set %v", w.Header().Values("Set-Cookie"))
			}
		})
	}
}

// TestStickyCookieYieldsToHealth: a client whose revision has no healthy
// instance left goes to a healthy one and gets a new cookie.
func TestStickyCookieYieldsToHealth(t *testing.T) {
	one, two := startUpstream(t, "one"), startUpstream(t, "two")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{{Host: "h.localhost", App: "h", Slot: "production", Backends: []Backend{
		{Revision: "h--000001", Weight: 50, Addrs: []string{addrOf(one)}},
		{Revision: "h--000002", Weight: 50, Addrs: []string{addrOf(two)}},
	}}})
	p.SetHealthy(addrOf(one), false)
	base := startServe(t, p)
	for range 20 {
		w := do(t, newClient(t, 1), "GET", base, "h.localhost", nil, "Cookie", CookieName+"=h--000001")
		rev, _ := parseSetCookie(t, w.Header().Values("Set-Cookie"))
		if w.Body.String() != "two" || rev != "h--000002" {
			t.Fatalf("served by %q with cookie %q", w.Body, rev)
		}
	}
}

// parseSetCookie returns the revision and the attributes of the one
// baton_revision cookie among values.
func parseSetCookie(t testing.TB, values []string) (revision, attrs string) {
	t.Helper()
	if len(values) != 1 {
		t.Fatalf("Set-Cookie %v, want one", values)
	}
	v, rest, _ := strings.Cut(values[0], "; ")
	name, rev, _ := strings.Cut(v, "=")
	if name != CookieName {
		t.Fatalf("Set-Cookie %q", values[0])
	}
	// And net/http's parser agrees.
	if cs := (&http.Response{Header: http.Header{"Set-Cookie": values}}).Cookies(); len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteLaxMode || cs[0].Path != "/" {
		t.Fatalf("Set-Cookie %q parses as %+v", values[0], cs)
	}
	return rev, rest
}
