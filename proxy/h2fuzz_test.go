package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/batonhq/baton/internal/poll"
)

// FuzzH2Frames is structure-aware fuzzing of the HTTP/2 server
// (h2server.go, h2stream.go) against hostile clients. Each input is
// decoded into a sequence of client actions (see h2fClient.step): frames
// of every type, on a small set of streams, with header blocks made by an
// HPACK encoder from a vocabulary of valid and hostile fields, or raw
// bytes. The actions go to a fresh h2 connection to one ServeTLS that
// serves the whole run, in front of one instance whose answer depends on
// the request's path.
//
// What must hold, for every input:
//   - nothing panics (a panic on a connection's goroutine ends the test
//     binary; one in a handler is logged, and fails the input) and, under
//     -race, nothing races;
//   - the frames the server sends are well-formed and follow the rules
//     of RFC 9113 a client can check: decodable header blocks, a :status
//     head before DATA, trailers that end the stream, nothing on a stream
//     after its END_STREAM or after a RST_STREAM (the server's, or the
//     client's once the server read it), a body as long as its
//     content-length, no more DATA than the client's windows allow,
//     frames no larger than its SETTINGS_MAX_FRAME_SIZE, no response on a
//     stream the client never opened or past the last stream a GOAWAY
//     named, GOAWAYs whose last stream never grows;
//   - the server stays alive: after the actions it answers a PING, or it
//     closes the connection, within h2fWait; a GOAWAY alone is not
//     enough, since a stuck read loop can still send one from a timer;
//   - once the client hangs up, the connection and every stream's handler
//     end, as do the proxy's and the instance's requests, within h2fWait;
//   - a new connection is served a normal GET afterwards.
//
// The seeds run in every `go test`, in well under a second. Crashers go
// to testdata/fuzz/FuzzH2Frames as regression inputs.
func FuzzH2Frames(f *testing.F) {
	for _, seed := range h2fSeeds() {
		f.Add(seed)
	}

	// One instance and one proxy for the whole run: setting them up per
	// input would cost more than most inputs.
	var upRunning atomic.Int64
	quit := make(chan struct{})
	up := startHandler(f, func(w http.ResponseWriter, r *http.Request) {
		upRunning.Add(1)
		defer upRunning.Add(-1)
		switch r.URL.Path {
		case "/read":
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "read %d bytes (%v), trailer %q", n, err, r.Trailer.Get("X-T"))
		case "/stream":
			// Flushed pieces past the initial stream window of 65,535
			// bytes: the end waits for the client's WINDOW_UPDATEs.
			chunk := bytes.Repeat([]byte{'s'}, 20000)
			for range 4 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		case "/hold":
			// A response that never ends: only the client going away, and
			// the proxy with it, ends this request. Not for HEAD, whose
			// response is whole at its head: the proxy (as any HTTP/1.1
			// client) may send the next request on the connection, and a
			// handler that still runs would stall it.
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			if r.Method == http.MethodHead {
				return
			}
			select {
			case <-r.Context().Done():
			case <-quit:
			}
		case "/trailers":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "1")
		default:
			io.WriteString(w, "ok")
		}
	})
	logs := &h2fLog{}
	// Small limits, so that short inputs reach them: header lists past
	// 8 KiB are answered 431, and the idle timer, which streams arm and
	// stop as they come and go, fires after a second (the deadlines of
	// the handshake and the preface follow it).
	p := newTestProxy(f, Config{Logger: slog.New(logs), MaxHeaderBytes: 8 << 10, IdleTimeout: time.Second})
	p.SetRoutes([]Route{route1(h2fHost, "fz", "fz--000001", addrOf(up))})
	addr, pool := h2fServe(f, p)
	// Before Shutdown and the instance's Close, which wait for requests:
	// a /hold request a leak left behind would keep them waiting.
	f.Cleanup(func() { close(quit) })
	env := &h2fEnv{
		p: p, addr: addr, upRunning: &upRunning, logs: logs,
		// Resumed sessions make the two handshakes of an input cheap.
		tls: &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}, ClientSessionCache: tls.NewLRUClientSessionCache(4)},
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		env.run(t, in)
	})
}

const (
	// h2fHost is the routed host.
	h2fHost = "fz.localhost"
	// h2fWait bounds each wait for the server: an answer, the end of a
	// connection, handlers returning. Loopback answers take milliseconds;
	// and the fuzzing engine takes an input that runs for 10 s for a hang,
	// and loses what failed, so a failing input must fail before that.
	h2fWait = 4 * time.Second
	// h2fAwaitFor bounds the await actions of an input, which only order
	// the actions after a response: streams that never end must not stall
	// the fuzzer.
	h2fAwaitFor = 500 * time.Millisecond
	// h2fMaxSteps and h2fMaxData bound the work of one input, repeats and
	// all.
	h2fMaxSteps = 2000
	h2fMaxData  = 2 << 20
)

// h2fEnv is what the inputs of a run share.
type h2fEnv struct {
	p         *Proxy
	addr      string
	tls       *tls.Config
	upRunning *atomic.Int64 // the instance's requests in progress
	logs      *h2fLog
}

// h2fServe runs p with ServeTLS until the fuzz test ends, as
// startServeTLS does, and returns its address and a pool that trusts its
// certificate. It gives up on Shutdown after a while: when an input
// leaked a handler, Shutdown waits for it forever, and the test must
// still end and say what failed.
func h2fServe(f *testing.F, p *Proxy) (string, *x509.CertPool) {
	static, pool := testCert(f)
	cfg := &tls.Config{GetCertificate: NewCerts(static.Certificates, nil, 0).GetCertificate}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.ServeTLS(ln, cfg) }()
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), h2fWait)
		defer cancel()
		shut := make(chan error, 1)
		go func() { shut <- p.Shutdown(ctx) }()
		select {
		case err := <-shut:
			if err != nil {
				f.Errorf("Shutdown: %v", err)
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				f.Errorf("ServeTLS returned %v, want http.ErrServerClosed", err)
			}
		case <-time.After(2 * h2fWait):
			f.Errorf("Shutdown has not returned after %v: a handler never ended", 2*h2fWait)
		}
	})
	return ln.Addr().String(), pool
}

// run runs one input and checks what must hold after it.
func (e *h2fEnv) run(t *testing.T, in []byte) {
	// What an earlier input left running (it failed) stays: this input
	// is checked against it, so that the fuzzer can still tell inputs
	// that leak from those that do not when it minimizes one.
	before := e.running()
	e.logs.take() // what a failed input left
	c := e.dial(t)
	st := newH2fState()
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.read(c)
	}()
	// Whatever ends the input ends the reader first: every wait of this
	// goroutine is bounded, and the reader ends with the connection.
	defer func() {
		c.Close()
		<-done
	}()

	cl := newH2fClient(c, st)
	cl.preface()
	cl.run(in)
	cl.sync()
	c.Close()
	<-done
	t.Logf("%d actions; the server sent %s", cl.steps, st.summary())
	if fails := st.failures; len(fails) > 0 {
		if len(fails) > 10 {
			fails = append(fails[:10], fmt.Sprintf("and %d more", len(fails)-10))
		}
		// What the input started ends first, so that the next input
		// (the fuzzer minimizing this one) starts from where this one did.
		if left := e.leftRunning(before); left != "" {
			fails = append(fails, left)
		}
		t.Fatalf("input %s:\n%s", h2fQuote(in), strings.Join(fails, "\n"))
	}

	e.checkServes(t)
	if left := e.leftRunning(before); left != "" {
		t.Fatalf("input %s: %s", h2fQuote(in), left)
	}
	for _, msg := range e.logs.take() {
		if strings.Contains(msg, "panic") {
			t.Fatalf("input %s: the proxy logged %s", h2fQuote(in), msg)
		}
	}
}

// h2fQuote quotes an input for a message, its start if it is long.
func h2fQuote(in []byte) string {
	if len(in) > 200 {
		return fmt.Sprintf("%q... (%d bytes)", in[:200], len(in))
	}
	return fmt.Sprintf("%q", in)
}

// dial opens a TLS connection that negotiated h2.
func (e *h2fEnv) dial(t testing.TB) *tls.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: h2fWait}, "tcp", e.addr, e.tls)
	if err != nil {
		t.Fatal(err)
	}
	if proto := c.ConnectionState().NegotiatedProtocol; proto != "h2" {
		c.Close()
		t.Fatalf("ALPN chose %q, want h2", proto)
	}
	return c
}

// checkServes sends a normal GET on a new connection and wants the
// instance's answer.
func (e *h2fEnv) checkServes(t *testing.T) {
	t.Helper()
	h := dialH2(t, "https://"+e.addr, e.tls.RootCAs)
	defer h.c.Close()
	h.c.SetDeadline(time.Now().Add(h2fWait))
	h.get(1, h2fHost)
	var status string
	var body []byte
	for {
		switch f := h.next(1).(type) {
		case *http2.MetaHeadersFrame:
			status = f.PseudoValue("status")
			if !f.StreamEnded() {
				continue
			}
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			if !f.StreamEnded() {
				continue
			}
		default:
			t.Fatalf("a GET on a new connection: got %v", f)
		}
		break
	}
	if status != "200" || string(body) != "ok" {
		t.Fatalf("a GET on a new connection: status %q, body %q; want 200 and the instance's %q", status, body, "ok")
	}
}

// h2fRunning is what runs in the proxy and the instance.
type h2fRunning struct {
	conns, handlers, inFlight, instance int
}

func (r h2fRunning) String() string {
	return fmt.Sprintf("%d connections open, %d stream handlers running, %d upstream requests in flight, %d instance requests running",
		r.conns, r.handlers, r.inFlight, r.instance)
}

// running counts what runs now.
func (e *h2fEnv) running() h2fRunning {
	stats := e.p.Stats()
	s := &e.p.srv
	s.mu.Lock()
	h := s.h2
	s.mu.Unlock()
	handlers := 0
	if h != nil {
		h.mu.Lock()
		handlers = h.handlers
		h.mu.Unlock()
	}
	return h2fRunning{stats.OpenConnections, handlers, stats.UpstreamInFlight, int(e.upRunning.Load())}
}

// leftRunning waits until no more connections are open, stream handlers
// run and requests are in flight, at the proxy and at the instance, than
// before the input: all of it ends once the clients hung up. It says
// what still runs after h2fWait, if anything.
func (e *h2fEnv) leftRunning(before h2fRunning) string {
	var now h2fRunning
	if poll.Wait(h2fWait, func() bool {
		now = e.running()
		return now.conns <= before.conns && now.handlers <= before.handlers && now.inFlight <= before.inFlight && now.instance <= before.instance
	}) {
		return ""
	}
	return fmt.Sprintf("%v after the clients hung up: %v; before the input: %v", h2fWait, now, before)
}

// h2fLog keeps the messages the proxy logs at level Error.
type h2fLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *h2fLog) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelError }
func (l *h2fLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
		return true
	})
	l.mu.Lock()
	l.msgs = append(l.msgs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *h2fLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *h2fLog) WithGroup(string) slog.Handler      { return l }

// take returns the messages logged so far and forgets them.
func (l *h2fLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	msgs := l.msgs
	l.msgs = nil
	return msgs
}

// The kinds of action, the low four bits of an action's first byte.
const (
	h2fHeaders      = 0  // a HEADERS frame: a request, or trailers (15 too)
	h2fData         = 1  // a DATA frame
	h2fWindow       = 2  // a WINDOW_UPDATE frame
	h2fRST          = 3  // a RST_STREAM frame
	h2fSettings     = 4  // a SETTINGS frame
	h2fPing         = 5  // a PING frame
	h2fPriority     = 6  // a PRIORITY frame
	h2fGoAway       = 7  // a GOAWAY frame
	h2fContinuation = 8  // a CONTINUATION frame
	h2fPush         = 9  // a PUSH_PROMISE frame
	h2fUnknown      = 10 // a frame of an unknown type
	h2fRaw          = 11 // any frame type, flags and payload, unchecked
	h2fSync         = 12 // a PING, and waiting for its ACK
	h2fAwait        = 13 // waiting for the current stream's response to end
	h2fRepeat       = 14 // the actions before, again
)

// The streams an action may name, bits 4 to 6 of its first byte. For the
// frames of the connection (SETTINGS, PING, GOAWAY) the default and
// h2fZero trade places, so that the default is stream 0.
const (
	h2fDefault  = 0 // a new stream for HEADERS, the current one otherwise
	h2fCurrent  = 1 // the stream of the last HEADERS
	h2fNew      = 2 // the next stream never used
	h2fZero     = 3
	h2fOne      = 4
	h2fEven     = 5 // a stream only a server may open
	h2fMaxID    = 6 // 2^31-1
	h2fPrevious = 7 // the stream before the current one
)

// h2fBytes reads an input; past its end it reads zeros, so that every
// input decodes.
type h2fBytes struct {
	b []byte
	i int
}

func (r *h2fBytes) next() byte {
	r.i++
	if r.i > len(r.b) {
		return 0
	}
	return r.b[r.i-1]
}

func (r *h2fBytes) u32() uint32 {
	return uint32(r.next())<<24 | uint32(r.next())<<16 | uint32(r.next())<<8 | uint32(r.next())
}

// take returns up to n of the bytes left.
func (r *h2fBytes) take(n int) []byte {
	start := min(r.i, len(r.b))
	r.i += n
	return r.b[start:min(r.i, len(r.b))]
}

// h2fField is the vocabulary of extra header fields, valid and hostile.
var h2fField = []hpack.HeaderField{
	{Name: "content-length", Value: "0"},
	{Name: "content-length", Value: "5"},
	{Name: "content-length", Value: "70000"},
	{Name: "content-length", Value: "-1"},
	{Name: "content-length", Value: "1x"},
	{Name: "content-length", Value: "99999999999999999999"},
	{Name: "te", Value: "trailers"},
	{Name: "te", Value: "gzip"},
	{Name: "connection", Value: "close"},
	{Name: "keep-alive", Value: "timeout=5"},
	{Name: "proxy-connection", Value: "keep-alive"},
	{Name: "transfer-encoding", Value: "chunked"},
	{Name: "upgrade", Value: "h2c"},
	{Name: "X-Upper", Value: "v"},
	{Name: ":method", Value: "POST"},
	{Name: ":path", Value: "/read"},
	{Name: ":scheme", Value: "ftp"},
	{Name: ":authority", Value: "other.localhost"},
	{Name: ":protocol", Value: "websocket"},
	{Name: ":status", Value: "200"},
	{Name: ":foo", Value: "bar"},
	{Name: "host", Value: h2fHost},
	{Name: "host", Value: "elsewhere.localhost"},
	{Name: "expect", Value: "100-continue"},
	{Name: "trailer", Value: "x-t"},
	{Name: "trailer", Value: "content-length, x-t"},
	{Name: "x-t", Value: "v"},
	{Name: "cookie", Value: "a=b"},
	{Name: "cookie", Value: "c=d"},
	{Name: "content-type", Value: "text/plain"},
	{Name: "x-huge", Value: strings.Repeat("h", 5000)},   // twice is past MaxHeaderBytes: 431
	{Name: "x-huger", Value: strings.Repeat("H", 40000)}, // past the decoder's string limit
	{Name: "x-nul", Value: "a\x00b"},
	{Name: "x-crlf", Value: "a\r\nb"},
	{Name: "", Value: "empty name"},
	{Name: "x sp", Value: "v"},
	{Name: strings.Repeat("n", 300), Value: "long name"},
	{Name: "via", Value: "1.1 elsewhere"},
	{Name: "x-forwarded-for", Value: "192.0.2.1"},
	{Name: "accept", Value: "*/*"},
	{Name: strings.ToLower(PinHeader), Value: "fz--000001"},
	{Name: "range", Value: "bytes=0-1"},
}

// The vocabulary's fields that seeds name.
const (
	h2fLen5        = 1
	h2fLenBig      = 2
	h2fTEGzip      = 7
	h2fConnection  = 8
	h2fUpper       = 13
	h2fDupMethod   = 14
	h2fProtocol    = 18
	h2fExpect      = 23
	h2fTrailerDecl = 24
	h2fTrailerXT   = 26
	h2fHuge        = 30
	h2fHuger       = 31
)

var (
	h2fMethods     = []string{"GET", "POST", "HEAD", "CONNECT"}
	h2fPaths       = []string{"/", "/read", "/stream", "/hold", "/trailers", "/q?x=1&y=%41", "*", ""}
	h2fAuthorities = []string{h2fHost, "unknown.localhost", "", "FZ.LOCALHOST:443"}
	h2fTableSizes  = []uint32{0, 64, 4096, 8192}
	h2fIncrements  = []uint32{0, 1, 100, 16384, 65535, 1 << 20, 1<<31 - 1} // then 4 bytes
	h2fValues      = []uint32{0, 1, 2, 100, 4096, 16383, 16384, 65535, 65536, 1 << 20,
		1<<24 - 1, 1 << 24, 1<<31 - 1, 1 << 31, 1<<32 - 1} // then 4 bytes
	h2fZeros = make([]byte, 1<<16)
)

// The paths of h2fPaths that seeds name.
const (
	h2fPathRoot     = 0
	h2fPathRead     = 1
	h2fPathStream   = 2
	h2fPathHold     = 3
	h2fPathTrailers = 4
)

// h2fClient sends an input's actions on one connection. It keeps one
// HPACK encoder, so that the server's decoder stays in step with it while
// the blocks are valid.
type h2fClient struct {
	c    *tls.Conn
	bw   *bufio.Writer
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	st   *h2fState

	next      uint32 // the next new stream
	cur       uint32 // the stream of the last HEADERS
	pending   []byte // the rest of a header block, for CONTINUATION
	steps     int
	dataSent  int
	awaited   time.Duration // of h2fAwaitFor
	syncs     uint64
	err       error // the first write error: nothing more is sent
	writeDead bool  // that error was the write deadline
	stuck     bool  // a sync failed
}

func newH2fClient(c *tls.Conn, st *h2fState) *h2fClient {
	cl := &h2fClient{c: c, st: st, next: 1}
	// Frames queue in a buffer and go out together at each wait, or when
	// it fills: a burst of frames reaches the server in one read, as a
	// hostile client's would.
	cl.bw = bufio.NewWriterSize(c, 16<<10)
	cl.fr = http2.NewFramer(cl.bw, nil)
	cl.fr.AllowIllegalWrites = true
	cl.enc = hpack.NewEncoder(&cl.hbuf)
	return cl
}

// deadline bounds the next writes: a server that stops reading fails
// them instead of hanging them.
func (c *h2fClient) deadline() {
	c.c.SetWriteDeadline(time.Now().Add(h2fWait))
}

// check notes a write error; it is the end of the actions.
func (c *h2fClient) check(err error) {
	if err != nil && c.err == nil {
		c.err = err
		c.writeDead = isTimeout(err)
	}
}

func (c *h2fClient) flush() {
	if c.err == nil {
		c.deadline()
		c.check(c.bw.Flush())
	}
}

// preface sends the client preface and an empty SETTINGS frame.
func (c *h2fClient) preface() {
	c.deadline()
	_, err := c.bw.WriteString(http2.ClientPreface)
	c.check(err)
	c.check(c.fr.WriteSettings())
}

// run runs the actions of in. A repeat runs the actions before it again,
// from their bytes: a stream chosen as new is a new one each time.
func (c *h2fClient) run(in []byte) {
	r := &h2fBytes{b: in}
	var ran [][]byte // the actions run, except repeats
	for r.i < len(in) && c.err == nil && c.steps < h2fMaxSteps {
		start := r.i
		op := r.next()
		if op&15 == h2fRepeat {
			n, times := 1+int(r.next()%4), 1+int(r.next())
			acts := ran[len(ran)-min(n, len(ran)):]
			for range times {
				for _, act := range acts {
					c.step(&h2fBytes{b: act})
				}
			}
			continue
		}
		r.i = start
		c.step(r)
		ran = append(ran, in[start:min(r.i, len(in))])
	}
	c.flush()
}

// stream returns the stream selector sel names.
func (c *h2fClient) stream(sel byte, headers bool) uint32 {
	switch sel & 7 {
	case h2fDefault:
		if headers {
			return c.newStream()
		}
		return c.current()
	case h2fCurrent:
		return c.current()
	case h2fNew:
		return c.newStream()
	case h2fZero:
		return 0
	case h2fOne:
		return 1
	case h2fEven:
		return 2
	case h2fMaxID:
		return 1<<31 - 1
	default:
		if c.cur > 2 {
			return c.cur - 2
		}
		return 1
	}
}

func (c *h2fClient) newStream() uint32 {
	id := c.next
	if c.next < 1<<31-2 {
		c.next += 2
	}
	return id
}

func (c *h2fClient) current() uint32 {
	if c.cur == 0 {
		return 1
	}
	return c.cur
}

// step decodes and sends one action. Its first byte holds the kind (bits
// 0-3), the stream (bits 4-6) and a variant (bit 7); the bytes after it
// depend on the kind.
func (c *h2fClient) step(r *h2fBytes) {
	if c.err != nil || c.steps >= h2fMaxSteps {
		return
	}
	c.steps++
	c.deadline() // the buffer may fill and flush
	op := r.next()
	kind, sel, variant := op&15, op>>4&7, op&0x80 != 0
	switch kind {
	case h2fSettings, h2fPing, h2fGoAway:
		if sel == h2fDefault || sel == h2fZero {
			sel ^= h2fZero
		}
	}
	switch kind {
	case h2fHeaders, 15:
		c.headers(r, c.stream(sel, true))
	case h2fData:
		c.data(r, c.stream(sel, false), variant)
	case h2fWindow:
		id := c.stream(sel, false)
		b := r.next()
		inc := uint32(0)
		if i := int(b & 7); i < len(h2fIncrements) {
			inc = h2fIncrements[i]
		} else {
			inc = r.u32()
		}
		c.st.grant(id, inc)
		c.check(c.fr.WriteWindowUpdate(id, inc))
	case h2fRST:
		id := c.stream(sel, false)
		c.st.clientReset(id, c.syncs+1)
		c.check(c.fr.WriteRSTStream(id, http2.ErrCode(r.next())))
	case h2fSettings:
		c.settings(r, c.stream(sel, false))
	case h2fPing:
		id := c.stream(sel, false)
		flags, fill := r.next(), r.next()
		data := [8]byte{fill & 0x7f, fill, fill, fill, fill, fill, fill, fill} // never a sync's
		c.check(c.fr.WriteRawFrame(http2.FramePing, http2.Flags(flags&1), id, data[:]))
	case h2fPriority:
		id := c.stream(sel, false)
		b := r.next()
		dep := c.stream(b&7, false)
		c.check(c.fr.WritePriority(id, http2.PriorityParam{StreamDep: dep, Exclusive: b&8 != 0, Weight: r.next()}))
	case h2fGoAway:
		id := c.stream(sel, false)
		last := c.stream(r.next(), false)
		code := r.next()
		debug := r.take(int(r.next() % 32))
		payload := []byte{byte(last >> 24), byte(last >> 16), byte(last >> 8), byte(last), 0, 0, 0, byte(code)}
		c.check(c.fr.WriteRawFrame(http2.FrameGoAway, 0, id, append(payload, debug...)))
	case h2fContinuation:
		c.continuation(r, c.stream(sel, false))
	case h2fPush:
		id := c.stream(sel, false)
		flags := r.next()
		promised := c.stream(r.next(), false)
		block := r.take(int(r.next()))
		c.st.setDesync()
		c.check(c.fr.WritePushPromise(http2.PushPromiseParam{StreamID: id, PromiseID: promised, BlockFragment: block, EndHeaders: flags&2 == 0}))
	case h2fUnknown:
		id := c.stream(sel, false)
		t, flags := http2.FrameType(10+r.next()%246), http2.Flags(r.next())
		c.check(c.fr.WriteRawFrame(t, flags, id, r.take(int(r.next()))))
	case h2fRaw:
		c.raw(r, c.stream(sel, false))
	case h2fSync:
		c.sync()
	case h2fAwait:
		c.await(variant)
	}
}

// headerBlock encodes the header block an action describes, or takes
// raw bytes for one. It returns the request's method as the server will
// see it, or "" when that is not certain.
//
// hb1: bits 0-1 the method, 2-4 the path, 5-6 the authority; bit 7 leaves
// the pseudo-fields out (trailers). hb2: bits 0-2 the number of extra
// fields, bit 3 raw bytes instead, bit 4 never-indexed fields, bit 5 a
// dynamic table size update first, bit 6 the pseudo-fields after the
// extra ones, bit 7 the scheme http.
func (c *h2fClient) headerBlock(r *h2fBytes) (block []byte, method string) {
	hb1, hb2 := r.next(), r.next()
	extra := make([]hpack.HeaderField, hb2&7)
	for i := range extra {
		extra[i] = h2fField[int(r.next())%len(h2fField)]
	}
	if hb2&0x20 != 0 {
		size := h2fTableSizes[r.next()&3]
		if size > 4096 {
			// More than the server allows (a COMPRESSION_ERROR).
			c.enc.SetMaxDynamicTableSizeLimit(size)
			c.st.setDesync()
		}
		c.enc.SetMaxDynamicTableSize(size)
	}
	if hb2&8 != 0 {
		block = r.take(int(r.next()))
		if len(block) > 0 {
			c.st.setDesync()
		}
		return block, ""
	}
	var pseudo []hpack.HeaderField
	if hb1&0x80 == 0 {
		method = h2fMethods[hb1&3]
		pseudo = append(pseudo, hpack.HeaderField{Name: ":method", Value: method})
		if method != http.MethodConnect {
			scheme := "https"
			if hb2&0x80 != 0 {
				scheme = "http"
			}
			pseudo = append(pseudo, hpack.HeaderField{Name: ":scheme", Value: scheme})
			if path := h2fPaths[hb1>>2&7]; path != "" {
				pseudo = append(pseudo, hpack.HeaderField{Name: ":path", Value: path})
			}
		}
		if a := h2fAuthorities[hb1>>5&3]; a != "" {
			pseudo = append(pseudo, hpack.HeaderField{Name: ":authority", Value: a})
		}
	}
	for _, f := range extra {
		if strings.HasPrefix(f.Name, ":") {
			method = "" // a second :method, or a malformed request
		}
	}
	fields := append(pseudo, extra...)
	if hb2&0x40 != 0 {
		fields = append(extra, pseudo...)
	}
	c.hbuf.Reset()
	for _, f := range fields {
		f.Sensitive = hb2&0x10 != 0
		c.enc.WriteField(f)
	}
	return bytes.Clone(c.hbuf.Bytes()), method
}

// h2fFragment is the most of a header block a HEADERS frame carries,
// with room for the largest padding and priority.
const h2fFragment = 16384 - 6 - 255

// headers sends a HEADERS frame, and CONTINUATION frames for a block too
// large for one. flags: bit 0 a body follows (no END_STREAM), bit 1 no
// END_HEADERS (the rest of the block waits for a CONTINUATION action),
// bit 2 padding, bit 3 a priority.
func (c *h2fClient) headers(r *h2fBytes, id uint32) {
	flags := r.next()
	block, method := c.headerBlock(r)
	c.cur = id
	p := http2.HeadersFrameParam{StreamID: id, EndStream: flags&1 == 0, EndHeaders: true}
	if flags&4 != 0 {
		p.PadLength = r.next()
	}
	if flags&8 != 0 {
		b := r.next()
		p.Priority = http2.PriorityParam{StreamDep: c.stream(b&7, false), Exclusive: b&8 != 0, Weight: r.next()}
	}
	cut := min(len(block), h2fFragment)
	if flags&2 != 0 {
		cut = min(cut, len(block)*int(r.next())/255)
		p.EndHeaders = false
	}
	p.BlockFragment, c.pending = block[:cut], block[cut:]
	if p.EndHeaders && len(c.pending) > 0 {
		p.EndHeaders = false
		defer c.sendPending(id, true)
	}
	c.st.open(id, method)
	c.check(c.fr.WriteHeaders(p))
}

// sendPending sends the rest of a header block in CONTINUATION frames,
// the last with END_HEADERS if end.
func (c *h2fClient) sendPending(id uint32, end bool) {
	for c.err == nil && len(c.pending) > 0 {
		k := min(len(c.pending), h2fFragment)
		frag := c.pending[:k]
		c.pending = c.pending[k:]
		c.check(c.fr.WriteContinuation(id, end && len(c.pending) == 0, frag))
	}
}

// continuation sends a CONTINUATION frame: the rest of a block the last
// HEADERS left, or raw bytes. flags: bit 1 no END_HEADERS.
func (c *h2fClient) continuation(r *h2fBytes, id uint32) {
	flags := r.next()
	end := flags&2 == 0
	if len(c.pending) == 0 {
		frag := r.take(int(r.next()))
		if len(frag) > 0 {
			c.st.setDesync()
		}
		c.check(c.fr.WriteContinuation(id, end, frag))
		return
	}
	if !end {
		k := min(len(c.pending), h2fFragment, len(c.pending)*int(r.next())/255)
		frag := c.pending[:k]
		c.pending = c.pending[k:]
		c.check(c.fr.WriteContinuation(id, false, frag))
		return
	}
	c.sendPending(id, true)
}

// data sends a DATA frame of zeros. flags: bit 0 END_STREAM, bit 2
// padding. Its length is up to 16,384 bytes, or with the variant up to
// 65,535 (too large a frame).
func (c *h2fClient) data(r *h2fBytes, id uint32, variant bool) {
	flags := r.next()
	n := int(r.next())<<8 | int(r.next())
	if !variant {
		n %= 16385
	}
	var pad []byte
	if flags&4 != 0 {
		pad = h2fZeros[:r.next()]
	}
	if c.dataSent += n; c.dataSent > h2fMaxData {
		return
	}
	c.check(c.fr.WriteDataPadded(id, flags&1 != 0, h2fZeros[:n], pad))
}

// settings sends a SETTINGS frame of up to 6 settings, each an id and a
// value, or an ACK (flags bit 0), with any stream id.
func (c *h2fClient) settings(r *h2fBytes, id uint32) {
	flags := http2.Flags(r.next() & 1)
	n := int(r.next() % 7)
	var payload []byte
	for range n {
		b := r.next()
		sid := http2.SettingID(b % 10)
		if b >= 250 {
			sid = http2.SettingID(0xff00 | uint16(b))
		}
		v := r.next()
		val := uint32(0)
		if i := int(v & 15); i < len(h2fValues) {
			val = h2fValues[i]
		} else {
			val = r.u32()
		}
		c.st.advertise(sid, val)
		payload = append(payload, byte(sid>>8), byte(sid), byte(val>>24), byte(val>>16), byte(val>>8), byte(val))
	}
	c.check(c.fr.WriteRawFrame(http2.FrameSettings, flags, id, payload))
}

// raw sends a frame of type 0-15 with any flags and up to 255 bytes of
// payload: malformed lengths, stray flags. What it may change on the
// server is noted as the checked frames' would be.
func (c *h2fClient) raw(r *h2fBytes, id uint32) {
	t, flags := http2.FrameType(r.next()&15), http2.Flags(r.next())
	payload := bytes.Clone(r.take(int(r.next())))
	switch t {
	case http2.FrameHeaders:
		c.st.open(id, "")
		c.st.setDesync()
	case http2.FrameContinuation, http2.FramePushPromise:
		c.st.setDesync()
	case http2.FrameSettings:
		for i := 0; i+6 <= len(payload); i += 6 {
			c.st.advertise(http2.SettingID(payload[i])<<8|http2.SettingID(payload[i+1]),
				uint32(payload[i+2])<<24|uint32(payload[i+3])<<16|uint32(payload[i+4])<<8|uint32(payload[i+5]))
		}
	case http2.FrameRSTStream:
		if len(payload) == 4 {
			c.st.clientReset(id, c.syncs+1)
		}
	case http2.FrameWindowUpdate:
		if len(payload) == 4 {
			c.st.grant(id, uint32(payload[0])<<24|uint32(payload[1])<<16|uint32(payload[2])<<8|uint32(payload[3]))
		}
	case http2.FramePing:
		if len(payload) > 0 {
			payload[0] &= 0x7f // never a sync's
		}
	}
	c.check(c.fr.WriteRawFrame(t, flags, id, payload))
}

// sync sends a PING and waits for its ACK or the end of the connection:
// the server read every frame before it, and is alive. Neither within
// h2fWait is a failure.
func (c *h2fClient) sync() {
	if c.stuck {
		return // failed already
	}
	c.syncs++
	data := [8]byte{0xff, 'f', 'z'} // and the sync's number
	for i := range 5 {
		data[3+i] = byte(c.syncs >> (8 * i))
	}
	if c.err == nil {
		c.check(c.fr.WritePing(false, data))
		c.flush()
	}
	switch {
	case c.writeDead:
		c.st.failf("the server read nothing for %v (a write timed out: %v)", h2fWait, c.err)
	case c.st.wait(func() bool { return c.st.done || c.st.acks[data] }, h2fWait):
		return
	case c.err != nil:
		c.st.failf("a write failed (%v) but the connection stayed open for %v", c.err, h2fWait)
	default:
		c.st.failf("no PING ACK and the connection still open %v after the PING", h2fWait)
	}
	c.stuck = true
	if c.err == nil {
		c.err = errors.New("the server is stuck")
	}
}

// await waits a moment for the current stream's response to end, so that
// the actions after it meet a closed stream; with data, only until more
// of its body comes (a response that waits for its window). All the
// awaits of an input wait h2fAwaitFor at most.
func (c *h2fClient) await(data bool) {
	c.flush()
	if c.err != nil || c.awaited >= h2fAwaitFor {
		return
	}
	id := c.current()
	c.st.mu.Lock()
	flow := int64(0)
	if s := c.st.streams[id]; s != nil {
		flow = s.flow
	}
	c.st.mu.Unlock()
	start := time.Now()
	c.st.wait(func() bool {
		s := c.st.streams[id]
		return c.st.done || s != nil && (s.ended || s.rsts > 0 || data && s.flow > flow)
	}, h2fAwaitFor-c.awaited)
	c.awaited += time.Since(start)
}

// h2fState is what the client sent that bounds what the server may send,
// and what the server sent, as the reader saw it; under mu.
type h2fState struct {
	mu    sync.Mutex
	event chan struct{} // a frame came, or the connection ended

	streams map[uint32]*h2fStream
	// desync: a block the client's encoder did not make went out, and
	// the server's HPACK table may differ from the encoder's since: the
	// fields a request has are not certain.
	desync      bool
	maxFrame    uint32 // the largest SETTINGS_MAX_FRAME_SIZE advertised
	initial     int64  // the last SETTINGS_INITIAL_WINDOW_SIZE advertised
	connGranted int64  // the connection's window: 65,535 and every increment
	connFlow    int64  // DATA received on all streams
	goaway      bool
	goawayLast  uint32
	acks        map[[8]byte]bool // PING ACKs received
	synced      uint64           // the number of the last sync acknowledged
	done        bool             // the reader ended
	endErr      error            // why
	seen        map[string]int   // the frames received, by type and code
	failures    []string
}

// h2fStream is one stream's state.
type h2fStream struct {
	opened  bool   // the client sent HEADERS on it
	method  string // its request's method, "" when not certain
	granted int64  // WINDOW_UPDATE increments on it
	// maxInitial is the largest SETTINGS_INITIAL_WINDOW_SIZE in force
	// since the stream opened: the server reads the settings sent before
	// its HEADERS first, and may use a larger one for a moment after a
	// smaller one.
	maxInitial int64
	started    bool // a response head came
	final      bool // a final (not 1xx) response head came
	status     int
	clen       int64 // its content-length, or -1
	data       int64 // body bytes received
	flow       int64 // DATA bytes received, padding and all
	ended      bool  // END_STREAM came
	reset      bool  // RST_STREAM came after the response began
	rsts       int   // RST_STREAMs that came
	// clientRST is the number of the first sync sent after the client
	// reset the stream, 0 if it did not: once that sync is acknowledged
	// the server has read the reset.
	clientRST uint64
}

func newH2fState() *h2fState {
	return &h2fState{
		event: make(chan struct{}, 1), streams: make(map[uint32]*h2fStream),
		maxFrame: 16384, initial: 65535, connGranted: 65535, acks: make(map[[8]byte]bool),
		seen: make(map[string]int),
	}
}

// fail notes a failure; the caller holds mu.
func (st *h2fState) fail(format string, args ...any) {
	st.failures = append(st.failures, fmt.Sprintf(format, args...))
}

// failf is fail for a caller that does not hold mu.
func (st *h2fState) failf(format string, args ...any) {
	st.mu.Lock()
	st.fail(format, args...)
	st.mu.Unlock()
}

// stream returns id's state, made if new; the caller holds mu.
func (st *h2fState) stream(id uint32) *h2fStream {
	s := st.streams[id]
	if s == nil {
		s = &h2fStream{clen: -1}
		st.streams[id] = s
	}
	return s
}

// open notes HEADERS about to open stream id. What the server sent on
// it before (a RST_STREAM for a stream still idle) belongs to no request.
func (st *h2fState) open(id uint32, method string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s := st.stream(id); !s.opened {
		if st.desync {
			method = ""
		}
		*s = h2fStream{opened: true, method: method, granted: s.granted, maxInitial: st.initial, clen: -1}
	}
}

// clientReset notes a RST_STREAM about to go out, before sync number
// next. Only the reset of a stream the client opened counts: on an idle
// stream it is a connection error.
func (st *h2fState) clientReset(id uint32, next uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s := st.streams[id]; s != nil && s.opened && s.clientRST == 0 {
		s.clientRST = next
	}
}

func (st *h2fState) setDesync() {
	st.mu.Lock()
	st.desync = true
	st.mu.Unlock()
}

// grant notes a WINDOW_UPDATE about to go out (the server ignores the
// reserved bit).
func (st *h2fState) grant(id, inc uint32) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if id == 0 {
		st.connGranted += int64(inc & (1<<31 - 1))
	} else {
		st.stream(id).granted += int64(inc & (1<<31 - 1))
	}
}

// advertise notes a setting about to go out. A frame size is bounded by
// the largest valid value ever advertised: the server may still use it
// for a moment after a smaller one. (An invalid setting ends the
// connection: nothing the server sends after it matters.)
func (st *h2fState) advertise(id http2.SettingID, val uint32) {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch id {
	case http2.SettingInitialWindowSize:
		if val <= 1<<31-1 {
			st.initial = int64(val)
			for _, s := range st.streams {
				s.maxInitial = max(s.maxInitial, st.initial)
			}
		}
	case http2.SettingMaxFrameSize:
		if val >= 16384 && val <= 1<<24-1 {
			st.maxFrame = max(st.maxFrame, val)
		}
	}
}

// wait waits until cond, called under mu, holds, or within passes.
func (st *h2fState) wait(cond func() bool, within time.Duration) bool {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		st.mu.Lock()
		ok := cond()
		st.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-st.event:
		case <-timer.C:
			return false
		}
	}
}

func (st *h2fState) signal() {
	select {
	case st.event <- struct{}{}:
	default:
	}
}

// read reads the server's frames until the connection ends, checking
// each.
func (st *h2fState) read(c *tls.Conn) {
	fr := http2.NewFramer(nil, c)
	fr.SetMaxReadFrameSize(1<<24 - 1) // sizes are checked against the settings
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var ce http2.ConnectionError
			var se http2.StreamError
			malformed := errors.As(err, &ce) || errors.As(err, &se) || errors.Is(err, http2.ErrFrameTooLarge)
			if malformed {
				// The rest cannot be read as frames; the server must not
				// block on a client that stopped reading.
				io.Copy(io.Discard, c)
			}
			st.mu.Lock()
			if malformed {
				st.fail("the server sent a malformed frame: %v", err)
			}
			st.done, st.endErr = true, err
			st.mu.Unlock()
			st.signal()
			return
		}
		st.mu.Lock()
		st.check(f)
		st.mu.Unlock()
		st.signal()
	}
}

// summary describes what the server sent, for the test's log.
func (st *h2fState) summary() string {
	kinds := make([]string, 0, len(st.seen))
	for k, n := range st.seen {
		kinds = append(kinds, fmt.Sprintf("%s ×%d", k, n))
	}
	slices.Sort(kinds)
	return fmt.Sprintf("%s, then the connection ended (%v)", strings.Join(kinds, ", "), st.endErr)
}

// check checks a frame from the server; the caller holds mu.
func (st *h2fState) check(f http2.Frame) {
	fh := f.Header()
	kind := fh.Type.String()
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		if status := f.PseudoValue("status"); status != "" {
			kind += " " + status
		}
	case *http2.RSTStreamFrame:
		kind += " " + f.ErrCode.String()
	case *http2.GoAwayFrame:
		kind += " " + f.ErrCode.String()
	}
	st.seen[kind]++
	if fh.Length > st.maxFrame {
		st.fail("a %v frame of %d bytes, past the largest SETTINGS_MAX_FRAME_SIZE advertised, %d", fh.Type, fh.Length, st.maxFrame)
	}
	id := fh.StreamID
	if id == 0 {
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			if st.goaway && f.LastStreamID > st.goawayLast {
				st.fail("a GOAWAY with last stream %d after one with %d: it must not grow (RFC 9113 6.8)", f.LastStreamID, st.goawayLast)
			}
			st.goaway, st.goawayLast = true, f.LastStreamID
		case *http2.PingFrame:
			if f.IsAck() {
				st.acks[f.Data] = true
				if string(f.Data[:3]) == "\xfffz" {
					n := uint64(0)
					for i := range 5 {
						n |= uint64(f.Data[3+i]) << (8 * i)
					}
					st.synced = max(st.synced, n)
				}
			}
		}
		return
	}
	if _, ok := f.(*http2.PushPromiseFrame); ok {
		st.fail("a PUSH_PROMISE on stream %d: the server does not push", id)
		return
	}
	s := st.stream(id)
	if _, ok := f.(*http2.RSTStreamFrame); !ok && !s.opened {
		st.fail("a %v frame on stream %d, which the client never opened", fh.Type, id)
		return
	}
	// A stream reset by the server once it answered, or by the client
	// and the server read that (a sync after it was acknowledged), is
	// closed: nothing but PRIORITY may follow (RFC 9113 5.1), save the
	// RST_STREAM that answers a frame the client sent on it since (5.1,
	// 5.4.2): STREAM_CLOSED, or the error of a malformed frame. (A reset
	// before any answer may be of a stream the client had not opened yet,
	// when the server read it: not certain enough to check.)
	if s.reset || s.clientRST != 0 && st.synced >= s.clientRST {
		by := "the server"
		if !s.reset {
			by = "the client"
		}
		rst, ok := f.(*http2.RSTStreamFrame)
		switch {
		case !ok:
			st.fail("a %v frame on stream %d, which %s had reset", fh.Type, id, by)
			return
		case rst.ErrCode != http2.ErrCodeStreamClosed && rst.ErrCode != http2.ErrCodeProtocol &&
			rst.ErrCode != http2.ErrCodeFrameSize && rst.ErrCode != http2.ErrCodeFlowControl:
			st.fail("RST_STREAM(%v) on stream %d, which %s had reset: a closed stream takes no frames but PRIORITY (RFC 9113 5.1, 5.4.2)", rst.ErrCode, id, by)
		}
	}
	switch f := f.(type) {
	case *http2.RSTStreamFrame:
		s.rsts++
		s.reset = s.reset || s.started
	case *http2.MetaHeadersFrame:
		if s.ended {
			st.fail("HEADERS on stream %d after its END_STREAM", id)
			return
		}
		if !s.started && st.goaway && id > st.goawayLast {
			st.fail("a response on stream %d after a GOAWAY naming %d as the last stream processed", id, st.goawayLast)
		}
		s.started = true
		if s.final {
			if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
				st.fail("HEADERS on stream %d after its response head is not trailers: END_STREAM %v, pseudo-fields %v", id, f.StreamEnded(), f.PseudoFields())
			}
		} else {
			code, err := strconv.Atoi(f.PseudoValue("status"))
			switch {
			case err != nil || code < 100 || code > 999 || code == http.StatusSwitchingProtocols || len(f.PseudoFields()) != 1:
				st.fail("a response head on stream %d with pseudo-fields %v", id, f.PseudoFields())
			case code < 200:
				if f.StreamEnded() {
					st.fail("a %d response ends stream %d", code, id)
				}
			default:
				s.final, s.status = true, code
				for _, hf := range f.RegularFields() {
					if hf.Name == "content-length" {
						if n, err := strconv.ParseInt(hf.Value, 10, 64); err == nil {
							s.clen = n
						}
					}
				}
			}
		}
		if f.StreamEnded() {
			st.end(id, s)
		}
	case *http2.DataFrame:
		if s.ended {
			st.fail("DATA on stream %d after its END_STREAM", id)
			return
		}
		if !s.final {
			st.fail("DATA on stream %d before a response head", id)
		}
		s.data += int64(len(f.Data()))
		s.flow += int64(fh.Length)
		st.connFlow += int64(fh.Length)
		if st.connFlow > st.connGranted {
			st.fail("%d bytes of DATA on the connection, past its window: 65,535 and the client's increments make %d", st.connFlow, st.connGranted)
		}
		if s.flow > s.maxInitial+s.granted {
			st.fail("%d bytes of DATA on stream %d, past its window: at most %d initially and %d of increments", s.flow, id, s.maxInitial, s.granted)
		}
		if f.StreamEnded() {
			st.end(id, s)
		}
	}
}

// end checks a response that ended (END_STREAM) against its head.
func (st *h2fState) end(id uint32, s *h2fStream) {
	s.ended = true
	if s.method == "" || !s.final {
		return
	}
	if s.method == http.MethodHead || s.status == http.StatusNoContent || s.status == http.StatusNotModified {
		if s.data > 0 {
			st.fail("a %d response to %s on stream %d has a body of %d bytes", s.status, s.method, id, s.data)
		}
		return
	}
	if s.clen >= 0 && s.data != s.clen {
		st.fail("a %d response on stream %d ends after %d bytes of its content-length %d", s.status, id, s.data, s.clen)
	}
}

// h2fSeeds are the seed inputs: each a scenario named in its comment,
// written with the builders below.
func h2fSeeds() [][]byte {
	get := func(path byte) []byte { return h2fReq(h2fDefault, 0, path<<2) }
	post := func(path byte, extra ...byte) []byte { return h2fReq(h2fDefault, 1, 1|path<<2, extra...) }
	sync, await, awaitData := h2fOp(h2fSync, 0), h2fOp(h2fAwait, 0), h2fOp(h2fAwait, 0)|0x80
	return [][]byte{
		// A valid GET, and two more on the same connection.
		h2fCat(get(h2fPathRoot), await, get(h2fPathTrailers), get(h2fPathRoot), sync),
		// A POST with its body in DATA and END_STREAM.
		h2fCat(post(h2fPathRead, h2fLen5), h2fData1(h2fDefault, 1, 5), await),
		// Rapid reset (CVE-2023-44487): HEADERS and RST_STREAM, 100 times.
		h2fCat(get(h2fPathRoot), h2fRST1(h2fCurrent, http2.ErrCodeCancel), h2fRepeat1(2, 99), sync),
		// WINDOW_UPDATE overflow: on a stream (a stream error), then on
		// the connection (a connection error).
		h2fCat(get(h2fPathStream), h2fWindow1(h2fCurrent, 6), sync, h2fWindow1(h2fZero, 6)),
		// Repeated settings (the last stands): a small stream window, a
		// large frame size, no HPACK table. The response waits for
		// increments of the stream and the connection.
		h2fCat(h2fSettings1(0, [2]byte{4, 7}, [2]byte{4, 3}, [2]byte{5, 6}, [2]byte{5, 10}, [2]byte{1, 0}),
			get(h2fPathStream), sync, h2fWindow1(h2fCurrent, 2), h2fRepeat1(1, 10),
			h2fWindow1(h2fCurrent, 5), h2fWindow1(h2fZero, 3), h2fRepeat1(1, 50), await),
		// Small windows: a stream's of 100 bytes, given more a bit at a
		// time; then the connection's, shared by two streams.
		h2fCat(h2fSettings1(0, [2]byte{4, 3}), get(h2fPathStream), awaitData, h2fWindow1(h2fCurrent, 2), h2fRepeat1(1, 3), sync),
		h2fCat(h2fSettings1(0, [2]byte{4, 9}), get(h2fPathStream), get(h2fPathStream), awaitData, sync,
			h2fWindow1(h2fZero, 5), await, sync),
		// Invalid settings: ENABLE_PUSH 2; a window past 2^31-1 while a
		// stream is open; an ACK with a payload.
		h2fSettings1(0, [2]byte{2, 2}),
		h2fCat(get(h2fPathHold), h2fSettings1(0, [2]byte{4, 13})),
		h2fSettings1(1, [2]byte{4, 1}),
		// DATA on a closed stream (a stream error), then on an idle one (a
		// connection error).
		h2fCat(get(h2fPathRoot), await, h2fData1(h2fCurrent, 1, 10), sync, h2fData1(h2fNew, 0, 10)),
		// HEADERS without END_HEADERS, then its CONTINUATION; then one
		// followed by a PING instead.
		h2fCat(h2fReq(h2fDefault, 2, 0), 128, h2fCont1(h2fCurrent, 0), await,
			h2fReq(h2fDefault, 2, 0), 128, h2fOp(h2fPing, 0), 0, 1),
		// Request trailers after a body.
		h2fCat(post(h2fPathRead, h2fTrailerDecl), h2fData1(h2fDefault, 0, 5),
			h2fReq(h2fCurrent, 0, 0x80, h2fTrailerXT), await),
		// A body longer than its content-length, then DATA on the stream
		// the server reset.
		h2fCat(post(h2fPathRead, h2fLen5), h2fData1(h2fDefault, 0, 10), h2fData1(h2fDefault, 1, 1), await),
		// A PING flood.
		h2fCat(h2fOp(h2fPing, 0), 0, 7, h2fRepeat1(1, 256), h2fRepeat1(1, 256), sync),
		// PRIORITY naming its own stream, an idle one and an open one, and
		// HEADERS whose priority names its own.
		h2fCat(h2fOp(h2fPriority, h2fMaxID), h2fMaxID, 16, get(h2fPathHold), h2fOp(h2fPriority, h2fCurrent), h2fCurrent, 16,
			h2fReq(h2fDefault, 8, 0), h2fCurrent, 16, sync),
		// GOAWAY from the client while a request body streams and a
		// response waits for its window: both finish.
		h2fCat(post(h2fPathRead, h2fLenBig), h2fData1(h2fDefault, 0, 16384), h2fRepeat1(1, 2), get(h2fPathStream),
			h2fOp(h2fGoAway, 0), h2fCurrent, 0, 0, h2fData1(h2fPrevious, 0, 16384),
			h2fData1(h2fPrevious, 1, 70000-4*16384), h2fWindow1(h2fCurrent, 5), h2fWindow1(h2fZero, 5), await, sync),
		// Malformed requests, each a stream error, and a header list past
		// the limit (a 431); a valid request after them is served, its
		// fields decoded with the HPACK table they left.
		h2fCat(h2fReq(h2fDefault, 0, 0, h2fUpper, h2fConnection), h2fReq(h2fDefault, 0, 0, h2fTEGzip, h2fProtocol),
			h2fReq(h2fDefault, 0, 0, h2fDupMethod), h2fReq(h2fDefault, 0, 0, h2fHuge, h2fHuge),
			h2fReq(h2fDefault, 0, 6<<2), get(h2fPathRoot), await, sync),
		// A field past the decoder's limit in CONTINUATION frames, then
		// empty CONTINUATION frames.
		h2fCat(h2fReq(h2fDefault, 2, 0, h2fHuger), 200, h2fCont1(h2fCurrent, 2), 60, h2fRepeat1(1, 200)),
		// Expect: 100-continue, then the body.
		h2fCat(post(h2fPathRead, h2fExpect), sync, h2fData1(h2fDefault, 1, 3), await),
		// A frame of an unknown type (ignored), then a PING of 7 bytes.
		h2fCat(h2fOp(h2fUnknown, h2fZero), 0, 0, 3, 'a', 'b', 'c', sync,
			h2fOp(h2fRaw, h2fZero), byte(http2.FramePing), 0, 7, 1, 2, 3, 4, 5, 6, 7),
		// A PUSH_PROMISE from the client.
		h2fCat(get(h2fPathHold), h2fOp(h2fPush, h2fCurrent), 0, h2fEven, 0),
	}
}

// h2fCat joins actions and bytes.
func h2fCat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case []byte:
			b = append(b, p...)
		case byte:
			b = append(b, p)
		case int:
			b = append(b, byte(p))
		case rune:
			b = append(b, byte(p))
		default:
			panic(fmt.Sprintf("h2fCat: %T", p))
		}
	}
	return b
}

// h2fOp is the first byte of an action of kind on stream sel.
func h2fOp(kind, sel byte) byte { return kind | sel<<4 }

// h2fReq is a HEADERS action (see headers and headerBlock) with extra
// fields of h2fField; what flags ask for (padding, a priority, a split)
// follows it.
func h2fReq(sel, flags, hb1 byte, extra ...byte) []byte {
	b := []byte{h2fOp(h2fHeaders, sel), flags, hb1, byte(len(extra))}
	return append(b, extra...)
}

func h2fData1(sel, flags byte, n int) []byte {
	return []byte{h2fOp(h2fData, sel), flags, byte(n >> 8), byte(n)}
}

func h2fCont1(sel, flags byte) []byte { return []byte{h2fOp(h2fContinuation, sel), flags} }

func h2fRST1(sel byte, code http2.ErrCode) []byte { return []byte{h2fOp(h2fRST, sel), byte(code)} }

// h2fWindow1 is a WINDOW_UPDATE of h2fIncrements[inc].
func h2fWindow1(sel, inc byte) []byte { return []byte{h2fOp(h2fWindow, sel), inc} }

// h2fSettings1 is a SETTINGS frame of settings, each an id and an index
// in h2fValues.
func h2fSettings1(flags byte, settings ...[2]byte) []byte {
	b := []byte{h2fOp(h2fSettings, h2fDefault), flags, byte(len(settings))}
	for _, s := range settings {
		b = append(b, s[0], s[1])
	}
	return b
}

// h2fRepeat1 repeats the n actions before it times more times.
func h2fRepeat1(n, times int) []byte { return []byte{h2fRepeat, byte(n - 1), byte(times - 1)} }
