package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRefusedDialRetriesAnotherInstance(t *testing.T) {
	live := startUpstream(t, "live")
	dead := deadAddr(t)
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{
		route1("one.localhost", "one", "one--000001", dead, addrOf(live)),
		// The dead instance is the only one of its revision: the retry
		// crosses to the other revision.
		{Host: "two.localhost", App: "two", Slot: "production", Backends: []Backend{
			{Revision: "two--000001", Weight: 50, Addrs: []string{dead}},
			{Revision: "two--000002", Weight: 50, Addrs: []string{addrOf(live)}},
		}},
	})
	for _, host := range []string{"one.localhost", "two.localhost"} {
		for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodDelete} {
			for range 10 {
				if w := serve(t, p, method, host); w.Code != http.StatusOK {
					t.Fatalf("%s %s: %d %s", method, host, w.Code, w.Body)
				}
			}
		}
	}
}

func TestRefusedDialWithoutOtherInstanceIs502(t *testing.T) {
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("dead.localhost", "dead", "dead--000001", deadAddr(t))})
	pb := decodeProblem(t, serve(t, p, http.MethodGet, "dead.localhost"), http.StatusBadGateway)
	if strings.Contains(pb.Detail, "127.0.0.1") {
		t.Errorf("detail leaks the instance address: %q", pb.Detail)
	}
}

func TestRefusedDialWithBodyIsNotRetried(t *testing.T) {
	var reached atomic.Int32
	live := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
	})
	p := newTestProxy(t, Config{})
	// Round robin starts at the dead instance.
	p.SetRoutes([]Route{route1("post.localhost", "post", "post--000001", deadAddr(t), addrOf(live))})
	r := httptest.NewRequest(http.MethodPost, "http://post.localhost/", strings.NewReader("payload"))
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	decodeProblem(t, w, http.StatusBadGateway)
	if n := reached.Load(); n != 0 {
		t.Fatalf("a request with a body was sent again (%d times)", n)
	}
}

func TestSlowUpstreamIs504(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	p := newTestProxy(t, Config{UpstreamHeaderTimeout: 50 * time.Millisecond})
	p.SetRoutes([]Route{route1("slow.localhost", "slow", "slow--000001", addrOf(slow))})
	pb := decodeProblem(t, serve(t, p, http.MethodGet, "slow.localhost"), http.StatusGatewayTimeout)
	if !strings.Contains(pb.Detail, "50ms") {
		t.Errorf("detail %q does not name the timeout", pb.Detail)
	}
}

func TestClientGoneIsNotAnUpstreamError(t *testing.T) {
	started := make(chan struct{})
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	})
	logs := &recordingHandler{}
	p := newTestProxy(t, Config{Logger: slog.New(logs)})
	p.SetRoutes([]Route{route1("gone.localhost", "gone", "gone--000001", addrOf(up))})

	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "http://gone.localhost/", nil)
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.ServeHTTP(w, r)
	}()
	<-started
	cancel()
	<-done
	if msgs := logs.atLeast(slog.LevelWarn); len(msgs) > 0 {
		t.Fatalf("client going away was logged as %v", msgs)
	}
	if w.Code != 499 {
		t.Errorf("status = %d, want 499", w.Code)
	}
	if n := p.InFlight(addrOf(up)); n != 0 {
		t.Errorf("InFlight = %d after the client left", n)
	}
}

func TestForwardedHeaders(t *testing.T) {
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{
			"host":  r.Host,
			"xff":   r.Header.Get("X-Forwarded-For"),
			"xfh":   r.Header.Get("X-Forwarded-Host"),
			"xfp":   r.Header.Get("X-Forwarded-Proto"),
			"path":  r.URL.RequestURI(),
			"other": r.Header.Get("X-Custom"),
		})
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("fw.localhost", "fw", "fw--000001", addrOf(up))})

	r := httptest.NewRequest(http.MethodGet, "http://fw.localhost:8080/a/b?c=d", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	r.Header.Set("X-Forwarded-For", "6.6.6.6") // spoofed by the client
	r.Header.Set("X-Custom", "kept")
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	var got map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	want := map[string]string{
		"host": "fw.localhost:8080", "xff": "192.0.2.7", "xfh": "fw.localhost:8080", "xfp": "http",
		"path": "/a/b?c=d", "other": "kept",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("upstream saw %s = %q, want %q", k, got[k], v)
		}
	}
}

func TestServerSentEventsAreNotBuffered(t *testing.T) {
	release := make(chan struct{})
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: two\n\n")
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("sse.localhost", "sse", "sse--000001", addrOf(up))})
	front := httptest.NewServer(p)
	defer front.Close()

	req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
	req.Host = "sse.localhost"
	resp, err := newClient(t, 1).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The first event must arrive while the upstream still holds the
	// stream open; a buffering proxy would block here.
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: two") {
		t.Fatalf("rest of stream: %q", rest)
	}
}

// TestAbortedResponseReleasesInFlight: ReverseProxy panics with
// http.ErrAbortHandler when an upstream dies mid-body; the count must
// still go back to zero or every later Drain would hang.
func TestAbortedResponseReleasesInFlight(t *testing.T) {
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "only ten..")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("abort.localhost", "abort", "abort--000001", addrOf(up))})
	front := httptest.NewServer(p)
	defer front.Close()

	if _, _, err := getVia(newClient(t, 1), front.URL, "abort.localhost"); err == nil {
		t.Fatal("a truncated response reached the client as complete")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Drain(ctx, []string{addrOf(up)}); err != nil {
		t.Fatal(err)
	}
}
