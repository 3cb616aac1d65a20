package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// This file holds black-box tests of ServeTLS's HTTP/2: what an h2 client
// sees (bodies, trailers, 1xx, resets, concurrency, flow control) and how
// the server answers frames only a hand-written client sends. They hold
// whatever implements the HTTP/2 server; tls_test.go, h2conn_test.go and
// h2spec_test.go test the rest (routing, draining, shutdown, malformed
// requests, repeated settings, conformance).

// h2bBodySize is the size of the large bodies: far past every initial
// flow-control window (65,535 bytes) and past the client's.
const h2bBodySize = 8 << 20

// h2bBlob is h2bBodySize deterministic pseudo-random bytes.
var h2bBlob = sync.OnceValue(func() []byte {
	r := rand.NewChaCha8([32]byte{'b', 'a', 't', 'o', 'n'})
	b := make([]byte, h2bBodySize)
	r.Read(b)
	return b
})

func h2bSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// h2bClient returns a client for the proxy at base that trusts pool and
// sends every request on one h2 connection of its own (a net/http
// ClientConn), made before it returns and closed when the test ends:
// requests past the server's MAX_CONCURRENT_STREAMS wait for a stream.
// (A Transport with StrictMaxConcurrentRequests, alone or with
// MaxConnsPerHost 1, loses such requests now and then under the race
// detector: it hangs them, here and against net/http's own server;
// golang/go#70809 and #34941.) Its receive windows are small, 64 KiB a
// stream and 256 KiB the connection, so that a large response needs many
// WINDOW_UPDATEs.
func h2bClient(t testing.TB, base string, pool *x509.CertPool) *http.Client {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:    &tls.Config{RootCAs: pool},
		DisableCompression: true,
		HTTP2: &http.HTTP2Config{
			MaxReceiveBufferPerStream:     64 << 10,
			MaxReceiveBufferPerConnection: 256 << 10,
		},
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cc, err := tr.NewClientConn(ctx, "https", strings.TrimPrefix(base, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return &http.Client{Transport: cc, Timeout: 2 * time.Minute}
}

// h2bResult is one request's outcome, for requests sent from goroutines.
type h2bResult struct {
	status int
	proto  int
	body   []byte
	err    error
}

// h2bDo sends req with c and reads the whole response.
func h2bDo(c *http.Client, req *http.Request) h2bResult {
	resp, err := c.Do(req)
	if err != nil {
		return h2bResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return h2bResult{resp.StatusCode, resp.ProtoMajor, b, err}
}

// h2bRequest is a request for host through the proxy at base.
func h2bRequest(t testing.TB, ctx context.Context, method, base, host, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	return req
}

// TestH2LargeResponseBodyIntact: an 8 MiB response reaches an h2 client
// whose windows are 64 KiB byte for byte, alone and as 8 concurrent
// streams on one connection: the server sends no more than the windows
// allow (the client would reset the connection) and loses nothing.
func TestH2LargeResponseBodyIntact(t *testing.T) {
	blob := h2bBlob()
	want := h2bSum(blob)
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.URL.Path == "/sized" {
			w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
		}
		w.Write(blob)
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("big.localhost", "big", "big--000001", addrOf(up))})
	base, pool := startServeTLS(t, p)
	c := h2bClient(t, base, pool)

	check := func(what string, r h2bResult) {
		t.Helper()
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		if r.status != 200 || r.proto != 2 {
			t.Fatalf("%s: status %d over HTTP/%d, want 200 over HTTP/2", what, r.status, r.proto)
		}
		if len(r.body) != len(blob) || h2bSum(r.body) != want {
			t.Fatalf("%s: got %d bytes (sha256 %s), want %d bytes (sha256 %s)", what, len(r.body), h2bSum(r.body), len(blob), want)
		}
	}
	for _, path := range []string{"/sized", "/chunked"} {
		check(path, h2bDo(c, h2bRequest(t, t.Context(), "GET", base, "big.localhost", path, nil)))
	}

	const n = 8
	results := make(chan h2bResult, n)
	for i := range n {
		path := []string{"/sized", "/chunked"}[i%2]
		req := h2bRequest(t, t.Context(), "GET", base, "big.localhost", path, nil)
		go func() { results <- h2bDo(c, req) }()
	}
	for i := range n {
		check(fmt.Sprintf("concurrent request %d", i), <-results)
	}
}

// TestH2LargeRequestBodyIntact: an 8 MiB request body reaches the
// upstream whole over h2, sent with a content-length and streamed
// without one.
func TestH2LargeRequestBodyIntact(t *testing.T) {
	blob := h2bBlob()
	want := h2bSum(blob)
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x %d", n, h.Sum(nil), r.ContentLength)
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("up.localhost", "up", "up--000001", addrOf(up))})
	base, pool := startServeTLS(t, p)
	c := h2bClient(t, base, pool)

	check := func(what string, r h2bResult) (upstreamLength string) {
		t.Helper()
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		if r.status != 200 || r.proto != 2 {
			t.Fatalf("%s: status %d over HTTP/%d (%q), want 200 over HTTP/2", what, r.status, r.proto, r.body)
		}
		f := strings.Fields(string(r.body))
		if len(f) != 3 || f[0] != strconv.Itoa(len(blob)) || f[1] != want {
			t.Fatalf("%s: the upstream read %q, want %d bytes with sha256 %s", what, r.body, len(blob), want)
		}
		return f[2]
	}

	req := h2bRequest(t, t.Context(), "POST", base, "up.localhost", "/", bytes.NewReader(blob))
	if req.ContentLength != int64(len(blob)) {
		t.Fatalf("request ContentLength %d", req.ContentLength)
	}
	cl := check("with content-length", h2bDo(c, req))
	t.Logf("with content-length, the upstream saw ContentLength %s", cl)

	pr, pw := io.Pipe()
	t.Cleanup(func() { pr.Close() })
	wrote := make(chan error, 1)
	go func() {
		var err error
		for b := blob; len(b) > 0 && err == nil; {
			k := min(len(b), 37<<10) // not a multiple of any frame or window
			_, err = pw.Write(b[:k])
			b = b[k:]
		}
		pw.CloseWithError(err)
		wrote <- err
	}()
	req = h2bRequest(t, t.Context(), "POST", base, "up.localhost", "/", pr)
	if req.ContentLength != 0 && req.ContentLength != -1 {
		t.Fatalf("streamed request ContentLength %d", req.ContentLength)
	}
	cl = check("streamed", h2bDo(c, req))
	t.Logf("streamed, the upstream saw ContentLength %s", cl)
	if err := <-wrote; err != nil {
		t.Errorf("writing the streamed body: %v", err)
	}
}

// TestH2Trailers: trailers pass the proxy both ways over h2. The
// upstream's response trailers, declared in its Trailer field or not
// (http.TrailerPrefix), reach the client in resp.Trailer; the client's
// request trailers reach the upstream in r.Trailer.
func TestH2Trailers(t *testing.T) {
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("X-Got-Body", string(b))
			w.Header().Set("X-Got-Trailer", r.Trailer.Get("X-Req-Sum"))
			return
		}
		w.Header().Set("Trailer", "X-Sum, X-Count")
		io.WriteString(w, "part one;")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part two")
		w.Header().Set("X-Sum", "c0ffee")
		w.Header().Set("X-Count", "2")
		w.Header().Set(http.TrailerPrefix+"X-Late", "undeclared")
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("tr.localhost", "tr", "tr--000001", addrOf(up))})
	base, pool := startServeTLS(t, p)
	c := h2bClient(t, base, pool)

	resp, err := c.Do(h2bRequest(t, t.Context(), "GET", base, "tr.localhost", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "part one;part two" || resp.ProtoMajor != 2 {
		t.Fatalf("body %q over HTTP/%d: %v", b, resp.ProtoMajor, err)
	}
	for k, v := range map[string]string{"X-Sum": "c0ffee", "X-Count": "2", "X-Late": "undeclared"} {
		if got := resp.Trailer.Get(k); got != v {
			t.Errorf("response trailer %s = %q, want %q (trailers %v)", k, got, v, resp.Trailer)
		}
	}

	// A body of unknown length, so that the trailers follow DATA frames.
	req := h2bRequest(t, t.Context(), "POST", base, "tr.localhost", "/", io.NopCloser(strings.NewReader("request body")))
	req.Trailer = http.Header{"X-Req-Sum": {"beef"}}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Got-Body") != "request body" {
		t.Fatalf("POST with trailers: %d, the upstream read %q", resp.StatusCode, resp.Header.Get("X-Got-Body"))
	}
	if got := resp.Header.Get("X-Got-Trailer"); got != "beef" {
		t.Errorf("the upstream saw request trailer X-Req-Sum = %q, want %q", got, "beef")
	}
}

// TestH2ClientResetEndsUpstreamRequest: a client that resets its stream
// while the response streams ends the upstream's request (its context is
// done), and the connection goes on: the next request on it is served.
func TestH2ClientResetEndsUpstreamRequest(t *testing.T) {
	started := make(chan struct{}, 1)
	ended := make(chan struct{}, 1)
	quit := make(chan struct{})
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stream" {
			io.WriteString(w, "next")
			return
		}
		io.WriteString(w, "first chunk\n")
		w.(http.Flusher).Flush()
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			ended <- struct{}{}
		case <-quit:
		}
	})
	t.Cleanup(func() { close(quit) }) // before the upstream's Close waits for it
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("rst.localhost", "rst", "rst--000001", addrOf(up))})
	base, pool := startServeTLS(t, p)
	c := h2bClient(t, base, pool)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp, err := c.Do(h2bRequest(t, ctx, "GET", base, "rst.localhost", "/stream", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("response over %s", resp.Proto)
	}
	buf := make([]byte, len("first chunk\n"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first chunk\n" {
		t.Fatalf("first chunk: %q %v", buf, err)
	}
	<-started
	cancel() // the Transport resets the stream (RST_STREAM CANCEL)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream's request went on for 10 s after the client reset its stream")
	}
	if _, err := resp.Body.Read(buf); err == nil {
		t.Errorf("the reset response's body still reads")
	}

	// On the same connection: c has only the one.
	r := h2bDo(c, h2bRequest(t, t.Context(), "GET", base, "rst.localhost", "/", nil))
	if r.err != nil || r.status != 200 || string(r.body) != "next" {
		t.Fatalf("the request after the reset: %d %q %v", r.status, r.body, r.err)
	}
	if err := c.Transport.(*http.ClientConn).Err(); err != nil {
		t.Errorf("the connection failed: %v", err)
	}
}

// TestH2ManyConcurrentStreams: 300 concurrent requests on one h2
// connection, more than the server lets open at once (net/http: 250), all
// get their own response. The first 100 (the least MAX_CONCURRENT_STREAMS
// RFC 9113 §6.5.2 recommends) are held at the upstream until all 100 are
// there, so that that many streams are open at once for certain.
func TestH2ManyConcurrentStreams(t *testing.T) {
	const n, together = 300, 100
	var arrived atomic.Int64
	all := make(chan struct{})
	quit := make(chan struct{})
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		switch k := arrived.Add(1); {
		case k == together:
			close(all)
		case k < together:
			select {
			case <-all:
			case <-quit:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "answer to "+r.URL.Path)
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("many.localhost", "many", "many--000001", addrOf(up))})
	base, pool := startServeTLS(t, p)
	c := h2bClient(t, base, pool)

	results := make([]h2bResult, n)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		// After a failure: let the upstream answer, end the requests.
		close(quit)
		c.Transport.(*http.ClientConn).Close()
		wg.Wait()
	})
	for i := range n {
		req := h2bRequest(t, t.Context(), "GET", base, "many.localhost", "/r"+strconv.Itoa(i), nil)
		wg.Go(func() { results[i] = h2bDo(c, req) })
	}
	select {
	case <-all:
	case <-time.After(20 * time.Second):
		t.Fatalf("only %d requests reached the upstream together in 20 s, want %d", arrived.Load(), together)
	}
	wg.Wait()
	failed := 0
	for i, r := range results {
		want := "answer to /r" + strconv.Itoa(i)
		if r.err != nil || r.status != 200 || r.proto != 2 || string(r.body) != want {
			if failed++; failed <= 5 {
				t.Errorf("request %d: %d over HTTP/%d %q %v, want 200 over HTTP/2 %q", i, r.status, r.proto, r.body, r.err, want)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed", failed, n)
	}
}

// TestH2HeadHasNoBody: a HEAD over h2 gets the upstream's status and
// Content-Length and no body, and the stream after it is unharmed.
func TestH2HeadHasNoBody(t *testing.T) {
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		status, size := http.StatusOK, 12345
		if r.URL.Path == "/missing" {
			status, size = http.StatusNotFound, 42
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Header().Set("X-Head", r.Method)
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			w.Write(bytes.Repeat([]byte{'g'}, size))
		}
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("head.localhost", "head", "head--000001", addrOf(up))})
	base, pool := startServeTLS(t, p)
	c := h2bClient(t, base, pool)

	for _, tc := range []struct {
		path   string
		status int
		size   string
	}{{"/", 200, "12345"}, {"/missing", 404, "42"}} {
		resp, err := c.Do(h2bRequest(t, t.Context(), "HEAD", base, "head.localhost", tc.path, nil))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(b) != 0 {
			t.Errorf("HEAD %s: body %q %v, want none", tc.path, b, err)
		}
		if resp.ProtoMajor != 2 || resp.StatusCode != tc.status || resp.Header.Get("X-Head") != "HEAD" {
			t.Errorf("HEAD %s: %d over HTTP/%d (X-Head %q), want %d over HTTP/2 from the upstream", tc.path, resp.StatusCode, resp.ProtoMajor, resp.Header.Get("X-Head"), tc.status)
		}
		if got := resp.Header.Get("Content-Length"); got != tc.size {
			t.Errorf("HEAD %s: Content-Length %q, want the upstream's %q", tc.path, got, tc.size)
		}
	}
	r := h2bDo(c, h2bRequest(t, t.Context(), "GET", base, "head.localhost", "/", nil))
	if r.err != nil || r.status != 200 || len(r.body) != 12345 {
		t.Errorf("GET after the HEADs: %d, %d bytes, %v", r.status, len(r.body), r.err)
	}
}

// TestH2EarlyHintsRelayed: an upstream's 103 Early Hints reaches the h2
// client, with its Link field, before the final response.
func TestH2EarlyHintsRelayed(t *testing.T) {
	const link = "</style.css>; rel=preload; as=style"
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", link)
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "final body")
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("hints.localhost", "hints", "hints--000001", addrOf(up))})
	base, pool := startServeTLS(t, p)
	c := h2bClient(t, base, pool)

	var mu sync.Mutex
	var interim []string
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			mu.Lock()
			defer mu.Unlock()
			interim = append(interim, fmt.Sprintf("%d %s", code, strings.Join(h["Link"], ", ")))
			return nil
		},
	})
	r := h2bDo(c, h2bRequest(t, ctx, "GET", base, "hints.localhost", "/", nil))
	if r.err != nil || r.status != 200 || r.proto != 2 || string(r.body) != "final body" {
		t.Fatalf("final response: %d over HTTP/%d %q %v", r.status, r.proto, r.body, r.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(interim) != 1 || interim[0] != "103 "+link {
		t.Errorf("interim responses %q, want one 103 with Link %q", interim, link)
	}
}

// h2bAwait reads frames from h until match takes one, acknowledging the
// server's SETTINGS and PINGs on the way; it fails the test when the
// connection ends or the read deadline (set by the caller) passes.
func h2bAwait(t testing.TB, h *h2Client, what string, match func(http2.Frame) bool) http2.Frame {
	t.Helper()
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(f) {
			return f
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				h.fr.WritePing(true, f.Data)
			}
		}
	}
}

// h2bAwaitClose reads from h until the connection ends, which it must
// before the read deadline; the frames before the end do not matter.
func h2bAwaitClose(t testing.TB, h *h2Client, what string) {
	t.Helper()
	for {
		_, err := h.fr.ReadFrame()
		if err == nil {
			continue // e.g. a second GOAWAY, or a WINDOW_UPDATE sent before
		}
		if isTimeout(err) {
			t.Fatalf("%s: the connection is still open: %v", what, err)
		}
		return
	}
}

// TestH2PingIsAcked: the server answers a PING with a PING carrying the
// ACK flag and the same 8 bytes, each of two in turn.
func TestH2PingIsAcked(t *testing.T) {
	p := newTestProxy(t, Config{})
	base, pool := startServeTLS(t, p)
	h := dialH2(t, base, pool)
	h.c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, data := range [][8]byte{{1, 2, 3, 4, 5, 6, 7, 8}, {'b', 'a', 't', 'o', 'n', 'h', '2', '!'}} {
		if err := h.fr.WritePing(false, data); err != nil {
			t.Fatal(err)
		}
		f := h2bAwait(t, h, "the PING's ACK", func(f http2.Frame) bool {
			_, ping := f.(*http2.PingFrame)
			_, goaway := f.(*http2.GoAwayFrame)
			return ping || goaway
		})
		ping, ok := f.(*http2.PingFrame)
		if !ok || !ping.IsAck() || ping.Data != data || ping.StreamID != 0 {
			t.Fatalf("after PING %q: got %v, want a PING ACK with the same data", data, f)
		}
	}
}

// TestH2RapidResetIsBounded: a client that opens 2,000 streams and
// resets each at once (CVE-2023-44487) neither takes the proxy down nor
// makes it send the upstream more than it asked for: the connection
// either goes on, serving a last normal stream, or ends with a GOAWAY,
// and a new connection is served.
func TestH2RapidResetIsBounded(t *testing.T) {
	const resets = 2000
	var reached atomic.Int64
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reset" {
			reached.Add(1)
		}
		io.WriteString(w, "served "+r.URL.Path)
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("rr.localhost", "rr", "rr--000001", addrOf(up))})
	base, pool := startServeTLS(t, p)
	h := dialH2(t, base, pool)
	h.c.SetDeadline(time.Now().Add(60 * time.Second))

	const last = 2*resets + 1 // the stream after the resets
	type goAway struct {
		code     http2.ErrCode
		lastID   uint32
		debugMsg string
	}
	var (
		wmu     sync.Mutex // the Framer's writes: here and in the reader
		goaways = make(chan goAway, 8)
		lastRes = make(chan string, 1) // the last stream's status and body
		ended   = make(chan error, 1)
		done    = make(chan struct{})
	)
	sendLast := func(res string) {
		select {
		case lastRes <- res:
		default:
		}
	}
	go func() {
		defer close(done)
		var status string
		var body []byte
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				ended <- err
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					wmu.Lock()
					h.fr.WriteSettingsAck()
					wmu.Unlock()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					wmu.Lock()
					h.fr.WritePing(true, f.Data)
					wmu.Unlock()
				}
			case *http2.GoAwayFrame:
				select {
				case goaways <- goAway{f.ErrCode, f.LastStreamID, string(f.DebugData())}:
				default:
				}
			case *http2.MetaHeadersFrame:
				if f.StreamID == last {
					status = f.PseudoValue("status")
					if f.StreamEnded() {
						sendLast(status)
					}
				}
			case *http2.DataFrame:
				if f.StreamID == last {
					body = append(body, f.Data()...)
					if f.StreamEnded() {
						sendLast(status + " " + string(body))
					}
				}
			case *http2.RSTStreamFrame:
				if f.StreamID == last {
					sendLast("reset " + f.ErrCode.String())
				}
			}
		}
	}()
	t.Cleanup(func() {
		h.c.Close()
		<-done
	})

	writeGet := func(stream uint32, path string, reset bool) error {
		wmu.Lock()
		defer wmu.Unlock()
		h.hbuf.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", path}, {":authority", "rr.localhost"}} {
			h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: h.hbuf.Bytes(), EndStream: true, EndHeaders: true})
		if err == nil && reset {
			err = h.fr.WriteRSTStream(stream, http2.ErrCodeCancel)
		}
		return err
	}
	var (
		werr error
		sent int
		ga   *goAway
	)
	for i := 0; i < resets && werr == nil && ga == nil; i++ {
		if werr = writeGet(uint32(2*i+1), "/reset", true); werr == nil {
			sent++
		}
		select {
		case g := <-goaways:
			ga = &g
		default:
		}
	}
	if ga == nil && werr == nil {
		werr = writeGet(last, "/last", false)
	}
	if ga == nil {
		select {
		case res := <-lastRes:
			if res != "200 served /last" {
				t.Errorf("the stream after the resets: %q, want a 200 with the upstream's body", res)
			}
		case g := <-goaways:
			ga = &g
		case err := <-ended:
			t.Fatalf("the connection ended without a GOAWAY (%v) after %d streams reset (write error %v)", err, sent, werr)
		case <-time.After(30 * time.Second):
			t.Fatalf("no answer to the stream after %d resets, nor a GOAWAY, in 30 s (write error %v)", sent, werr)
		}
	}
	if ga != nil {
		t.Logf("the proxy sent GOAWAY(%v, last stream %d, %q) after %d streams reset", ga.code, ga.lastID, ga.debugMsg, sent)
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Errorf("the connection stayed open 10 s after its GOAWAY")
		}
	} else {
		t.Logf("the connection went on after %d streams reset", sent)
	}

	c := h2bClient(t, base, pool)
	if r := h2bDo(c, h2bRequest(t, t.Context(), "GET", base, "rr.localhost", "/fresh", nil)); r.err != nil || r.status != 200 || string(r.body) != "served /fresh" {
		t.Errorf("a new connection after the resets: %d %q %v", r.status, r.body, r.err)
	}
	n := reached.Load()
	t.Logf("the upstream saw %d of %d reset requests", n, sent)
	if n > int64(sent) {
		t.Errorf("the upstream saw %d requests for %d streams reset", n, sent)
	}
}

// TestH2IdleConnectionGetsGoaway: an h2 connection without streams for
// the idle timeout gets a GOAWAY (NO_ERROR) and is closed, not before.
func TestH2IdleConnectionGetsGoaway(t *testing.T) {
	const idle = 300 * time.Millisecond
	p := newTestProxy(t, Config{IdleTimeout: idle})
	base, pool := startServeTLS(t, p)
	start := time.Now()
	h := dialH2(t, base, pool)
	h.c.SetDeadline(time.Now().Add(10 * time.Second))
	f := h2bAwait(t, h, "a GOAWAY on the idle connection", func(f http2.Frame) bool {
		_, ok := f.(*http2.GoAwayFrame)
		return ok
	})
	took := time.Since(start)
	if ga := f.(*http2.GoAwayFrame); ga.ErrCode != http2.ErrCodeNo {
		t.Errorf("idle connection: GOAWAY(%v), want NO_ERROR", ga.ErrCode)
	}
	if took < idle {
		t.Errorf("GOAWAY %v after the connection began, before the idle timeout %v", took, idle)
	}
	h2bAwaitClose(t, h, "after the idle GOAWAY")
	t.Logf("GOAWAY after %v, closed after %v", took, time.Since(start))
}

// TestH2WindowUpdateOverflowIsFlowControlError: a WINDOW_UPDATE that
// takes the connection's send window past 2^31-1 is a connection error
// of type FLOW_CONTROL_ERROR (RFC 9113 §6.9.1): GOAWAY, then the close.
func TestH2WindowUpdateOverflowIsFlowControlError(t *testing.T) {
	p := newTestProxy(t, Config{})
	base, pool := startServeTLS(t, p)
	h := dialH2(t, base, pool)
	h.c.SetDeadline(time.Now().Add(10 * time.Second))
	// The window starts at 65,535.
	if err := h.fr.WriteWindowUpdate(0, 1<<31-1); err != nil {
		t.Fatal(err)
	}
	f := h2bAwait(t, h, "a GOAWAY", func(f http2.Frame) bool {
		_, ok := f.(*http2.GoAwayFrame)
		return ok
	})
	if ga := f.(*http2.GoAwayFrame); ga.ErrCode != http2.ErrCodeFlowControl {
		t.Fatalf("GOAWAY(%v), want FLOW_CONTROL_ERROR", ga.ErrCode)
	}
	h2bAwaitClose(t, h, "after GOAWAY(FLOW_CONTROL_ERROR)")
}

// TestH2ResponseBeforeBodyEndsWithReset: when the response is whole
// while the client is still sending the request body (the instance
// answered without reading it), the stream's end is followed by a
// RST_STREAM with NO_ERROR (RFC 9113 8.1), which tells the client to
// stop sending; nothing else is sent on the stream, and the connection
// goes on.
func TestH2ResponseBeforeBodyEndsWithReset(t *testing.T) {
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "answered early")
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("early.localhost", "early", "early--000001", addrOf(up))})
	base, pool := startServeTLS(t, p)
	h := dialH2(t, base, pool)
	h.hbuf.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", "/upload"},
		{":authority", "early.localhost"}, {"content-length", "1000000"}} {
		h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.hbuf.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteData(1, false, make([]byte, 16<<10)); err != nil {
		t.Fatal(err)
	}
	var got []string
	ended := false
	for {
		f := h.next(1)
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			got = append(got, "HEADERS "+f.PseudoValue("status"))
			ended = ended || f.StreamEnded()
		case *http2.DataFrame:
			got = append(got, "DATA "+string(f.Data()))
			ended = ended || f.StreamEnded()
		case *http2.RSTStreamFrame:
			if !ended || f.ErrCode != http2.ErrCodeNo {
				t.Fatalf("frames %q, then RST_STREAM %v; want the whole response, then RST_STREAM NO_ERROR", got, f.ErrCode)
			}
			// The connection goes on: the next stream is served.
			h.get(3, "early.localhost")
			if hf, ok := h.next(3).(*http2.MetaHeadersFrame); !ok || hf.PseudoValue("status") != "200" {
				t.Fatalf("next stream: %v", hf)
			}
			return
		default:
			t.Fatalf("frames %q, then %T", got, f)
		}
	}
}

// TestH2MalformedHeadersUseTheirStream: a request whose header block the
// framer refuses (an upper-case field name) is reset, and its stream
// counts as used: HEADERS on the same stream again, before any other,
// is a connection error (RFC 9113 5.1.1), not a new request.
func TestH2MalformedHeadersUseTheirStream(t *testing.T) {
	up := startUpstream(t, "m")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("m.localhost", "m", "m--000001", addrOf(up))})
	base, pool := startServeTLS(t, p)
	h := dialH2(t, base, pool)
	h.c.SetDeadline(time.Now().Add(10 * time.Second))
	h.get(1, "m.localhost", "X-Upper", "v")
	if rst, ok := h.next(1).(*http2.RSTStreamFrame); !ok || rst.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("a header block with an upper-case name: %v, want RST_STREAM(PROTOCOL_ERROR)", rst)
	}
	h.get(1, "m.localhost")
	f := h2bAwait(t, h, "a GOAWAY", func(f http2.Frame) bool {
		_, goaway := f.(*http2.GoAwayFrame)
		_, headers := f.(*http2.MetaHeadersFrame)
		return goaway || headers && f.Header().StreamID == 1
	})
	if ga, ok := f.(*http2.GoAwayFrame); !ok || ga.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("HEADERS again on the reset stream 1: %v, want GOAWAY(PROTOCOL_ERROR)", f)
	}
}
