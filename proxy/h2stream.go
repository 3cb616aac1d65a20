package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// This file holds one HTTP/2 stream of h2server.go: the request it
// carries (h2Body streams its body), and its response (h2Writer, the
// http.ResponseWriter that ServeHTTP writes to).

// h2Stream is a request and its response on an h2Session.
type h2Stream struct {
	s      *h2Session
	id     uint32
	cancel context.CancelFunc
	body   *h2Body // nil for a request without a body
	// reset is set once RST_STREAM was received, or is sent or about to
	// be: no other frame may follow. Writers check it under the session's
	// write lock.
	reset atomic.Bool
	// tooLarge: the request's header list was over the limit; it is
	// answered 431 without reaching ServeHTTP.
	tooLarge bool
	// continued: a 100 Continue went to the client, sent as the body was
	// first read or relayed from the upstream; a second says nothing.
	continued atomic.Bool

	// Under the session's mu (taken inside the write lock, never the
	// other way round).
	sendWindow  int64
	recvWindow  int64
	recvUnacked int64
	remoteDone  bool          // the client ended the stream
	closed      bool          // gone from the session's streams
	req         *http.Request // while queued for a handler
}

// newStream checks the request in f (RFC 9113 8.3.1 and 8.2.2: a
// malformed one is a stream error) and builds its stream and
// http.Request.
func (s *h2Session) newStream(f *http2.MetaHeadersFrame) (*h2Stream, *http.Request, error) {
	id := f.StreamID
	malformed := http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	method, scheme := f.PseudoValue("method"), f.PseudoValue("scheme")
	authority, path := f.PseudoValue("authority"), f.PseudoValue("path")
	if f.PseudoValue("protocol") != "" { // extended CONNECT is not offered
		return nil, nil, malformed
	}
	if method == http.MethodConnect {
		if path != "" || scheme != "" || authority == "" {
			return nil, nil, malformed
		}
	} else if method == "" || path == "" || (scheme != "https" && scheme != "http") {
		return nil, nil, malformed
	}
	if !httpguts.ValidHeaderFieldName(method) {
		return nil, nil, malformed
	}
	fields := f.RegularFields()
	header := make(http.Header, len(fields))
	te := 0
	for _, hf := range fields {
		switch hf.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return nil, nil, malformed
		case "te":
			if te++; te > 1 || !strings.EqualFold(hf.Value, "trailers") {
				return nil, nil, malformed
			}
		}
		k := s.canonicalKey(hf.Name)
		header[k] = append(header[k], hf.Value)
	}
	if authority == "" {
		authority = header.Get("Host")
	}
	var u *url.URL
	requestURI := path
	if method == http.MethodConnect {
		u, requestURI = &url.URL{Host: authority}, authority
	} else {
		var err error
		if u, err = url.ParseRequestURI(path); err != nil {
			return nil, nil, malformed
		}
	}
	var trailer http.Header
	for _, v := range header["Trailer"] {
		for key := range strings.SplitSeq(v, ",") {
			switch key = http.CanonicalHeaderKey(strings.TrimSpace(key)); key {
			case "", "Transfer-Encoding", "Trailer", "Content-Length":
			default:
				if trailer == nil {
					trailer = make(http.Header)
				}
				trailer[key] = nil
			}
		}
	}
	delete(header, "Trailer")

	ctx, cancel := context.WithCancel(s.ctx)
	st := &h2Stream{s: s, id: id, cancel: cancel, recvWindow: h2StreamWindow, tooLarge: f.Truncated}
	req := &http.Request{
		Method: method, URL: u, Proto: "HTTP/2.0", ProtoMajor: 2, Header: header,
		Host: authority, RemoteAddr: s.remote, RequestURI: requestURI, TLS: s.tlsState,
		Body: http.NoBody, Trailer: trailer,
	}
	if !f.StreamEnded() {
		req.ContentLength = -1
		if vv := header["Content-Length"]; len(vv) > 0 {
			cl, err := strconv.ParseUint(vv[0], 10, 63)
			if err != nil {
				cancel()
				return nil, nil, malformed
			}
			req.ContentLength = int64(cl)
		}
		st.body = &h2Body{st: st, declared: req.ContentLength, trailer: trailer,
			needsContinue: header.Get("Expect") == "100-continue"}
		st.body.cond.L = &s.mu
		req.Body = st.body
	}
	return st, req.WithContext(ctx), nil
}

// run serves st's request and ends the stream.
func (st *h2Stream) run(req *http.Request) {
	s := st.s
	w := h2Writers.Get().(*h2Writer)
	w.st, w.head = st, req.Method == http.MethodHead
	// A response that ends closes the stream (send); one that does not
	// is reset, which closes it too.
	if aborted := st.serve(w, req); aborted || w.finish() != nil {
		st.resetWith(http2.ErrCodeInternal)
	}
	w.release()
	s.handlerReturned()
}

// serve runs ServeHTTP; it reports whether the response was aborted
// (a panic, as ReverseProxy's http.ErrAbortHandler for a body cut short).
func (st *h2Stream) serve(w *h2Writer, req *http.Request) (aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			aborted = true
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				st.s.h.p.log.Error("proxy: panic serving HTTP/2 stream", "client", st.s.remote, "panic", fmt.Sprint(v), "stack", string(buf))
			}
		}
	}()
	if st.tooLarge {
		badRequest(&parseError{http.StatusRequestHeaderFieldsTooLarge, "its header fields are too large"}).write(w)
		return false
	}
	st.s.h.p.ServeHTTP(w, req)
	return false
}

// closeLocked takes st off its session and ends what waits on it: the
// request's context, its body and its writer.
func (st *h2Stream) closeLocked(err error) {
	if st.closed {
		return
	}
	s := st.s
	st.closed = true
	delete(s.streams, st.id)
	st.cancel()
	if b := st.body; b != nil {
		if err == nil {
			err = errH2StreamClosed
		}
		s.recvUnacked += b.fail(err)
	}
	s.cond.Broadcast()
	s.armIdleLocked()
}

// remoteEndLocked notes the end of the request (END_STREAM).
func (st *h2Stream) remoteEndLocked() error {
	st.remoteDone = true
	var err error
	if b := st.body; b != nil {
		if b.declared >= 0 && b.received != b.declared {
			s := st.s
			s.recvUnacked += b.fail(fmt.Errorf("the request body ended after %d of its Content-Length of %d bytes", b.received, b.declared))
			err = http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
		} else if b.err == nil {
			b.err = io.EOF
			b.cond.Broadcast()
		}
	}
	return err
}

// trailersLocked takes the request's trailers, which end its body.
func (st *h2Stream) trailersLocked(f *http2.MetaHeadersFrame) error {
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 || st.body == nil {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	b := st.body
	for _, hf := range f.RegularFields() {
		k := st.s.canonicalKey(hf.Name)
		if _, declared := b.trailer[k]; declared {
			if b.got == nil {
				b.got = make(http.Header)
			}
			b.got[k] = append(b.got[k], hf.Value)
		}
	}
	return st.remoteEndLocked()
}

// reserve waits until st may send some of n bytes of body and returns
// how many, taken from its and the connection's windows.
func (st *h2Stream) reserve(n int) (int, error) {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if st.closed || s.closed {
			return 0, errH2StreamClosed
		}
		if st.sendWindow > 0 && s.sendWindow > 0 {
			k := int(min(int64(n), st.sendWindow, s.sendWindow))
			st.sendWindow -= int64(k)
			s.sendWindow -= int64(k)
			return k, nil
		}
		s.cond.Wait()
	}
}

// h2Body is a request body as it arrives in DATA frames. The client may
// send only as much as the windows allow, which bounds buf.
type h2Body struct {
	st   *h2Stream
	cond sync.Cond // on the session's mu: data came or the body ended
	// Under the session's mu.
	buf      []byte
	off      int   // buf[off:] is unread
	received int64 // bytes the client sent
	declared int64 // its Content-Length, or -1
	err      error // io.EOF after the last byte, or why the body failed
	trailer  http.Header
	got      http.Header // trailers received, for trailer
	// needsContinue: the client waits for 100 Continue before sending
	// (Expect); only Read uses it.
	needsContinue bool
}

func (b *h2Body) Read(p []byte) (int, error) {
	st := b.st
	s := st.s
	if b.needsContinue {
		b.needsContinue = false
		if st.continued.CompareAndSwap(false, true) {
			s.write(func() error {
				if st.reset.Load() {
					return nil
				}
				return s.writeHead(st.id, http.StatusContinue, nil, false)
			})
		}
	}
	s.mu.Lock()
	for b.off == len(b.buf) && b.err == nil {
		b.cond.Wait()
	}
	if b.off < len(b.buf) {
		n := copy(p, b.buf[b.off:])
		b.off += n
		s.mu.Unlock()
		s.giveBack(st, int64(n))
		return n, nil
	}
	err := b.err
	if err == io.EOF {
		for k, v := range b.got {
			b.trailer[k] = v // the handler's Request.Trailer
		}
		b.got = nil
	}
	s.mu.Unlock()
	return 0, err
}

// Close stops the body: what the client sends later is dropped.
func (b *h2Body) Close() error {
	s := b.st.s
	s.mu.Lock()
	unread := b.fail(errBodyClosed)
	s.mu.Unlock()
	if unread > 0 {
		s.giveBack(nil, unread)
	}
	return nil
}

var errBodyClosed = errors.New("http: invalid Read on closed Body")

// appendLocked adds data that arrived.
func (b *h2Body) appendLocked(data []byte) {
	if b.off > 0 && len(b.buf)+len(data) > cap(b.buf) {
		n := copy(b.buf, b.buf[b.off:])
		b.buf, b.off = b.buf[:n], 0
	}
	b.buf = append(b.buf, data...)
	b.cond.Broadcast()
}

// fail ends the body with err unless it had ended; it drops what was
// unread and returns its length, which the connection's window gets
// back.
func (b *h2Body) fail(err error) int64 {
	unread := int64(len(b.buf) - b.off)
	b.buf, b.off = nil, 0
	if b.err == nil || b.err == io.EOF && err == errBodyClosed {
		b.err = err
	}
	b.cond.Broadcast()
	return unread
}

// h2Writer is the http.ResponseWriter of an h2Stream. A response is
// held until the handler returns, flushes or writes more than a frame's
// worth, so that a small response leaves as HEADERS and DATA in one
// write.
type h2Writer struct {
	st     *h2Stream
	head   bool // the request is HEAD: no body goes out
	header http.Header
	status int
	// fields is the response head as sent: lower-case names, taken when
	// the handler called WriteHeader (it may change the header map
	// afterwards, for trailers).
	fields  []hpack.HeaderField
	hasLen  bool     // fields has a Content-Length
	trailer []string // trailer names the head declared
	sent    bool     // HEADERS went out
	buf     []byte   // body not yet sent
	err     error    // the stream can take no more
}

// h2WriterBuffer is how much body an h2Writer holds before sending.
const h2WriterBuffer = 16 << 10

var h2Writers = sync.Pool{New: func() any { return new(h2Writer) }}

// release puts w back in the pool.
func (w *h2Writer) release() {
	h, fields, buf := w.header, w.fields, w.buf
	clear(h)
	clear(fields)
	if cap(buf) > 4*h2WriterBuffer {
		buf = nil
	}
	*w = h2Writer{header: h, fields: fields[:0], buf: buf[:0]}
	h2Writers.Put(w)
}

func (w *h2Writer) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *h2Writer) WriteHeader(code int) {
	if w.status != 0 || w.err != nil {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 {
		if code == http.StatusContinue && !w.st.continued.CompareAndSwap(false, true) {
			return // the client has its 100 already (h2Body.Read)
		}
		// An interim response (103 Early Hints) goes out at once with the
		// fields set so far; they stay set for the final one.
		fields := w.headFields(w.fields[:0])
		w.fields = fields[:0]
		st, s := w.st, w.st.s
		if err := s.write(func() error {
			if st.reset.Load() {
				return errH2StreamClosed
			}
			return s.writeHead(st.id, code, fields, false)
		}); err != nil {
			w.err = err
		}
		return
	}
	w.status = code
	w.fields = w.headFields(w.fields[:0])
}

// headFields appends the header map's fields as HTTP/2 sends them:
// names in lower case, connection-specific fields left out (RFC 9113
// 8.2.2), as are invalid ones.
func (w *h2Writer) headFields(fields []hpack.HeaderField) []hpack.HeaderField {
	w.hasLen, w.trailer = false, w.trailer[:0]
	for k, vv := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
			continue
		case "Content-Length":
			w.hasLen = true
		case "Trailer":
			for _, v := range vv {
				for t := range strings.SplitSeq(v, ",") {
					if t = strings.TrimSpace(t); t != "" {
						w.trailer = append(w.trailer, http.CanonicalHeaderKey(t))
					}
				}
			}
		}
		fields = appendFields(fields, k, vv)
	}
	return fields
}

// appendFields appends the values vv of the field k as HTTP/2 sends them
// (the name in lower case), leaving out what is not a valid field.
func appendFields(fields []hpack.HeaderField, k string, vv []string) []hpack.HeaderField {
	if !httpguts.ValidHeaderFieldName(k) {
		return fields
	}
	name := lowerKey(k)
	for _, v := range vv {
		if httpguts.ValidHeaderFieldValue(v) {
			fields = append(fields, hpack.HeaderField{Name: name, Value: v})
		}
	}
	return fields
}

// lowerKey is the lower-case form of a canonical field name.
func lowerKey(k string) string {
	if l, ok := commonLowerKeys()[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

var commonLowerKeys = sync.OnceValue(func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Origin", "Age", "Cache-Control", "Content-Disposition",
		"Content-Encoding", "Content-Language", "Content-Length", "Content-Location", "Content-Range",
		"Content-Security-Policy", "Content-Type", "Date", "Etag", "Expires", "Last-Modified", "Link",
		"Location", "Referrer-Policy", "Retry-After", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Trailer", "Vary", "Via", "Www-Authenticate",
		"X-Content-Type-Options", "X-Frame-Options", "X-Request-Id",
	} {
		m[k] = strings.ToLower(k)
	}
	return m
})

// bodyAllowed reports whether a response with w's status has a body.
func (w *h2Writer) bodyAllowed() bool {
	return !w.head && w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

func (w *h2Writer) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.head {
		return len(p), nil
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= h2WriterBuffer {
		if err := w.send(false); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// FlushError sends the head and the body written so far.
func (w *h2Writer) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	return w.send(false)
}

func (w *h2Writer) Flush() { w.FlushError() }

// finish sends what is left of the response and ends the stream.
func (w *h2Writer) finish() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if !w.sent && !w.hasLen && w.bodyAllowed() && len(w.buf) > 0 {
		// The whole body is here: say how long it is, as net/http does.
		w.fields = append(w.fields, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(w.buf))})
	}
	return w.send(true)
}

// trailers returns the trailer fields the handler set: under the names
// the head declared, and under http.TrailerPrefix.
func (w *h2Writer) trailers() []hpack.HeaderField {
	var out []hpack.HeaderField
	for _, k := range w.trailer {
		out = appendFields(out, k, w.header[k])
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			out = appendFields(out, http.CanonicalHeaderKey(name), vv)
		}
	}
	return out
}

// send sends the head if it has not gone out, and the body held in buf;
// with end, the trailers and the end of the stream too. A body larger
// than the windows goes out as they open.
func (w *h2Writer) send(end bool) error {
	st, s := w.st, w.st.s
	var trailers []hpack.HeaderField
	if end {
		trailers = w.trailers()
	}
	data := w.buf // empty for HEAD: Write keeps nothing
	for {
		var chunk []byte
		if len(data) > 0 {
			n, err := st.reserve(len(data))
			if err != nil {
				w.err = err
				return err
			}
			chunk, data = data[:n], data[n:]
		}
		last := len(data) == 0
		endData := end && last && len(trailers) == 0
		var streamErr error
		err := s.write(func() error {
			if st.reset.Load() {
				streamErr = errH2StreamClosed
				return nil
			}
			endHead := !w.sent && endData && len(chunk) == 0
			if !w.sent {
				w.sent = true
				if err := s.writeHead(st.id, w.status, w.fields, endHead); err != nil {
					return err
				}
			}
			if (len(chunk) > 0 || endData) && !endHead {
				if err := s.writeData(st.id, chunk, endData); err != nil {
					return err
				}
			}
			if end && last && len(trailers) > 0 {
				if err := s.writeFields(st.id, trailers, true); err != nil {
					return err
				}
			}
			if !(end && last) {
				return nil
			}
			// The stream is closed on this side before the client can see
			// its end: a frame the client sends on it after that is for a
			// closed stream (a connection error for HEADERS, 5.1).
			s.mu.Lock()
			sending := !st.remoteDone
			st.closeLocked(nil)
			s.mu.Unlock()
			if !sending {
				return nil
			}
			// The response is whole and the rest of the request is not
			// needed (RFC 9113 8.1). In the same write as the response's
			// end: a client blocked on sending the body (curl) may not
			// read a later one.
			st.reset.Store(true)
			return s.wfr.WriteRSTStream(st.id, http2.ErrCodeNo)
		})
		if err == nil {
			err = streamErr
		}
		if err != nil {
			w.err = err
			return err
		}
		if last {
			w.buf = w.buf[:0]
			return nil
		}
	}
}

// statusValues holds the :status values, made once.
var statusValues = sync.OnceValue(func() []string {
	v := make([]string, 1000)
	for i := 100; i < len(v); i++ {
		v[i] = strconv.Itoa(i)
	}
	return v
})

// writeHead writes a response head for stream id: status and fields.
// The caller holds the write lock.
func (s *h2Session) writeHead(id uint32, status int, fields []hpack.HeaderField, end bool) error {
	s.hbuf.Reset()
	s.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusValues()[status]})
	return s.encodeAndWrite(id, fields, end)
}

// writeFields writes a header block of fields alone (trailers).
func (s *h2Session) writeFields(id uint32, fields []hpack.HeaderField, end bool) error {
	s.hbuf.Reset()
	return s.encodeAndWrite(id, fields, end)
}

// encodeAndWrite adds fields to the block in hbuf and writes it as
// HEADERS and, past the client's frame size, CONTINUATION frames.
func (s *h2Session) encodeAndWrite(id uint32, fields []hpack.HeaderField, end bool) error {
	for _, f := range fields {
		s.henc.WriteField(f)
	}
	block := s.hbuf.Bytes()
	max := int(s.maxFrame.Load())
	frag := block[:min(len(block), max)]
	block = block[len(frag):]
	err := s.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: end, EndHeaders: len(block) == 0})
	for err == nil && len(block) > 0 {
		frag = block[:min(len(block), max)]
		block = block[len(frag):]
		err = s.wfr.WriteContinuation(id, len(block) == 0, frag)
	}
	return err
}

// writeData writes data for stream id as DATA frames of at most the
// client's frame size. The caller holds the write lock.
func (s *h2Session) writeData(id uint32, data []byte, end bool) error {
	max := int(s.maxFrame.Load())
	for {
		n := min(len(data), max)
		last := n == len(data)
		if err := s.wfr.WriteData(id, end && last, data[:n]); err != nil {
			return err
		}
		if last {
			return nil
		}
		data = data[n:]
	}
}
