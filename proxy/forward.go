package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// forwarder is the data plane: it moves one request to one upstream address
// and the response back. Routing, counting and draining stay outside it, so
// a faster implementation can replace httputil.ReverseProxy by satisfying
// this interface alone.
type forwarder interface {
	// forward sends r to addr and copies the response to w. It returns nil
	// once it has written a response (even one cut short: it may then panic
	// with http.ErrAbortHandler, as ReverseProxy does). It returns an error
	// only when it wrote nothing to w, leaving the caller free to retry on
	// another instance or answer with a problem.
	forward(w http.ResponseWriter, r *http.Request, addr string) error
	// closeIdle closes idle upstream connections.
	closeIdle()
}

// reverseProxy is the forwarder built on httputil.ReverseProxy: one shared
// ReverseProxy and Transport for every upstream, the target address carried
// in the request context.
type reverseProxy struct {
	rp *httputil.ReverseProxy
	tr *http.Transport
}

var _ forwarder = (*reverseProxy)(nil)

// attempt carries one forward call's target into the shared ReverseProxy's
// Rewrite and its error back out of ErrorHandler (both run on the caller's
// goroutine).
type attempt struct {
	addr string
	err  error
}

type attemptKey struct{}

func newReverseProxy(headerTimeout time.Duration, log *slog.Logger) *reverseProxy {
	tr := &http.Transport{
		// Upstreams are loopback instances: never send them through a proxy
		// from the environment.
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0, // no overall cap; the per-host cap bounds it
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
		// Pass bodies through as the app encoded them; decompressing and
		// recompressing would only burn CPU.
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
	}
	f := &reverseProxy{tr: tr}
	f.rp = &httputil.ReverseProxy{
		Rewrite:   rewrite,
		Transport: tr,
		// ReverseProxy already flushes text/event-stream and bodies of unknown
		// length at once (FlushInterval -1 for those); other responses are
		// buffered by the ResponseWriter as usual.
		FlushInterval: 0,
		BufferPool:    bufferPool{},
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// Report instead of answering: the routing side decides between
			// a retry, a 502 and a 504, and knows the app to name.
			if a, ok := r.Context().Value(attemptKey{}).(*attempt); ok {
				a.err = err
				return
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return f
}

// rewrite points the outbound request at the attempt's address. The Host
// header stays what the client sent, so apps can build absolute URLs and
// serve several names; X-Forwarded-* describe the client's request.
// Forwarding headers from the client are dropped (ReverseProxy strips them
// before Rewrite): baton is the edge, and they would be spoofable.
func rewrite(pr *httputil.ProxyRequest) {
	a := pr.Out.Context().Value(attemptKey{}).(*attempt)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = a.addr
	pr.SetXForwarded()
	pr.Out.Header.Set("Forwarded", forwardedValue(pr.In))
	// Clone copied the request's trailers before the body was read, that
	// is, without values; share the map that reading the body fills.
	pr.Out.Trailer = pr.In.Trailer
}

// forwardedValue is the RFC 7239 Forwarded field for r, replacing any the
// client sent.
func forwardedValue(r *http.Request) string {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	ff := "for=" + ip
	if parsed := net.ParseIP(ip); parsed == nil || parsed.To4() == nil {
		ff = "for=" + strconv.Quote("["+ip+"]")
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	return ff + ";host=" + strconv.Quote(r.Host) + ";proto=" + proto
}

func (f *reverseProxy) forward(w http.ResponseWriter, r *http.Request, addr string) error {
	a := &attempt{addr: addr}
	r = r.WithContext(context.WithValue(r.Context(), attemptKey{}, a))
	body, _ := r.Body.(*clientBody) // ServeHTTP's wrapper, when there is a body
	f.rp.ServeHTTP(w, r)
	if a.err != nil && body != nil && body.failed() != nil {
		return &clientBodyError{body.failed()}
	}
	return a.err
}

// clientBody is a request body as ServeHTTP reads it from the client: it
// counts the bytes (for the metrics) and notes how reading failed, so that
// a failure of the client's (a body shorter or longer than its
// Content-Length, a stream the client reset) is not blamed on the
// instance.
//
// The Transport may still be reading it after the response came back (an
// instance that answered before reading the whole body), so what it notes
// is read under a lock.
type clientBody struct {
	io.ReadCloser
	n   atomic.Int64
	mu  sync.Mutex
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

// failed is how reading the body failed, if it did.
func (b *clientBody) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// clientBodyError is a forward that failed because the client's request
// body did: answered as the client's error, never as a 502.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

func (f *reverseProxy) closeIdle() { f.tr.CloseIdleConnections() }

// bufferPool recycles ReverseProxy's copy buffers. It pools array pointers,
// not slices: putting a []byte into a sync.Pool would allocate its header
// each time, while converting back to the array pointer is free.
type bufferPool struct{}

const copyBufferSize = 32 << 10

var copyBuffers = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

func (bufferPool) Get() []byte { return copyBuffers.Get().(*[copyBufferSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if cap(b) >= copyBufferSize {
		copyBuffers.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
	}
}

// isRefused reports whether err is a refused connection: the upstream port
// has no listener (a crashed or stopped instance), and nothing was sent.
func isRefused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) && errors.As(err, &op) && op.Op == "dial"
}

// isTimeout reports whether err is a dial or response-header timeout.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
