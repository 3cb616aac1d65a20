package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// patternReader yields n bytes of a fixed pattern without allocating.
type patternReader struct{ n int64 }

// pattern is what patternReader repeats; copying it is fast even under
// the race detector, which a byte-by-byte loop is not.
var pattern = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}()

func (r *patternReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n := copy(p, pattern)
	r.n -= int64(n)
	return n, nil
}

// TestServeStreamsLargeUploadWithBoundedMemory sends 256 MiB through the
// proxy with a length, and 128 MiB chunked. A proxy that buffered the body
// would allocate at least that much; the whole test process (client,
// proxy, upstream) must stay far below it (32 MiB). The request has
// minutes, not the client's usual 30 s: under -race on a loaded machine
// moving the bodies takes a while.
func TestServeStreamsLargeUploadWithBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 384 MiB")
	}
	const size = 256 << 20
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("up.localhost", "up", "up--000001", addrOf(up))})
	base := startServe(t, p)
	c := newClient(t, 1)
	c.Timeout = 5 * time.Minute

	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			size := int64(size)
			if chunked {
				size /= 2 // still far above the allocation bound; chunks cost time under -race
			}
			req, _ := http.NewRequest("PUT", base+"/", &patternReader{n: size})
			req.Host = "up.localhost"
			req.ContentLength = size
			if chunked {
				req.ContentLength = -1 // net/http then sends it chunked
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			runtime.ReadMemStats(&after)
			if want := fmt.Sprintf("%d <nil>", size); resp.StatusCode != 200 || string(b) != want {
				t.Fatalf("%d %q, want 200 %q", resp.StatusCode, b, want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
				t.Errorf("allocated %d MiB to move a %d MiB body", alloc>>20, size>>20)
			}
		})
	}
}

// TestServeLargeResponse checks framing and content of responses larger
// than every buffer, with a length and chunked.
func TestServeLargeResponse(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16)
	sum := sha256.Sum256(body)
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("len") != "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		for b := body; len(b) > 0; b = b[min(len(b), 10000):] {
			w.Write(b[:min(len(b), 10000)])
		}
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("big.localhost", "big", "big--000001", addrOf(up))})
	base := startServe(t, p)
	c := newClient(t, 1)
	for _, q := range []string{"?len=1", "?chunked=1"} {
		for range 3 { // and the connections are reused
			req, _ := http.NewRequest("GET", base+"/"+q, nil)
			req.Host = "big.localhost"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || sha256.Sum256(got) != sum {
				t.Fatalf("%s: %d bytes, err %v, content differs", q, len(got), err)
			}
		}
	}
}

func TestChunkedBodiesAndTrailers(t *testing.T) {
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Trailer", "X-Sum")
		fmt.Fprintf(w, "te=%v body=%s req-trailer=%s", r.TransferEncoding, b, r.Trailer.Get("X-Req"))
		w.(http.Flusher).Flush()
		w.Header().Set("X-Sum", "42")
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("ch.localhost", "ch", "ch--000001", addrOf(up))})
	for _, f := range fronts(t, p) {
		t.Run(f.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", f.url+"/", io.MultiReader(strings.NewReader("hello "), strings.NewReader("world")))
			req.Host = "ch.localhost"
			req.ContentLength = -1
			req.Trailer = http.Header{"X-Req": {"t1"}}
			resp, err := newClient(t, 1).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := "te=[chunked] body=hello world req-trailer=t1"; string(b) != want {
				t.Errorf("body %q, want %q", b, want)
			}
			if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
				t.Errorf("response transfer encoding %v, want chunked", resp.TransferEncoding)
			}
			if got := resp.Trailer.Get("X-Sum"); got != "42" {
				t.Errorf("response trailer X-Sum = %q, want 42", got)
			}
		})
	}
}

// TestExpectContinue: the client waits for 100 Continue before sending its
// body; the proxy relays the instance's 100, and relays a refusal without
// one, after which the body is not expected.
func TestExpectContinue(t *testing.T) {
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusExpectationFailed)
			return
		}
		b, _ := io.ReadAll(r.Body) // net/http sends 100 Continue here
		fmt.Fprintf(w, "got %s", b)
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("ex.localhost", "ex", "ex--000001", addrOf(up))})
	base := startServe(t, p)

	c, br := rawConn(t, base)
	io.WriteString(c, "PUT /accept HTTP/1.1\r\nHost: ex.localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q %v, want 100 Continue", line, err)
	}
	if blank, _ := br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q", blank)
	}
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "got hello" {
		t.Errorf("%d %q", resp.StatusCode, b)
	}

	c, br = rawConn(t, base)
	io.WriteString(c, "PUT /refuse HTTP/1.1\r\nHost: ex.localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusExpectationFailed {
		t.Errorf("status %d, want 417", resp.StatusCode)
	}
}

// TestServerSentEventsStream: events pass as they come, and a client that
// leaves a quiet stream ends it at the instance too.
func TestServerSentEventsStream(t *testing.T) {
	cancelled := make(chan struct{}, 2)
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(time.Minute):
		}
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("sse.localhost", "sse", "sse--000001", addrOf(up))})
	for _, f := range fronts(t, p) {
		t.Run(f.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.url+"/", nil)
			req.Host = "sse.localhost"
			resp, err := newClient(t, 1).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			// The first event must arrive while the upstream holds the
			// stream open; a buffering proxy would block here.
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != "data: one\n" {
				t.Fatalf("first event: %q %v", line, err)
			}
			resp.Body.Close()
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("the stream went on at the instance after the client left")
			}
			waitFor(t, "in-flight count back to 0", func() bool { return p.InFlight(addrOf(up)) == 0 })
		})
	}
}

// TestEndBodyReportedLateIsWhole: the goroutine that sends a request body
// may report its success only after the response was relayed (on a busy
// machine it is not scheduled in between). endBody then stops waiting
// politely (deadlines in the past on both connections) and must still
// count the body as sent whole: taken for abandoned, the client's
// connection closed after a response that promised keep-alive, and a
// request the client had sent behind it got no answer (a whole ./test.sh
// run: TestFrontDoorAcceptsWellFormedChunks got 1 response of 2). The
// upstream connection must also be writable again, for the pool.
func TestEndBodyReportedLateIsWhole(t *testing.T) {
	client, clientPeer := net.Pipe()
	upstream, upstreamPeer := net.Pipe()
	for _, c := range []net.Conn{client, clientPeer, upstream, upstreamPeer} {
		defer c.Close()
	}
	go io.Copy(io.Discard, upstreamPeer)
	cc := &clientConn{c: client}
	uc := &upConn{c: upstream}
	done := make(chan error, 1)
	go func() {
		// Report success only once endBody has given up waiting politely:
		// writes to the upstream then fail at once.
		for {
			if _, err := upstream.Write([]byte("x")); err != nil {
				break
			}
		}
		done <- nil
	}()
	if err := cc.endBody(done, uc); err != nil {
		t.Fatalf("endBody = %v, want nil: the body went out whole", err)
	}
	if _, err := upstream.Write([]byte("x")); err != nil {
		t.Fatalf("the upstream connection is not writable after endBody: %v", err)
	}
}
