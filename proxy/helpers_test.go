package proxy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestProxy returns a Proxy logging to the test's output; the cfg
// fields that are set win.
func newTestProxy(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	if cfg.Logger == nil {
		level := slog.LevelInfo
		if _, bench := t.(*testing.B); bench {
			level = slog.LevelWarn
		}
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
	}
	p := New(cfg)
	t.Cleanup(func() { p.Close() })
	return p
}

// startUpstream starts an instance that answers every request with 200,
// its name as the body and in the X-Upstream header.
func startUpstream(t testing.TB, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", name)
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

// startHandler starts an instance running h.
func startHandler(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func addrOf(s *httptest.Server) string { return s.Listener.Addr().String() }

// deadAddr returns a loopback address nothing listens on: dialing it is
// refused.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// route1 is a route for host with one revision at 100 %.
func route1(host, app, revision string, addrs ...string) Route {
	return Route{Host: host, App: app, Slot: "production",
		Backends: []Backend{{Revision: revision, Weight: 100, Addrs: addrs}}}
}

// serve sends one request through h in-process.
func serve(t testing.TB, h http.Handler, method, host string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://"+host+"/", nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// decodeProblem checks that w holds an RFC 9457 problem with the status
// and returns it.
func decodeProblem(t testing.TB, w *httptest.ResponseRecorder, status int) problem {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var pb problem
	if err := json.Unmarshal(w.Body.Bytes(), &pb); err != nil {
		t.Fatalf("problem body %q: %v", w.Body, err)
	}
	if pb.Status != status || pb.Title == "" || pb.Detail == "" || !strings.HasPrefix(pb.Type, ProblemTypeBase+"#") {
		t.Fatalf("incomplete problem: %+v", pb)
	}
	return pb
}

// newClient returns a keep-alive client for n concurrent users.
func newClient(t testing.TB, n int) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// getVia sends a GET for host through the proxy listening at base.
func getVia(c *http.Client, base, host string) (status int, body string, err error) {
	req, err := http.NewRequest(http.MethodGet, base+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// recordingHandler is a slog.Handler that keeps records for assertions.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// atLeast returns the messages logged at level or above.
func (h *recordingHandler) atLeast(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var msgs []string
	for _, r := range h.records {
		if r.Level >= level {
			msgs = append(msgs, r.Message)
		}
	}
	return msgs
}
