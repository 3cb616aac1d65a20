package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/poll"
)

// startServe runs p's own data plane on a loopback listener until the
// test ends, and returns its base URL.
func startServe(t testing.TB, p *Proxy) string {
	t.Helper()
	return "http://" + serveUntilEnd(t, p, "Serve", p.Serve)
}

// serveUntilEnd runs serve (p.Serve or p.ServeLocal, named name) on a
// loopback listener until the test ends, shuts p down then, and returns
// the listener's address.
func serveUntilEnd(t testing.TB, p *Proxy, name string, serve func(net.Listener) error) string {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("%s returned %v, want http.ErrServerClosed", name, err)
		}
	})
	return ln.Addr().String()
}

// front is one way of putting the proxy on a listener.
type front struct {
	name string
	url  string
}

// fronts serves p both ways: its own data plane (Serve) and net/http's
// server with p as the handler (ServeHTTP).
func fronts(t testing.TB, p *Proxy) []front {
	t.Helper()
	hs := httptest.NewServer(p)
	t.Cleanup(hs.Close)
	return []front{{"Serve", startServe(t, p)}, {"ServeHTTP", hs.URL}}
}

// do sends one request to base with Host host and records the response,
// so the helpers for in-process requests (decodeProblem) apply.
func do(t testing.TB, c *http.Client, method, base, host string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req, err := http.NewRequest(method, base+"/", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, base, host, err)
	}
	defer resp.Body.Close()
	w := httptest.NewRecorder()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		t.Fatalf("%s %s: reading body: %v", method, base, err)
	}
	return w
}

// rawConn dials the proxy's listener for tests that speak HTTP by hand.
func rawConn(t testing.TB, base string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestServeRoutesAndAnswersProblems(t *testing.T) {
	a := startUpstream(t, "a")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("a.localhost", "a", "a--000001", addrOf(a))})
	base := startServe(t, p)
	c := newClient(t, 1)
	for _, host := range []string{"a.localhost", "A.LocalHost:8080", "a.localhost."} {
		if w := do(t, c, "GET", base, host, nil); w.Code != 200 || w.Body.String() != "a" {
			t.Errorf("Host %s: %d %q", host, w.Code, w.Body)
		}
	}
	decodeProblem(t, do(t, c, "GET", base, "nope.localhost", nil), http.StatusNotFound)
	decodeProblem(t, do(t, c, "GET", base, "a.localhost", nil, PinHeader, "a--000009"), http.StatusNotFound)
	// HEAD gets the head of a problem, and the connection goes on.
	if w := do(t, c, "HEAD", base, "nope.localhost", nil); w.Code != 404 || w.Body.Len() != 0 {
		t.Errorf("HEAD of unknown host: %d %q", w.Code, w.Body)
	}
	if w := do(t, c, "GET", base, "a.localhost", nil); w.Code != 200 {
		t.Errorf("after problems: %d", w.Code)
	}
}

func TestServeRefusedDialRetriesAnotherInstance(t *testing.T) {
	live := startUpstream(t, "live")
	dead := deadAddr(t)
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("one.localhost", "one", "one--000001", dead, addrOf(live))})
	base := startServe(t, p)
	c := newClient(t, 1)
	for range 10 {
		if w := do(t, c, "GET", base, "one.localhost", nil); w.Code != 200 || w.Body.String() != "live" {
			t.Fatalf("%d %q", w.Code, w.Body)
		}
	}
	// The refusal marked the instance unhealthy for a moment (passive
	// health), so the requests after the first did not dial it again.
	p.mu.Lock()
	u := p.reg[dead]
	p.mu.Unlock()
	if u.healthy() {
		t.Errorf("an instance that refused connections is still healthy")
	}
}

func TestServeUpstreamDownIs502(t *testing.T) {
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("dead.localhost", "dead", "dead--000001", deadAddr(t))})
	base := startServe(t, p)
	pb := decodeProblem(t, do(t, newClient(t, 1), "GET", base, "dead.localhost", nil), http.StatusBadGateway)
	if strings.Contains(pb.Detail, "127.0.0.1") {
		t.Errorf("detail leaks the instance address: %q", pb.Detail)
	}
}

func TestServeUpstreamTimeoutIs504(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	p := newTestProxy(t, Config{UpstreamHeaderTimeout: 100 * time.Millisecond})
	p.SetRoutes([]Route{route1("slow.localhost", "slow", "slow--000001", addrOf(slow))})
	base := startServe(t, p)
	pb := decodeProblem(t, do(t, newClient(t, 1), "GET", base, "slow.localhost", nil), http.StatusGatewayTimeout)
	if !strings.Contains(pb.Detail, "100ms") {
		t.Errorf("detail %q does not name the timeout", pb.Detail)
	}
}

// TestServeClientDisconnectCancelsUpstream: a client that leaves while the
// instance works must cancel the instance's request, not leave it running
// (and counted in flight) until it finishes on its own.
func TestServeClientDisconnectCancelsUpstream(t *testing.T) {
	up, started, cancelled := startStallingUpstream(t)
	logs := &recordingHandler{}
	p := newTestProxy(t, Config{Logger: slog.New(logs)})
	p.SetRoutes([]Route{route1("gone.localhost", "gone", "gone--000001", addrOf(up))})
	base := startServe(t, p)

	c, _ := rawConn(t, base)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: gone.localhost\r\n\r\n")
	<-started
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled after the client left")
	}
	waitFor(t, "in-flight count back to 0", func() bool { return p.InFlight(addrOf(up)) == 0 })
	if msgs := logs.atLeast(slog.LevelWarn); len(msgs) > 0 {
		t.Errorf("client going away was logged as %v", msgs)
	}
}

// startStallingUpstream is an instance that answers nothing for a minute:
// started closes when its request arrives, cancelled when the request is
// cancelled (the proxy closed the connection).
func startStallingUpstream(t testing.TB) (up *httptest.Server, started, cancelled chan struct{}) {
	started, cancelled = make(chan struct{}), make(chan struct{})
	up = startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(time.Minute):
		}
	})
	return up, started, cancelled
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}

func TestServeForwardedAndHopByHopHeaders(t *testing.T) {
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		h := map[string]string{"host": r.Host, "uri": r.RequestURI}
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded",
			"X-Secret", "Keep-Alive", "Proxy-Connection", "Te", "X-Custom", "Connection", "Upgrade", "Proxy-Authorization"} {
			h[k] = strings.Join(r.Header[k], ",")
		}
		// Hop-by-hop fields in the response, which the client must not see.
		w.Header().Set("Connection", "X-Resp-Secret")
		w.Header().Set("X-Resp-Secret", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
		json.NewEncoder(w).Encode(h)
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("fw.localhost", "fw", "fw--000001", addrOf(up))})
	base := startServe(t, p)

	c, br := rawConn(t, base)
	io.WriteString(c, "GET http://fw.localhost:8080/a/b?c=d HTTP/1.1\r\n"+
		"Host: other.example\r\n"+ // the absolute target wins
		"Connection: keep-alive, X-Secret\r\n"+
		"X-Secret: 1\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: gzip\r\n"+
		"Upgrade: h2c\r\nProxy-Authorization: Basic eA==\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nForwarded: for=6.6.6.6\r\n"+
		"X-Custom: kept\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"host": "fw.localhost:8080", "uri": "/a/b?c=d",
		"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "fw.localhost:8080", "X-Forwarded-Proto": "http",
		"Forwarded": `for=127.0.0.1;host="fw.localhost:8080";proto=http`,
		"X-Secret":  "", "Keep-Alive": "", "Proxy-Connection": "", "Te": "", "Connection": "", "Upgrade": "",
		"Proxy-Authorization": "", "X-Custom": "kept",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("upstream saw %s = %q, want %q", k, got[k], v)
		}
	}
	for _, k := range []string{"X-Resp-Secret", "Keep-Alive", "Proxy-Authenticate"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("client saw hop-by-hop response field %s: %q", k, v)
		}
	}
	if resp.Close {
		t.Errorf("keep-alive connection closed by the proxy")
	}
}

func TestServeHeaderSizeLimits(t *testing.T) {
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Header().Set("X-Big", strings.Repeat("b", 8<<10))
		}
		io.WriteString(w, "ok")
	})
	p := newTestProxy(t, Config{MaxHeaderBytes: 4 << 10})
	p.SetRoutes([]Route{route1("lim.localhost", "lim", "lim--000001", addrOf(up))})
	base := startServe(t, p)
	c := newClient(t, 1)

	w := do(t, c, "GET", base, "lim.localhost", nil, "X-Huge", strings.Repeat("h", 8<<10))
	decodeProblem(t, w, http.StatusRequestHeaderFieldsTooLarge)

	req, _ := http.NewRequest("GET", base+"/big", nil)
	req.Host = "lim.localhost"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("response head over the limit: status %d, want 502", resp.StatusCode)
	}
	if w := do(t, c, "GET", base, "lim.localhost", nil); w.Code != 200 {
		t.Errorf("normal request after the limits: %d", w.Code)
	}
}

// TestServeRefusesAmbiguousRequests: requests that two parsers could read
// differently (request smuggling) never reach an upstream.
func TestServeRefusesAmbiguousRequests(t *testing.T) {
	var reached atomic.Int32
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) { reached.Add(1) })
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("s.localhost", "s", "s--000001", addrOf(up))})
	base := startServe(t, p)
	for _, tc := range []struct {
		name, head string
		status     int
	}{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"two lengths", "POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
		{"TE not chunked", "POST / HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"space before colon", "GET / HTTP/1.1\r\nHost : s.localhost\r\n\r\n", 400},
		{"line folding", "GET / HTTP/1.1\r\nHost: s.localhost\r\nX-A: 1\r\n 2\r\n\r\n", 400},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two hosts", "GET / HTTP/1.1\r\nHost: s.localhost\r\nHost: x\r\n\r\n", 400},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"bad length", "POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: -1\r\n\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := rawConn(t, base)
			io.WriteString(c, tc.head)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || !resp.Close {
				t.Errorf("status %d close %v, want %d and close", resp.StatusCode, resp.Close, tc.status)
			}
		})
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d ambiguous requests reached the upstream", n)
	}
}

func TestServeHTTP10AndPipelining(t *testing.T) {
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // forces chunked encoding
		}
		io.WriteString(w, "path="+r.URL.Path)
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("old.localhost", "old", "old--000001", addrOf(up))})
	base := startServe(t, p)

	// HTTP/1.0 without keep-alive: the response ends with the connection,
	// and a chunked upstream response arrives decoded.
	c, br := rawConn(t, base)
	io.WriteString(c, "GET /chunked HTTP/1.0\r\nHost: old.localhost\r\n\r\n")
	all, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(all); !strings.HasPrefix(s, "HTTP/1.1 200") || !strings.HasSuffix(s, "\r\n\r\npath=/chunked") || strings.Contains(s, "chunked\r\n") {
		t.Errorf("HTTP/1.0 response:\n%s", s)
	}

	// Three pipelined requests come back in order on one connection.
	c, br = rawConn(t, base)
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: old.localhost\r\n\r\nGET /2 HTTP/1.1\r\nHost: old.localhost\r\n\r\nGET /3 HTTP/1.1\r\nHost: old.localhost\r\nConnection: close\r\n\r\n")
	for i := 1; i <= 3; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "path=/" + string(rune('0'+i)); string(b) != want {
			t.Errorf("pipelined response %d: %q, want %q", i, b, want)
		}
	}
}

// TestServeShutdown: Shutdown lets a request in progress finish, closes
// idle connections, and makes Serve return http.ErrServerClosed.
func TestServeShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done")
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("sd.localhost", "sd", "sd--000001", addrOf(up))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	base := "http://" + ln.Addr().String()

	idle, idleBr := rawConn(t, base)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: sd.localhost\r\n\r\n")
	if resp, err := http.ReadResponse(idleBr, nil); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}

	busy, busyBr := rawConn(t, base)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: sd.localhost\r\n\r\n")
	<-started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	// The idle connection is closed at once.
	if _, err := idleBr.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: read %v, want EOF", err)
	}
	close(release)
	resp, err := http.ReadResponse(busyBr, nil)
	if err != nil {
		t.Fatalf("request in progress during Shutdown: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "done" || !resp.Close {
		t.Errorf("request in progress: %q close=%v, want done and close", b, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// TestServeProblemBeforeUnreadBodyReachesClient: a problem answered
// without reading a large body must reach the client, not be lost to the
// reset that closing a socket with unread input sends.
func TestServeProblemBeforeUnreadBodyReachesClient(t *testing.T) {
	p := newTestProxy(t, Config{})
	base := startServe(t, p)
	body := strings.Repeat("x", 4<<20)
	for range 3 {
		c, br := rawConn(t, base)
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: nope.localhost\r\nContent-Length: 4194304\r\n\r\n")
			io.WriteString(c, body) // fails once the proxy has closed: fine
		}()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !resp.Close {
			t.Errorf("status %d close %v, want 404 and close", resp.StatusCode, resp.Close)
		}
		c.Close()
		<-sent
	}
}

// TestServeSurvivesUpstreamClosingIdleConnections: an instance may close
// a kept-alive connection at any moment (idle timeouts, restarts). A
// request that meets such a pooled connection is sent on a fresh one: a
// GET after the fact, a POST after checking first, so it is never sent
// twice.
func TestServeSurvivesUpstreamClosingIdleConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var requests, closed atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// One request per connection, then close without saying so.
			br := bufio.NewReader(c)
			req, err := http.ReadRequest(br)
			if err == nil {
				io.Copy(io.Discard, req.Body)
				requests.Add(1)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			c.Close()
			closed.Add(1)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })

	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("idle.localhost", "idle", "idle--000001", ln.Addr().String())})
	base := startServe(t, p)
	c := newClient(t, 1)
	for i := range 20 {
		method, body := "GET", io.Reader(nil)
		if i%2 == 1 {
			method, body = "POST", strings.NewReader("payload")
		}
		// Each request finds the connection of the one before closed.
		waitFor(t, "the upstream to close its connection", func() bool { return closed.Load() == requests.Load() })
		if w := do(t, c, method, base, "idle.localhost", body); w.Code != 200 || w.Body.String() != "ok" {
			t.Fatalf("%s #%d: %d %q", method, i, w.Code, w.Body)
		}
	}
	if n := requests.Load(); n != 20 {
		t.Errorf("the upstream got %d requests for 20 sent", n)
	}
}

// workGoroutines counts the goroutines in server.work, busy or idle.
func workGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "proxy.(*server).work(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestServeReusesConnectionGoroutines: a connection's goroutine waits for
// the next connection once it served its own, at most maxIdleWorkers of
// them after a burst; new connections then start no goroutine, and
// Shutdown ends them all.
func TestServeReusesConnectionGoroutines(t *testing.T) {
	up := startUpstream(t, "w")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("w.localhost", "w", "w--000001", addrOf(up))})
	before := workGoroutines()
	base := startServe(t, p)
	get := func(c net.Conn, br *bufio.Reader, header string) {
		t.Helper()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: w.localhost\r\n"+header+"\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "w" {
			t.Fatalf("GET: %d %q", resp.StatusCode, b)
		}
	}

	// A burst: this many connections open at once, each served.
	const burst = maxIdleWorkers + 72
	conns := make([]net.Conn, burst)
	for i := range conns {
		c, br := rawConn(t, base)
		get(c, br, "")
		conns[i] = c
	}
	if n := workGoroutines() - before; n != burst {
		t.Fatalf("%d connection goroutines for %d open connections", n, burst)
	}
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, fmt.Sprintf("%d idle connection goroutines left after the burst", maxIdleWorkers), func() bool {
		return workGoroutines()-before == maxIdleWorkers
	})

	// One after another, new connections are served by those.
	for i := 0; i < 50; i++ {
		c, br := rawConn(t, base)
		get(c, br, "Connection: close\r\n")
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("after Connection: close: %v, want EOF", err)
		}
		c.Close()
		if n := workGoroutines() - before; n != maxIdleWorkers {
			t.Fatalf("%d connection goroutines after %d sequential connections, want the %d idle ones reused", n, i+1, maxIdleWorkers)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil { // startServe's end checks what Serve returned
		t.Fatal(err)
	}
	waitFor(t, "no connection goroutine after Shutdown", func() bool { return workGoroutines() == before })
}
