package metrics_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/metrics"
	"github.com/batonhq/baton/proxy"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestRequestMetricsAfterRealRequests sends real requests through each
// data plane (Serve, the raw HTTP/1.1 one, and ServeHTTP, the one h2
// uses), scrapes /metrics, and checks every count: 2xx per revision,
// an unknown host counted apart from apps, a refused instance (502), no
// live revision (503), a timeout (504), and a malformed chunked body
// counted as the client's error (400). The exposition is checked by the
// text parser, and by promtool when it is installed.
func TestRequestMetricsAfterRealRequests(t *testing.T) {
	for _, plane := range []string{"Serve", "ServeHTTP"} {
		t.Run(plane, func(t *testing.T) {
			ok := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				io.WriteString(w, "hello")
			})
			// strict has an instance of its own: its malformed request
			// ends the upstream connection, and ok's stays pooled.
			strict := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				io.WriteString(w, "hello")
			})
			release := make(chan struct{})
			slow := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				select { // past the proxy's header timeout, until the test ends
				case <-release:
				case <-r.Context().Done():
				}
			})
			t.Cleanup(func() { close(release) }) // before the upstream closes
			dead := deadAddr(t)

			p := proxy.New(proxy.Config{UpstreamHeaderTimeout: 200 * time.Millisecond})
			t.Cleanup(func() { p.Close() })
			p.SetRoutes([]proxy.Route{
				{Host: "ok.localhost", App: "ok", Slot: "production",
					Backends: []proxy.Backend{{Revision: "ok--000001", Weight: 100, Addrs: []string{addrOf(ok)}}}},
				{Host: "strict.localhost", App: "strict", Slot: "production",
					Backends: []proxy.Backend{{Revision: "strict--000001", Weight: 100, Addrs: []string{addrOf(strict)}}}},
				{Host: "dead.localhost", App: "dead", Slot: "production",
					Backends: []proxy.Backend{{Revision: "dead--000001", Weight: 100, Addrs: []string{dead}}}},
				{Host: "slow.localhost", App: "slow", Slot: "staging",
					Backends: []proxy.Backend{{Revision: "slow--000001", Weight: 100, Addrs: []string{addrOf(slow)}}}},
				{Host: "empty.localhost", App: "empty", Slot: "production"},
			})
			base := startPlane(t, p, plane)

			client := &http.Client{Timeout: 10 * time.Second}
			for _, c := range []struct {
				host, method, body string
				status             int
			}{
				{"ok.localhost", "GET", "", 200},
				{"ok.localhost", "GET", "", 200},
				{"ok.localhost", "GET", "", 200},
				{"ok.localhost", "POST", "abcd", 200},
				{"nobody.localhost", "GET", "", 404},
				{"dead.localhost", "GET", "", 502},
				{"empty.localhost", "GET", "", 503},
				{"slow.localhost", "GET", "", 504},
			} {
				req, _ := http.NewRequest(c.method, base+"/", strings.NewReader(c.body))
				req.Host = c.host
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != c.status {
					t.Fatalf("%s %s: status %d, want %d", c.method, c.host, resp.StatusCode, c.status)
				}
			}
			// A chunked body with a malformed chunk size: the client's fault.
			if status := rawRequest(t, base, "POST / HTTP/1.1\r\nHost: strict.localhost\r\n"+
				"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\nzz\r\n"); status != 400 {
				t.Fatalf("malformed chunked body: status %d, want 400", status)
			}

			text := scrape(t, p)
			fams := parse(t, text)
			checkPromtool(t, text)

			rev := func(app, slot, revision string, more ...string) map[string]string {
				l := map[string]string{"app": app, "slot": slot, "revision": revision}
				for i := 0; i+1 < len(more); i += 2 {
					l[more[i]] = more[i+1]
				}
				return l
			}
			want := []struct {
				name   string
				labels map[string]string
				value  float64
			}{
				{"baton_proxy_requests_total", rev("ok", "production", "ok--000001", "class", "2xx"), 4},
				{"baton_proxy_request_body_bytes_total", rev("ok", "production", "ok--000001"), 4},
				{"baton_proxy_response_body_bytes_total", rev("ok", "production", "ok--000001"), 20},
				{"baton_proxy_unrouted_requests_total", map[string]string{"reason": "unknown_host"}, 1},
				{"baton_proxy_requests_total", rev("dead", "production", "dead--000001", "class", "5xx"), 1},
				{"baton_proxy_request_errors_total", rev("dead", "production", "dead--000001", "cause", "upstream_refused"), 1},
				{"baton_proxy_requests_total", rev("empty", "production", "", "class", "5xx"), 1},
				{"baton_proxy_request_errors_total", rev("empty", "production", "", "cause", "no_live_revision"), 1},
				{"baton_proxy_requests_total", rev("slow", "staging", "slow--000001", "class", "5xx"), 1},
				{"baton_proxy_request_errors_total", rev("slow", "staging", "slow--000001", "cause", "upstream_timeout"), 1},
				{"baton_proxy_requests_total", rev("strict", "production", "strict--000001", "class", "4xx"), 1},
				{"baton_proxy_request_errors_total", rev("strict", "production", "strict--000001", "cause", "malformed_request"), 1},
			}
			for _, w := range want {
				if got, found := value(fams, w.name, w.labels); !found || got != w.value {
					t.Errorf("%s%v = %v (found %v), want %v", w.name, w.labels, got, found, w.value)
				}
			}
			// Nothing else was counted as 5xx or as an error of ok.
			if got, found := value(fams, "baton_proxy_requests_total", rev("ok", "production", "ok--000001", "class", "5xx")); found {
				t.Errorf("ok counted %v 5xx", got)
			}
			h := histogram(fams, "baton_proxy_request_duration_seconds", rev("ok", "production", "ok--000001"))
			if h == nil || h.GetSampleCount() != 4 || h.GetSampleSum() <= 0 {
				t.Errorf("duration histogram of ok: %v, want 4 samples", h)
			}
			hs := histogram(fams, "baton_proxy_request_duration_seconds", rev("slow", "staging", "slow--000001"))
			if hs == nil || hs.GetSampleSum() < 0.2 {
				t.Errorf("duration histogram of slow: %v, want one sample ≥ the 0.2 s header timeout", hs)
			}
			if _, found := value(fams, "baton_proxy_open_connections", nil); !found {
				t.Error("no baton_proxy_open_connections")
			}
			if plane == "Serve" && h != nil {
				// The upstream's part: one sample per answer of ok, within
				// the totals; none for slow, whose head never came.
				up := histogram(fams, "baton_proxy_upstream_duration_seconds", rev("ok", "production", "ok--000001"))
				if up == nil || up.GetSampleCount() != 4 || up.GetSampleSum() <= 0 || up.GetSampleSum() > h.GetSampleSum() {
					t.Errorf("upstream histogram of ok: %v, want 4 samples summing to at most %v", up, h.GetSampleSum())
				}
				if up := histogram(fams, "baton_proxy_upstream_duration_seconds", rev("slow", "staging", "slow--000001")); up != nil {
					t.Errorf("upstream histogram of slow (timed out): %v", up)
				}
				if v, found := value(fams, "baton_proxy_upstream_idle_connections", nil); !found || v < 1 {
					t.Errorf("baton_proxy_upstream_idle_connections = %v (found %v), want ≥ 1 after keep-alive requests", v, found)
				}
			}
			if _, found := value(fams, "baton_proxy_upstream_requests_in_flight", nil); !found {
				t.Error("no baton_proxy_upstream_requests_in_flight")
			}
		})
	}
}

// TestRequestMetricsFollowRoutes: a revision that leaves the table leaves
// the metrics; one that stays keeps its counts across SetRoutes.
func TestRequestMetricsFollowRoutes(t *testing.T) {
	ok := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	p := proxy.New(proxy.Config{})
	t.Cleanup(func() { p.Close() })
	routes := func(revs ...string) []proxy.Route {
		rt := proxy.Route{Host: "a.localhost", App: "a", Slot: "production"}
		for _, r := range revs {
			rt.Backends = append(rt.Backends, proxy.Backend{Revision: r, Weight: 100 / len(revs), Addrs: []string{addrOf(ok)}})
		}
		return []proxy.Route{rt}
	}
	p.SetRoutes(routes("a--000001"))
	base := startPlane(t, p, "Serve")
	get := func(pin string) {
		req, _ := http.NewRequest("GET", base+"/", nil)
		req.Host = "a.localhost"
		req.Header.Set(proxy.PinHeader, pin)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get("a--000001")
	p.SetRoutes(routes("a--000001", "a--000002"))
	get("a--000001")
	get("a--000002")
	p.SetRoutes(routes("a--000002"))
	fams := parse(t, scrape(t, p))
	if _, found := value(fams, "baton_proxy_requests_total", map[string]string{"revision": "a--000001", "class": "2xx"}); found {
		t.Error("a--000001 left the table but not the metrics")
	}
	if got, _ := value(fams, "baton_proxy_requests_total", map[string]string{"revision": "a--000002", "class": "2xx"}); got != 1 {
		t.Errorf("a--000002: %v requests, want 1", got)
	}
}

func startUpstream(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func addrOf(s *httptest.Server) string { return s.Listener.Addr().String() }

// deadAddr is a loopback address with no listener: connections are refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startPlane serves p on a loopback listener through the named data plane
// and returns its base URL.
func startPlane(t *testing.T, p *proxy.Proxy, plane string) string {
	t.Helper()
	if plane == "ServeHTTP" {
		s := httptest.NewServer(p)
		t.Cleanup(s.Close)
		return s.URL
	}
	ln, err := proxy.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	t.Cleanup(func() {
		p.Shutdown(t.Context())
		<-done
	})
	return "http://" + ln.Addr().String()
}

// rawRequest writes req on a new connection and returns the status.
func rawRequest(t *testing.T, base, req string) int {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// scrape serves a registry with p's request collector and GETs /metrics.
func scrape(t *testing.T, p *proxy.Proxy) []byte {
	t.Helper()
	m := metrics.New(metrics.NewRequestCollector(p))
	s := httptest.NewServer(m.Handler())
	t.Cleanup(s.Close)
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return b
}

func parse(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	return fams
}

// checkPromtool runs `promtool check metrics` on the exposition when
// promtool is installed (Debian package prometheus; test.sh installs it).
func checkPromtool(t *testing.T, text []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: the exposition was checked by the text parser only")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// find returns the metric of family name whose labels include want.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	m := find(fams, name, want)
	switch {
	case m == nil:
		return 0, false
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	}
	panic(fmt.Sprintf("%s is neither counter nor gauge", name))
}

func histogram(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Histogram {
	if m := find(fams, name, want); m != nil {
		return m.Histogram
	}
	return nil
}
