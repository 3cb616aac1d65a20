package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// startServeLocal runs p's data plane as a peer listener (ServeLocal)
// until the test ends, and returns its address.
func startServeLocal(t testing.TB, p *Proxy) string {
	t.Helper()
	return serveUntilEnd(t, p, "ServeLocal", p.ServeLocal)
}

// TestForwardRoute: host A routes an app host B runs to B's peer
// listener; B picks the revision (a pin passes through A untouched), A's
// own peer listener refuses what A only forwards (no request travels
// twice), and B's peer listener serves B's own routes.
func TestForwardRoute(t *testing.T) {
	t.Parallel()
	v1, v2 := startUpstream(t, "v1"), startUpstream(t, "v2")
	a, b := newTestProxy(t, Config{}), newTestProxy(t, Config{})
	aFront, aPeer := startServe(t, a), startServeLocal(t, a)
	bPeer := startServeLocal(t, b)
	b.SetRoutes([]Route{{Host: "app.localhost", App: "app", Slot: "production", Backends: []Backend{
		{Revision: "app--1", Weight: 100, Addrs: []string{addrOf(v1)}},
		{Revision: "app--2", Weight: 0, Addrs: []string{addrOf(v2)}}}},
		// B forwards "loop" back to A: it must end at A's peer listener.
		{Host: "loop.localhost", App: "loop", Slot: "production", Forward: true,
			Backends: []Backend{{Weight: 100, Addrs: []string{aPeer}}}}})
	a.SetRoutes([]Route{
		{Host: "app.localhost", App: "app", Slot: "production", Forward: true,
			Backends: []Backend{{Weight: 100, Addrs: []string{bPeer}}}},
		{Host: "loop.localhost", App: "loop", Slot: "production", Forward: true,
			Backends: []Backend{{Weight: 100, Addrs: []string{bPeer}}}}})
	c := newClient(t, 4)

	if st, body, err := getVia(c, aFront, "app.localhost"); err != nil || st != 200 || body != "v1" {
		t.Fatalf("through A: %d %q %v, want 200 v1", st, body, err)
	}
	req, _ := http.NewRequest(http.MethodGet, aFront+"/", nil)
	req.Host = "app.localhost"
	req.Header.Set(PinHeader, "app--2")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "v2" {
		t.Fatalf("pinned through A: %d %q, want 200 v2 (the pin is B's to act on)", resp.StatusCode, body)
	}
	if st, _, err := getVia(c, "http://"+aPeer, "app.localhost"); err != nil || st != http.StatusMisdirectedRequest {
		t.Fatalf("A's peer listener for an app A only forwards: %d %v, want 421", st, err)
	}
	if st, _, err := getVia(c, aFront, "loop.localhost"); err != nil || st != http.StatusMisdirectedRequest {
		t.Fatalf("A → B → A: %d %v, want 421 from B's peer listener", st, err)
	}
	if st, body, err := getVia(c, "http://"+bPeer, "app.localhost"); err != nil || st != 200 || body != "v1" {
		t.Fatalf("B's peer listener for its own app: %d %q %v", st, body, err)
	}
}

// TestForwardKeepsClientAddress: an instance behind a forwarding host
// sees the client's address in X-Forwarded-For, not the forwarding
// host's; a request sent straight to a peer listener with no
// X-Forwarded-For gets its own, and one that only claims a proto gets
// baton's.
func TestForwardKeepsClientAddress(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 4)
	app := startHandler(t, func(w http.ResponseWriter, r *http.Request) { seen <- r.Header.Clone() })
	a, b := newTestProxy(t, Config{}), newTestProxy(t, Config{})
	aFront, bPeer := startServe(t, a), startServeLocal(t, b)
	b.SetRoutes([]Route{route1("app.localhost", "app", "app--1", addrOf(app))})
	a.SetRoutes([]Route{{Host: "app.localhost", App: "app", Slot: "production", Forward: true,
		Backends: []Backend{{Weight: 100, Addrs: []string{bPeer}}}}})
	c := newClient(t, 2)
	// The client connects from 127.0.0.5; A connects to B from 127.0.0.1.
	c.Transport.(*http.Transport).DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 5)}}).DialContext

	req, _ := http.NewRequest(http.MethodGet, aFront+"/", nil)
	req.Host = "app.localhost"
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // spoofed: A is the edge
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-seen
	if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.5" {
		t.Fatalf("through A then B: X-Forwarded-For %q, want the client's own [127.0.0.5]", got)
	}
	if got := h.Values("X-Forwarded-Host"); len(got) != 1 || got[0] != "app.localhost" {
		t.Fatalf("X-Forwarded-Host %q", got)
	}

	req, _ = http.NewRequest(http.MethodGet, "http://"+bPeer+"/", nil)
	req.Host = "app.localhost"
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h = <-seen
	if got := h.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != "http" {
		t.Fatalf("straight to the peer listener without X-Forwarded-For: X-Forwarded-Proto %q, want baton's [http]", got)
	}
	if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.5" {
		t.Fatalf("straight to the peer listener: X-Forwarded-For %q", got)
	}
}

// TestPeerBackends: a revision whose instances run on two hosts is served
// from both by each host's proxy: A's share goes to its own instance, B's
// to B's peer listener with the revision pinned there (whatever else B
// routes), and a ServeLocal listener never sends a request on to a peer,
// even when its own instances of the revision are gone.
func TestPeerBackends(t *testing.T) {
	t.Parallel()
	pins := make(chan string, 64)
	onA := startUpstream(t, "a")
	onB := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		pins <- r.Header.Get(PinHeader)
		io.WriteString(w, "b")
	})
	other := startUpstream(t, "other")
	a, b := newTestProxy(t, Config{}), newTestProxy(t, Config{})
	aFront, aPeer := startServe(t, a), startServeLocal(t, a)
	bFront, bPeer := startServe(t, b), startServeLocal(t, b)
	// B has not applied the switch yet: app--2 still has no weight there.
	b.SetRoutes([]Route{{Host: "app.localhost", App: "app", Slot: "production", Backends: []Backend{
		{Revision: "app--1", Weight: 100, Addrs: []string{addrOf(other)}},
		{Revision: "app--2", Weight: 0, Addrs: []string{addrOf(onB)}, Peers: []string{aPeer}}}}})
	a.SetRoutes([]Route{{Host: "app.localhost", App: "app", Slot: "production", Backends: []Backend{
		{Revision: "app--2", Weight: 100, Addrs: []string{addrOf(onA)}, Peers: []string{bPeer}}}}})
	c := newClient(t, 4)

	seen := map[string]int{}
	for range 20 {
		st, body, err := getVia(c, aFront, "app.localhost")
		if err != nil || st != 200 {
			t.Fatalf("through A: %d %q %v", st, body, err)
		}
		seen[body]++
	}
	if seen["a"] != 10 || seen["b"] != 10 {
		t.Fatalf("through A, 20 requests: %v, want 10 on A's instance and 10 through B (round robin)", seen)
	}
	for range 10 {
		if pin := <-pins; pin != "app--2" {
			t.Fatalf("B's instance saw %s %q, want the revision A chose", PinHeader, pin)
		}
	}
	// The requests count where the client sent them, once: A's metrics
	// have all 20, B's peer listener adds none.
	if n, m := requestsOf(a, "app--2"), requestsOf(b, "app--2"); n != 20 || m != 0 {
		t.Fatalf("requests counted: %d on A, %d on B; want 20 on A and none on B", n, m)
	}
	// B's peer listener serves app--2 from its own instance only.
	for range 4 {
		if st, body, err := getVia(c, "http://"+bPeer, "app.localhost"); err != nil || st != 200 || body != "other" {
			t.Fatalf("B's peer listener unpinned: %d %q %v, want its own app--1", st, body, err)
		}
	}
	// B's front door sends app--2 pins to its own instance and to A.
	b.SetRoutes([]Route{{Host: "app.localhost", App: "app", Slot: "production", Backends: []Backend{
		{Revision: "app--2", Weight: 100, Peers: []string{aPeer}}}}})
	if st, body, err := getVia(c, bFront, "app.localhost"); err != nil || st != 200 || body != "a" {
		t.Fatalf("through B with only A's instance: %d %q %v, want A's", st, body, err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+bPeer+"/", nil)
	req.Host = "app.localhost"
	req.Header.Set(PinHeader, "app--2")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("B's peer listener with no instance of its own: %d, want 503 (never on to A)", resp.StatusCode)
	}
}

// requestsOf is how many requests p counted for revision rev.
func requestsOf(p *Proxy, rev string) uint64 {
	var n uint64
	for _, s := range p.RequestStats() {
		if s.Revision == rev {
			for _, k := range s.Requests {
				n += k
			}
		}
	}
	return n
}

// getWithKey is getVia with a Baton-Peer-Key field ("" sends none).
func getWithKey(t *testing.T, c *http.Client, base, host, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if key != "" {
		req.Header.Set(PeerKeyHeader, key)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestPeerKey: with a cluster key, a host's peer listener refuses a
// request with a wrong key, and one without a key once every host sends
// it (RequirePeerKey); the other hosts' proxies add it (on both data
// planes, for spread revisions and Forward routes alike); a client's own
// key, right or wrong, never reaches an instance.
func TestPeerKey(t *testing.T) {
	t.Parallel()
	const key = "cluster-key-for-the-test"
	keys := make(chan string, 64)
	onB := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		keys <- r.Header.Get(PeerKeyHeader)
		io.WriteString(w, "b")
	})
	onA := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		keys <- r.Header.Get(PeerKeyHeader)
		io.WriteString(w, "a")
	})
	a, b := newTestProxy(t, Config{PeerKey: key}), newTestProxy(t, Config{PeerKey: key})
	aFront, bPeer := startServe(t, a), startServeLocal(t, b)
	aHandler := httptest.NewServer(a) // ServeHTTP, the path h2 streams take
	t.Cleanup(aHandler.Close)
	b.SetRoutes([]Route{
		{Host: "app.localhost", App: "app", Slot: "production", Backends: []Backend{{Revision: "app--1", Weight: 100, Addrs: []string{addrOf(onB)}}}},
		{Host: "fwd.localhost", App: "fwd", Slot: "production", Backends: []Backend{{Revision: "fwd--1", Weight: 100, Addrs: []string{addrOf(onB)}}}},
	})
	a.SetRoutes([]Route{
		{Host: "app.localhost", App: "app", Slot: "production", Backends: []Backend{{Revision: "app--1", Weight: 100, Peers: []string{bPeer}}}},
		{Host: "fwd.localhost", App: "fwd", Slot: "production", Forward: true, Backends: []Backend{{Weight: 100, Addrs: []string{bPeer}}}},
		{Host: "local.localhost", App: "local", Slot: "production", Backends: []Backend{{Revision: "local--1", Weight: 100, Addrs: []string{addrOf(onA)}}}},
	})
	c := newClient(t, 4)
	instanceSaw := func(what string) {
		t.Helper()
		select {
		case k := <-keys:
			if k != "" {
				t.Fatalf("%s: the instance saw %s %q", what, PeerKeyHeader, k)
			}
		default:
			t.Fatalf("%s: no request reached an instance", what)
		}
	}

	for _, front := range []string{aFront, aHandler.URL} {
		for _, host := range []string{"app.localhost", "fwd.localhost"} {
			if st, body := getWithKey(t, c, front, host, ""); st != 200 || body != "b" {
				t.Fatalf("%s through %s to B's peer listener: %d %q, want B's instance", host, front, st, body)
			}
			instanceSaw(host + " through A")
		}
		// A client's own key, even the right one, is not passed on.
		if st, body := getWithKey(t, c, front, "local.localhost", key); st != 200 || body != "a" {
			t.Fatalf("local app through %s with a key: %d %q", front, st, body)
		}
		instanceSaw("a client's key to A's own instance")
	}

	// Until every host sends the key, a request without one is served (a
	// host of an older baton sent it), one with a wrong key is not.
	if st, body := getWithKey(t, c, "http://"+bPeer, "app.localhost", ""); st != 200 || body != "b" {
		t.Fatalf("B's peer listener, no key, not required yet: %d %q", st, body)
	}
	instanceSaw("no key before it is required")
	b.RequirePeerKey(true)
	for _, k := range []string{"not-the-key", key[:len(key)-1], ""} {
		st, body := getWithKey(t, c, "http://"+bPeer, "app.localhost", k)
		if st != http.StatusForbidden || !strings.Contains(body, "peer-key-refused") || !strings.Contains(body, "proxy port") {
			t.Fatalf("B's peer listener, key %q: %d %q, want a 403 peer-key-refused problem", k, st, body)
		}
	}
	select {
	case k := <-keys:
		t.Fatalf("a refused request reached an instance (key %q)", k)
	default:
	}
	if st, body := getWithKey(t, c, "http://"+bPeer, "app.localhost", key); st != 200 || body != "b" {
		t.Fatalf("B's peer listener with the key: %d %q", st, body)
	}
	instanceSaw("the key to B's peer listener")
}
