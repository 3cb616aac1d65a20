package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/selfsigned"
)

// testCert returns a server configuration with a certificate for
// 127.0.0.1 made for this test, and a pool that trusts it.
func testCert(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	c, err := selfsigned.New("baton proxy test")
	if err != nil {
		t.Fatal(err)
	}
	return c.Config(), c.Pool
}

// startServeTLS runs p with ServeTLS on a loopback listener until the test
// ends; it returns the base URL and a pool that trusts the certificate.
// The certificate is picked per handshake by Certs, as baton serve does.
func startServeTLS(t testing.TB, p *Proxy) (string, *x509.CertPool) {
	t.Helper()
	static, pool := testCert(t)
	cfg := &tls.Config{GetCertificate: NewCerts(static.Certificates, nil, 0).GetCertificate}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.ServeTLS(ln, cfg) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS returned %v, want http.ErrServerClosed", err)
		}
	})
	return "https://" + ln.Addr().String(), pool
}

// tlsClient returns a client that trusts pool and speaks h2 (ALPN h2 and
// HTTP/2 only) or HTTP/1.1 over TLS, with up to n connections.
func tlsClient(t testing.TB, pool *x509.CertPool, h2 bool, n int) *http.Client {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: n, MaxConnsPerHost: n, DisableCompression: true,
	}
	tr.Protocols = new(http.Protocols)
	if h2 {
		tr.Protocols.SetHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// tlsFront is one protocol the TLS listener speaks, with a client for it.
type tlsFront struct {
	name   string
	url    string
	client *http.Client
	major  int // the response's ProtoMajor
}

// tlsFronts serves p with ServeTLS and returns an h2 and an HTTP/1.1
// client for it.
func tlsFronts(t testing.TB, p *Proxy) []tlsFront {
	t.Helper()
	base, pool := startServeTLS(t, p)
	return []tlsFront{
		{"h2", base, tlsClient(t, pool, true, 1), 2},
		{"HTTP/1.1+TLS", base, tlsClient(t, pool, false, 1), 1},
	}
}

// doTLS is do through f, checking the protocol the response came back in.
func doTLS(t testing.TB, f tlsFront, method, host string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, f.url, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	if resp.ProtoMajor != f.major || resp.TLS == nil {
		t.Fatalf("response in %s (TLS %v), want HTTP/%d over TLS", resp.Proto, resp.TLS != nil, f.major)
	}
	return resp, string(b)
}

// problemOf checks that a response is an RFC 9457 problem with status.
func problemOf(t testing.TB, resp *http.Response, body string, status int) problem {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d (%s), want a %d problem; body %s", resp.StatusCode, resp.Header.Get("Content-Type"), status, body)
	}
	var pb problem
	if err := json.Unmarshal([]byte(body), &pb); err != nil || pb.Status != status || pb.Detail == "" {
		t.Fatalf("problem body %q: %v", body, err)
	}
	return pb
}

// TestServeTLSRoutesAndForwards: over h2 and HTTP/1.1+TLS alike, requests
// route by Host (:authority for h2), the upstream learns the client spoke
// https, and the proxy's problems are RFC 9457 problems: 404 for an
// unknown host or revision, 502 when the instance is down, 504 when it is
// slow.
func TestServeTLSRoutesAndForwards(t *testing.T) {
	echo := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		h := map[string]string{"host": r.Host, "proto": r.Proto}
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
			h[k] = strings.Join(r.Header[k], ",")
		}
		json.NewEncoder(w).Encode(h)
	})
	release := make(chan struct{})
	defer close(release)
	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	p := newTestProxy(t, Config{UpstreamHeaderTimeout: 200 * time.Millisecond})
	p.SetRoutes([]Route{
		route1("fw.localhost", "fw", "fw--000001", addrOf(echo)),
		route1("dead.localhost", "dead", "dead--000001", deadAddr(t)),
		route1("slow.localhost", "slow", "slow--000001", addrOf(slow)),
	})
	for _, f := range tlsFronts(t, p) {
		t.Run(f.name, func(t *testing.T) {
			resp, body := doTLS(t, f, "GET", "fw.localhost:8443", "X-Forwarded-Proto", "http", "Forwarded", "proto=http")
			var got map[string]string
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
			}
			want := map[string]string{
				"host": "fw.localhost:8443", "proto": "HTTP/1.1",
				"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "fw.localhost:8443", "X-Forwarded-Proto": "https",
				"Forwarded": `for=127.0.0.1;host="fw.localhost:8443";proto=https`,
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("upstream saw %s = %q, want %q", k, got[k], v)
				}
			}
			resp, body = doTLS(t, f, "GET", "nope.localhost")
			problemOf(t, resp, body, http.StatusNotFound)
			resp, body = doTLS(t, f, "GET", "fw.localhost", PinHeader, "fw--000009")
			problemOf(t, resp, body, http.StatusNotFound)
			resp, body = doTLS(t, f, "GET", "dead.localhost")
			problemOf(t, resp, body, http.StatusBadGateway)
			resp, body = doTLS(t, f, "GET", "slow.localhost")
			if pb := problemOf(t, resp, body, http.StatusGatewayTimeout); !strings.Contains(pb.Detail, "200ms") {
				t.Errorf("504 detail %q does not name the timeout", pb.Detail)
			}
			// The connection goes on after problems.
			if resp, _ := doTLS(t, f, "GET", "fw.localhost"); resp.StatusCode != 200 {
				t.Errorf("after problems: %d", resp.StatusCode)
			}
		})
	}
}

// TestServeTLSStickyCookieAndPin: the baton_revision cookie keeps an h2
// or HTTP/1.1+TLS client on its revision; Baton-Revision pins one.
func TestServeTLSStickyCookieAndPin(t *testing.T) {
	one, two, canary := startUpstream(t, "one"), startUpstream(t, "two"), startUpstream(t, "canary")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{{Host: "s.localhost", App: "s", Slot: "production", Backends: []Backend{
		{Revision: "s--000001", Weight: 50, Addrs: []string{addrOf(one)}},
		{Revision: "s--000002", Weight: 50, Addrs: []string{addrOf(two)}},
		{Revision: "s--000003", Weight: 0, Addrs: []string{addrOf(canary)}},
	}}})
	revOf := map[string]string{"s--000001": "one", "s--000002": "two"}
	for _, f := range tlsFronts(t, p) {
		t.Run(f.name, func(t *testing.T) {
			resp, body := doTLS(t, f, "GET", "s.localhost")
			rev, attrs := parseSetCookie(t, resp.Header.Values("Set-Cookie"))
			if revOf[rev] != body {
				t.Fatalf("cookie names %q but %q served", rev, body)
			}
			// Over TLS the browser must never send it over plain HTTP.
			if cs := resp.Cookies(); len(cs) != 1 || !cs[0].Secure {
				t.Fatalf("sticky cookie over TLS is not Secure: %q", attrs)
			}
			for range 20 {
				resp, body := doTLS(t, f, "GET", "s.localhost", "Cookie", "other=1; "+CookieName+"="+rev)
				if body != revOf[rev] || len(resp.Header.Values("Set-Cookie")) > 0 {
					t.Fatalf("with the cookie for %s: served by %q, Set-Cookie %v", rev, body, resp.Header.Values("Set-Cookie"))
				}
			}
			if _, body := doTLS(t, f, "GET", "s.localhost", PinHeader, "s--000003"); body != "canary" {
				t.Errorf("pinned to the canary: served by %q", body)
			}
		})
	}
}

// TestServeTLSStreamsEvents: Server-Sent Events reach the client as they
// are sent, over h2 and HTTP/1.1+TLS.
func TestServeTLSStreamsEvents(t *testing.T) {
	release := make(chan struct{})
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: two\n\n")
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("sse.localhost", "sse", "sse--000001", addrOf(up))})
	for _, f := range tlsFronts(t, p) {
		t.Run(f.name, func(t *testing.T) {
			release = make(chan struct{})
			req, _ := http.NewRequest(http.MethodGet, f.url+"/", nil)
			req.Host = "sse.localhost"
			resp, err := f.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != f.major {
				t.Fatalf("response in %s", resp.Proto)
			}
			// The first event must arrive while the upstream holds the
			// stream open; a buffering proxy would block here.
			br := bufio.NewReader(resp.Body)
			if line, err := br.ReadString('\n'); err != nil || line != "data: one\n" {
				t.Fatalf("first event: %q %v", line, err)
			}
			close(release)
			if rest, _ := io.ReadAll(br); !strings.Contains(string(rest), "data: two") {
				t.Fatalf("rest of stream: %q", rest)
			}
		})
	}
}

// TestServeTLSH2StreamOutlivesHandshakeDeadline: the handshake's deadline
// does not stay on an h2 connection: a stream longer than it (and than the
// idle timeout, which only counts while no stream is open) goes on.
func TestServeTLSH2StreamOutlivesHandshakeDeadline(t *testing.T) {
	const events = 12
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		tick := time.NewTicker(50 * time.Millisecond) // a slow stream, 600 ms in all
		defer tick.Stop()
		for i := range events {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			<-tick.C
		}
	})
	p := newTestProxy(t, Config{IdleTimeout: 200 * time.Millisecond})
	p.SetRoutes([]Route{route1("slow.localhost", "slow", "slow--000001", addrOf(up))})
	f := tlsFronts(t, p)[0]
	if _, body := doTLS(t, f, "GET", "slow.localhost"); strings.Count(body, "data:") != events {
		t.Fatalf("stream cut short: %q", body)
	}
}

// TestServeTLSDrainWaitsForH2Stream: a request streaming from the old
// revision over h2 is counted: the drain waits for it, it finishes whole,
// and new streams on the same connection go to the new revision at once.
func TestServeTLSDrainWaitsForH2Stream(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	old := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "old:first;")
		w.(http.Flusher).Flush()
		close(started)
		<-release
		io.WriteString(w, "old:last")
		finished.Store(true)
	})
	fresh := startUpstream(t, "new")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("d.localhost", "d", "d--000001", addrOf(old))})
	f := tlsFronts(t, p)[0] // h2: every request is a stream on one connection

	type result struct {
		body  string
		proto string
		err   error
	}
	slow := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, f.url+"/", nil)
		req.Host = "d.localhost"
		resp, err := f.client.Do(req)
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{string(b), resp.Proto, err}
	}()
	<-started
	if n := p.InFlight(addrOf(old)); n != 1 {
		t.Fatalf("InFlight(old) = %d with an h2 stream open, want 1", n)
	}

	p.SetRoutes([]Route{route1("d.localhost", "d", "d--000002", addrOf(fresh))})
	if _, body := doTLS(t, f, "GET", "d.localhost"); body != "new" {
		t.Fatalf("a new stream after the switch was served by %q", body)
	}
	// A drain that runs out of time says what it waited for.
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Drain(short, []string{addrOf(old)}); err == nil || !strings.Contains(err.Error(), "1 request still in flight") {
		t.Fatalf("Drain with a stream in flight = %v, want it to wait and name 1 request", err)
	}

	drained := make(chan bool, 1)
	go func() {
		err := p.Drain(context.Background(), []string{addrOf(old)})
		drained <- err == nil && finished.Load()
	}()
	close(release)
	if ok := <-drained; !ok {
		t.Fatal("Drain returned before the in-flight stream finished, or failed")
	}
	if r := <-slow; r.err != nil || r.body != "old:first;old:last" || r.proto != "HTTP/2.0" {
		t.Fatalf("in-flight stream: %q %s %v, want the whole body over HTTP/2", r.body, r.proto, r.err)
	}
	if n := p.InFlight(addrOf(old)); n != 0 {
		t.Errorf("InFlight(old) after the drain = %d", n)
	}
}

// TestServeTLSSwitchUnderLoadLosesNoRequest is the zero-failure contract
// over TLS: 16 concurrent h2 streams on one connection, and 16
// HTTP/1.1+TLS connections, while the routes move 50 times.
func TestServeTLSSwitchUnderLoadLosesNoRequest(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		name := map[bool]string{true: "h2", false: "HTTP/1.1+TLS"}[h2]
		t.Run(name, func(t *testing.T) {
			p := newTestProxy(t, Config{})
			base, pool := startServeTLS(t, p)
			switchUnderLoadWith(t, p, base, tlsClient(t, pool, h2, 16), 16)
		})
	}
}

// TestServeTLSShutdown: Shutdown sends h2 clients a GOAWAY and lets their
// streams in progress finish, closes idle HTTP/1.1+TLS connections, and
// ServeTLS returns http.ErrServerClosed.
func TestServeTLSShutdown(t *testing.T) {
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
	cfg, pool := testCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.ServeTLS(ln, cfg) }()
	base := "https://" + ln.Addr().String()

	// An idle HTTP/1.1 connection over TLS.
	idle, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetDeadline(time.Now().Add(30 * time.Second))
	idleBr := bufio.NewReader(idle)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: sd.localhost\r\n\r\n")
	if resp, err := http.ReadResponse(idleBr, nil); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}

	// An h2 stream in progress.
	h2 := tlsClient(t, pool, true, 1)
	slow := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/slow", nil)
		req.Host = "sd.localhost"
		resp, err := h2.Do(req)
		if err != nil {
			slow <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			slow <- err.Error()
			return
		}
		slow <- resp.Proto + " " + string(b)
	}()
	<-started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	if _, err := idleBr.ReadByte(); err == nil {
		t.Errorf("idle HTTP/1.1+TLS connection still open after Shutdown began")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with an h2 stream in progress", err)
	default:
	}
	close(release)
	if got := <-slow; got != "HTTP/2.0 done" {
		t.Errorf("h2 stream in progress during Shutdown: %q, want it to finish", got)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("ServeTLS: %v", err)
	}
	if p.InFlight(addrOf(up)) != 0 {
		t.Errorf("a request is still counted after Shutdown")
	}
}

// TestServeTLSWebSocket: an HTTP/1.1 upgrade works over TLS, is counted in
// flight, and a drain that gives up ends it with a "going away" close.
func TestServeTLSWebSocket(t *testing.T) {
	oldAddr := startWebSocketEcho(t, "old")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("ws.localhost", "ws", "ws--000001", oldAddr)})
	base, pool := startServeTLS(t, p)

	c, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if c.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("ALPN chose %q over h2", c.ConnectionState().NegotiatedProtocol)
	}
	c.Close()

	c, err = tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade over TLS: %v %v", resp, err)
	}
	if got := echo(t, c, br, "a"); got != "old:a" {
		t.Fatalf("echo %q", got)
	}
	big := strings.Repeat("x", 100<<10)
	if got := echo(t, c, br, big); got != "old:"+big {
		t.Fatalf("large echo over TLS: %d bytes", len(got))
	}
	if n := p.InFlight(oldAddr); n != 1 {
		t.Fatalf("InFlight = %d with a WebSocket open, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Drain(ctx, []string{oldAddr}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain = %v, want it to wait for the WebSocket until its deadline", err)
	}
	op, payload, err := readFrame(br)
	if err != nil || op != 0x8 || len(payload) < 2 || binary.BigEndian.Uint16(payload) != 1001 {
		t.Fatalf("after the drain gave up: op %d payload %v err %v, want close frame 1001", op, payload, err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the close frame: %v, want EOF (TLS close_notify)", err)
	}
	c.Close()
	waitFor(t, "the WebSocket to leave the count", func() bool { return p.InFlight(oldAddr) == 0 })
}

// TestServeTLSAnswersPlainHTTP: a plain HTTP request to the TLS listener
// gets a problem saying to use https.
func TestServeTLSAnswersPlainHTTP(t *testing.T) {
	p := newTestProxy(t, Config{})
	base, _ := startServeTLS(t, p)
	w := do(t, newClient(t, 1), "GET", "http://"+strings.TrimPrefix(base, "https://"), "a.localhost", nil)
	pb := decodeProblem(t, w, http.StatusBadRequest)
	if !strings.Contains(pb.Detail, "https://") {
		t.Errorf("detail %q does not say to use https", pb.Detail)
	}
}

// TestServeHTTPRefusesConnect: CONNECT (which is also how WebSockets over
// HTTP/2 would arrive) is refused with a problem, as on the data plane.
func TestServeHTTPRefusesConnect(t *testing.T) {
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("a.localhost", "a", "a--000001", addrOf(startUpstream(t, "a")))})
	decodeProblem(t, serve(t, p, http.MethodConnect, "a.localhost"), http.StatusMethodNotAllowed)
}

func TestServeTLSNeedsACertificate(t *testing.T) {
	p := newTestProxy(t, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ServeTLS(ln, &tls.Config{}); err == nil {
		t.Fatal("ServeTLS without a certificate served")
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener left open: %v", err)
	}
}
