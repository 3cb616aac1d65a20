package proxy

import (
	"context"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// This file is ServeHTTP's fast path (the one h2 streams take): a request
// without a body and without an upgrade goes to the instance on the data
// plane's own pooled connections, from the handler's goroutine, instead of
// through httputil.ReverseProxy and net/http's Transport. The Transport
// hands every exchange to two goroutines of its own (one writes the
// request, one reads the response) and allocates a Request, a Response
// and their header maps; on h2 that was two fifths of the proxy's CPU per
// request. What goes upstream, and what comes back to the client, is what
// ReverseProxy (forward.go) sends and returns: the same fields dropped and
// added, the same flushing, 1xx responses relayed, trailers, and a response
// cut short aborted with http.ErrAbortHandler. Requests with a body, an
// upgrade or an Expect still take ReverseProxy.

// pooledExchange holds one exchange's buffers, reused through a pool.
type pooledExchange struct {
	head []byte
	resp response
}

var pooledExchanges = sync.Pool{New: func() any {
	return &pooledExchange{head: make([]byte, 0, 1<<10)}
}}

// takesPooledPath reports whether r can take the fast path: no body to
// stream, nothing to upgrade, no 100-continue to wait for, and only fields
// that may be sent (ReverseProxy refuses the rest, and answers 502).
func takesPooledPath(r *http.Request) bool {
	if !bodyless(r) || len(r.TransferEncoding) > 0 || r.Method == http.MethodConnect {
		return false
	}
	for k, vv := range r.Header {
		switch k {
		case "Upgrade", "Expect":
			return false
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return httpguts.ValidHostHeader(r.Host)
}

// forwardPooled sends r to u on a pooled connection and copies the
// response to w, as the forwarder interface describes: nil once a
// response was written (a response cut short panics with
// http.ErrAbortHandler when r came through an http.Server), an error when
// nothing was written.
func (p *Proxy) forwardPooled(w http.ResponseWriter, r *http.Request, u *upstream) error {
	x := pooledExchanges.Get().(*pooledExchange)
	defer func() {
		if cap(x.head) <= 64<<10 && cap(x.resp.raw) <= 64<<10 {
			x.resp = response{raw: x.resp.raw[:0], fields: x.resp.fields[:0]}
			pooledExchanges.Put(x)
		}
	}()
	x.head = appendPooledRequest(x.head[:0], r)

	ctx := r.Context()
	now := time.Now()
	replayable := pooledReplayable(r)
	var (
		uc  *upConn
		err error
		// stop ends the watch on the client; false means the client left
		// and cut the upstream connection's reads short.
		stop func() bool
	)
	for {
		if uc == nil || !uc.reused {
			uc = u.pool.get(now.UnixNano())
			if uc != nil && !replayable && !uc.rd.alive() {
				// A request that must not be sent twice goes out only on a
				// connection the upstream has not closed (one syscall).
				uc.close()
				uc = u.pool.get(now.UnixNano())
			}
		} else {
			uc = nil // the pooled one was stale: dial a fresh one
		}
		if uc == nil {
			if uc, err = dial(ctx, u.addr); err != nil {
				return err
			}
		}
		conn := uc.c
		// A client that leaves (its stream reset) ends the wait for the
		// instance, as a cancelled request does in the Transport. The
		// header timeout is set first: set after, it could undo the
		// cancellation's deadline.
		uc.c.SetReadDeadline(now.Add(p.headerTimeout))
		stop = context.AfterFunc(ctx, func() { conn.SetReadDeadline(aLongTimeAgo) })
		// Written by the read that waits for the response (rawio.go).
		uc.rd.pending = x.head
		err = p.readPooledHead(w, uc, &x.resp)
		if err == nil {
			break
		}
		watched := stop()
		stale := uc.reused && replayable && watched && !isTimeout(err) && uc.br.Buffered() == 0 && staleConnError(err)
		uc.close()
		if stale {
			continue
		}
		return err
	}
	uc.c.SetReadDeadline(time.Time{}) // the header timeout does not bound the body
	if ctx.Err() != nil {
		// The client left while the deadline was cleared: the
		// cancellation's deadline may have been undone.
		uc.c.SetReadDeadline(aLongTimeAgo)
	}

	resp := &x.resp
	h := w.Header()
	declared := copyPooledResponseHeader(h, resp)
	w.WriteHeader(resp.status)

	var copyErr error
	keep := !resp.close
	if !resp.bodyless(r.Method == http.MethodHead) {
		copyErr = copyPooledBody(w, uc, resp, h, declared)
		keep = keep && (resp.length >= 0 || resp.chunked)
	}
	if !stop() {
		keep = false // the client left: the read deadline is spoiled
	}
	if copyErr != nil || !keep {
		uc.close()
	} else {
		u.pool.put(uc, time.Now().UnixNano())
	}
	if copyErr != nil && ctx.Value(http.ServerContextKey) != nil {
		// As ReverseProxy does: the response is cut short, and the
		// server must not make it look complete.
		panic(http.ErrAbortHandler)
	}
	return nil
}

// readPooledHead reads the response head from uc into resp, relaying
// interim (1xx) responses to w.
func (p *Proxy) readPooledHead(w http.ResponseWriter, uc *upConn, resp *response) error {
	for {
		var err error
		resp.raw, err = readHead(uc.br, resp.raw, p.maxHeaderBytes)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if !resp.parse() || resp.status == http.StatusSwitchingProtocols {
			return errBadResponse // 101: nothing asked for an upgrade
		}
		if resp.status >= 200 {
			return nil
		}
		// 103 Early Hints and the like go to the client with their own
		// fields; the fields set for the final response stay.
		h := w.Header()
		saved := h.Clone()
		clear(h)
		for _, f := range resp.fields {
			if !dropResponseField(f, resp, frameNone) {
				k := textproto.CanonicalMIMEHeaderKey(string(f.name))
				h[k] = append(h[k], string(f.value))
			}
		}
		w.WriteHeader(resp.status)
		clear(h)
		for k, v := range saved {
			h[k] = v
		}
	}
}

// copyPooledResponseHeader adds resp's end-to-end fields to h, as
// ReverseProxy does, and returns the trailer names the response declared.
func copyPooledResponseHeader(h http.Header, resp *response) (declared []string) {
	framing := frameLength
	if resp.chunked {
		framing = frameChunked // its Content-Length, if any, is wrong
	}
	for _, f := range resp.fields {
		if dropResponseField(f, resp, framing) || is(f.name, "transfer-encoding") {
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(string(f.name))
		v := string(f.value)
		if k == "Trailer" {
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					declared = append(declared, textproto.CanonicalMIMEHeaderKey(t))
				}
			}
			if !resp.chunked {
				continue // no trailers come without chunked framing
			}
		}
		h[k] = append(h[k], v)
	}
	return declared
}

// copyPooledBody copies the response body from uc to w, flushing after
// every write when the response streams (Server-Sent Events, or a body of
// unknown length), as ReverseProxy does; then sets the trailers in h.
func copyPooledBody(w http.ResponseWriter, uc *upConn, resp *response, h http.Header, declared []string) error {
	var src io.Reader = uc.br
	switch {
	case resp.chunked:
		src = httputil.NewChunkedReader(uc.br)
	case resp.length >= 0:
		src = io.LimitReader(uc.br, resp.length)
	}
	flush := resp.length < 0 || isEventStream(h.Get("Content-Type"))
	buf := copyBuffers.Get().(*[copyBufferSize]byte)
	defer copyBuffers.Put(buf)
	var n int64
	for {
		k, rerr := src.Read(buf[:])
		if k > 0 {
			n += int64(k)
			if _, err := w.Write(buf[:k]); err != nil {
				return err
			}
			if flush {
				http.NewResponseController(w).Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	switch {
	case resp.length >= 0 && n < resp.length:
		return io.ErrUnexpectedEOF
	case resp.chunked:
		return readPooledTrailer(uc, h, declared)
	}
	return nil
}

// readPooledTrailer reads the trailer section after a chunked body into
// h: declared fields under their names, the others with
// http.TrailerPrefix (see http.ResponseWriter).
func readPooledTrailer(uc *upConn, h http.Header, declared []string) error {
	for {
		line, err := uc.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if isCRLF(line) || len(line) == 1 {
			return nil
		}
		text, _ := nextLine(line)
		name, value, ok := parseFieldLine(text)
		if !ok {
			return errBadResponse
		}
		k := textproto.CanonicalMIMEHeaderKey(string(name))
		announced := false
		for _, d := range declared {
			announced = announced || d == k
		}
		if !announced {
			k = http.TrailerPrefix + k
		}
		h[k] = append(h[k], string(value))
	}
}

// pooledReplayable reports whether r may be sent again after a pooled
// connection turned out closed, as on the data plane (request.replayable).
func pooledReplayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return r.Header["Idempotency-Key"] != nil
}

func isEventStream(ct string) bool {
	const es = "text/event-stream"
	if len(ct) < len(es) || !strings.EqualFold(ct[:len(es)], es) {
		return false // most responses: no parsing (it allocates)
	}
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == es
}

// appendPooledRequest appends the head sent upstream for r: what
// ReverseProxy with rewrite (forward.go) sends, field for field.
func appendPooledRequest(b []byte, r *http.Request) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.URL.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	connection := r.Header["Connection"]
	for k, vv := range r.Header {
		if dropPooledRequestField(k, connection) {
			continue
		}
		if k == "Te" {
			// Only "trailers" means something end to end.
			if httpguts.HeaderValuesContainsToken(vv, "trailers") {
				b = append(b, "Te: trailers\r\n"...)
			}
			continue
		}
		for _, v := range vv {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, strings.TrimSpace(v)...)
			b = append(b, "\r\n"...)
		}
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err == nil {
		b = append(b, "X-Forwarded-For: "...)
		b = append(b, ip...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "X-Forwarded-Host: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\nX-Forwarded-Proto: "...)
	if r.TLS != nil {
		b = append(b, "https"...)
	} else {
		b = append(b, "http"...)
	}
	b = append(b, "\r\nForwarded: "...)
	b = append(b, forwardedValue(r)...)
	return append(b, "\r\n\r\n"...)
}

// dropPooledRequestField reports whether the client's field k is not
// forwarded: Host (sent from r.Host), hop-by-hop fields (RFC 9110 7.6.1,
// with those the Connection field names) and the forwarding fields, which
// baton sets itself as the edge.
func dropPooledRequestField(k string, connection []string) bool {
	switch k {
	case "Host", "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Trailer", "Transfer-Encoding", "Upgrade",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	for _, v := range connection {
		for t := range strings.SplitSeq(v, ",") {
			if textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(t)) == k {
				return true
			}
		}
	}
	return false
}
