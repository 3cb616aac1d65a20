package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// result is the outcome of one forward attempt on the data plane.
type result struct {
	err error
	// wrote: something reached the client, so no problem can be answered.
	wrote bool
	// keep: the client connection may carry another request.
	keep bool
	// resendable: no part of the request body was consumed, so the request
	// may go to another instance.
	resendable bool
	// bodyStarted: the request body was partly read from the client.
	bodyStarted bool
	clientGone  bool
	timeout     bool
	// badBody: the client framed the request body wrongly; it is answered
	// with this, as a client error.
	badBody *parseError
}

// inlineBodyMax bounds the request bodies sent together with the head when
// they are already buffered; such requests can be sent again when a pooled
// connection turns out closed.
const inlineBodyMax = clientReadBuffer

// watchAfter is how long the data plane waits for a response head before
// it also watches the client connection, so a client that leaves cancels
// the upstream request. Most responses come sooner and never pay for it.
// A client's end of stream counts as leaving, as in net/http and nginx:
// one that half-closes its side and waits for a slow answer loses it.
const watchAfter = 50 * time.Millisecond

// forward sends the current request to c.u and copies the response back.
// It holds c.u's in-flight count until the exchange (or tunnel) ends. now
// is when the request began (serveRequest read the clock for the metrics
// already; a second read would cost every request).
func (cc *clientConn) forward(c choice, now time.Time) (res result) {
	defer c.u.release()
	p, r, u := cc.p, &cc.req, c.u
	deadline := now.Add(p.headerTimeout)

	pin, key := "", []byte(nil)
	if u.peer.Load() {
		pin, key = c.b.revision, p.peerKey // the peer serves the revision chosen here ("" on a Forward route)
	}
	cc.uhead = appendUpstreamRequest(cc.uhead[:0], r, &cc.addr, cc.local, pin, key)
	inline := !r.hasBody() || (!r.chunked && r.length <= int64(cc.br.Buffered()) && r.length <= inlineBodyMax)
	if inline && r.length > 0 {
		body, _ := cc.br.Peek(int(r.length))
		cc.uhead = append(cc.uhead, body...)
		cc.br.Discard(len(body))
	}
	res.resendable = inline

	var (
		uc       *upConn
		bodyDone chan error
		gone     bool
		err      error
	)
	replayable := inline && r.replayable()
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
			if uc, err = dial(context.Background(), u.addr); err != nil {
				res.err, res.timeout = err, isTimeout(err)
				return res
			}
		}
		cc.up.Store(uc)
		if inline {
			// Written by the read that waits for the response (rawio.go).
			uc.rd.pending = cc.uhead
		} else if _, err = uc.c.Write(cc.uhead); err != nil {
			uc.close()
			res.err = err
			return res
		} else {
			// The body streams from its own goroutine, so the response can
			// arrive meanwhile: 100 Continue, or an early error answer.
			res.bodyStarted = true
			bodyDone = make(chan error, 1)
			cc.c.SetReadDeadline(time.Time{})
			// An upload may take longer than the header timeout: that
			// starts when the body is sent (copyBody), or never if the
			// upstream answers first.
			uc.c.SetReadDeadline(time.Time{})
			cc.headIn = false
			go cc.sendBody(uc, bodyDone) // arguments, not a closure: nothing escapes
		}
		gone, err = cc.awaitResponse(uc, deadline, bodyDone == nil)
		if err != nil && uc.reused && replayable && !gone && !isTimeout(err) && uc.br.Buffered() == 0 && staleConnError(err) {
			uc.close()
			continue
		}
		break
	}
	defer cc.up.Store(nil)
	if err == nil && cc.p.countRequests {
		cc.obs.upstream = time.Since(now) // the head is in: the app's part
	}
	if bodyDone != nil {
		cc.dlMu.Lock()
		cc.headIn = true
		cc.dlMu.Unlock()
	}
	if err != nil {
		bodyErr := cc.endBody(bodyDone, uc)
		uc.close()
		if pe := clientBodyFault(bodyErr); pe != nil {
			// The upstream failed because the client's body did: that is
			// the client's fault, not the instance's (see clientBodyFault).
			res.err, res.badBody = bodyErr, pe
			return res
		}
		var re *readError
		gone = gone || errors.As(bodyErr, &re) // the client left mid-body: it gets no answer
		res.err, res.clientGone, res.timeout = err, gone, !gone && isTimeout(err)
		return res
	}

	resp := &cc.resp
	if resp.status == 101 {
		if r.upgrade == nil {
			cc.endBody(bodyDone, uc)
			uc.close()
			res.err = errors.New("upstream switched protocols unasked")
			return res
		}
		res.wrote = true
		cc.tunnel(u, uc, resp)
		return res
	}

	// The response head is in: write it and stream the body.
	head := is(r.method, "head")
	framing := frameEOF
	switch {
	case resp.bodyless(head):
		framing = frameNone
	case resp.chunked && r.http10:
		framing = frameDechunk
	case resp.chunked:
		framing = frameChunked
	case resp.length >= 0:
		framing = frameLength
	}
	keep := r.keepAlive && framing != frameEOF && framing != frameDechunk && !p.srv.shutting.Load()
	cookieRev := ""
	if c.setCookie {
		cookieRev = c.b.revision
	}
	cc.out.b = appendClientResponse(cc.out.b, resp, framing, keep, r.http10, cookieRev, cc.addr.proto == "https")
	res.wrote = true
	var stopWatch func() bool
	if framing != frameNone && !(framing == frameLength && int64(uc.br.Buffered()) >= resp.length) {
		// Bodies may stream for longer than the header timeout.
		uc.c.SetReadDeadline(time.Time{})
		if framing != frameLength && (bodyDone == nil || len(bodyDone) > 0) {
			// A stream of unknown length (Server-Sent Events, long polls)
			// may go quiet for minutes: watch the client meanwhile, so one
			// that leaves ends the stream at the instance too.
			stopWatch = cc.watchClient(uc)
		}
	}
	switch framing {
	case frameLength:
		err = copyLength(&cc.out, uc.br, uc.rd, resp.length)
	case frameChunked, frameDechunk:
		err = copyChunked(&cc.out, uc.br, uc.rd, framing == frameDechunk, p.maxHeaderBytes)
	case frameEOF:
		err = copyUntilEOF(&cc.out, uc.br)
	}
	if stopWatch != nil && stopWatch() {
		p.log.Debug("proxy: client went away during the response", "upstream", u.addr)
		cc.endBody(bodyDone, uc)
		uc.close()
		return res
	}
	bodyOK := cc.endBody(bodyDone, uc) == nil
	keep = keep && bodyOK
	if err == nil {
		if keep {
			// The serve loop's wait for the next request writes it.
			cc.rd.pending = cc.out.b
		} else {
			err = cc.out.flush()
		}
	}
	if err != nil {
		var re *readError
		if errors.As(err, &re) || errors.Is(err, errBadChunk) || errors.Is(err, errHeadTooLarge) {
			p.log.Warn("proxy: upstream response cut short", "upstream", u.addr, "err", err)
		} else {
			p.log.Debug("proxy: client went away during the response", "upstream", u.addr, "err", err)
		}
		uc.close()
		return res // keep false: the client saw a truncated response
	}
	if bodyOK && !resp.close && framing != frameEOF && !u.draining.Load() {
		u.pool.put(uc, now.UnixNano())
	} else {
		uc.close()
	}
	res.keep = keep
	return res
}

// endBody waits for the request body goroutine, if any, and returns its
// error: nil when the body was sent whole. An upstream may answer before
// reading all of a body (an early 413, or a final answer to Expect:
// 100-continue); the rest is then not read (errBodyAbandoned), and neither
// connection can be reused.
func (cc *clientConn) endBody(done chan error, uc *upConn) error {
	if done == nil {
		return nil
	}
	select {
	case err := <-done:
		return err
	default:
	}
	cc.c.SetReadDeadline(aLongTimeAgo)
	uc.c.SetWriteDeadline(aLongTimeAgo)
	err := <-done
	if err == nil {
		// The body went out whole and the goroutine only said so after the
		// response was relayed (it was not scheduled in between: a busy
		// machine). Nothing was abandoned: both connections stay usable.
		// Taken for abandoned, the client's connection closed after a
		// response that promised keep-alive, and a request it had sent
		// behind this one got no answer. The serve loop sets the
		// client's read deadline again before its next read.
		uc.c.SetWriteDeadline(time.Time{})
		return nil
	}
	// The body may have failed on its own just before the deadlines above
	// (the client sent a malformed chunk, or left), and closed the
	// upstream connection, which is what ended the wait for the response:
	// report that, not an abandonment the deadlines caused.
	if clientBodyFault(err) != nil {
		return err
	}
	var re *readError
	if errors.As(err, &re) && !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return errBodyAbandoned
}

// clientBodyFault returns the answer to a request whose body the client
// framed wrongly, or nil when err is not such a fault. Client faults are
// answered as client errors: never a 502, never an error in the log, never
// a mark against the instance.
func clientBodyFault(err error) *parseError {
	switch {
	case errors.Is(err, errBadChunk):
		return &parseError{http.StatusBadRequest, "malformed chunked request body (RFC 9112 section 7.1)"}
	case errors.Is(err, errHeadTooLarge):
		return &parseError{http.StatusRequestHeaderFieldsTooLarge, "the request's trailer fields are too large"}
	}
	return nil
}

var errBodyAbandoned = errors.New("request body abandoned: the upstream answered first")

// sendBody copies the request body from the client to uc and reports the
// outcome on done. A client that fails or leaves aborts the upstream
// request.
func (cc *clientConn) sendBody(uc *upConn, done chan<- error) {
	done <- cc.copyBody(uc)
}

func (cc *clientConn) copyBody(uc *upConn) error {
	r := &cc.req
	cc.upw.reset(uc.c)
	var err error
	if r.chunked {
		err = copyChunked(&cc.upw, cc.br, cc.rd, false, cc.p.maxHeaderBytes)
	} else {
		err = copyLength(&cc.upw, cc.br, cc.rd, r.length)
	}
	if err == nil {
		err = cc.upw.flush()
	}
	if err == nil {
		// The whole request is out: now the upstream owes an answer in time.
		cc.dlMu.Lock()
		if !cc.headIn {
			uc.c.SetReadDeadline(time.Now().Add(cc.p.headerTimeout))
		}
		cc.dlMu.Unlock()
	}
	var re *readError
	if err != nil && (errors.As(err, &re) || clientBodyFault(err) != nil) {
		// The client's side failed: the upstream must not take a partial
		// body for a whole one. Closing the connection wakes the reader.
		uc.c.Close()
	}
	return err
}

// awaitResponse reads the response head from uc into cc.resp, relaying
// interim (1xx) responses to the client. With watch, a slow upstream also
// gets the client watched: if the client leaves, the upstream connection
// is closed, which cancels the request there (gone reports it).
func (cc *clientConn) awaitResponse(uc *upConn, deadline time.Time, watch bool) (gone bool, err error) {
	if watch {
		first := time.Now().Add(cc.p.watchAfter)
		if deadline.Before(first) {
			first = deadline
		}
		uc.c.SetReadDeadline(first)
		_, err = uc.br.Peek(1)
		if err != nil && isTimeout(err) && time.Now().Before(deadline) {
			// The deadline first: the watcher may cut it short at once.
			uc.c.SetReadDeadline(deadline)
			stop := cc.watchClient(uc)
			_, err = uc.br.Peek(1)
			if gone = stop(); gone {
				return true, errClientGone
			}
		}
	}
	// Without watch, the deadline is set already: see forward and copyBody.
	if err != nil {
		return false, err
	}
	p, resp := cc.p, &cc.resp
	for {
		resp.raw, err = readHead(uc.br, resp.raw, p.maxHeaderBytes)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return false, err
		}
		if !resp.parse() {
			return false, errBadResponse
		}
		if resp.status >= 200 || resp.status == 101 {
			return false, nil
		}
		// 100 Continue lets the client send its body; 103 Early Hints lets
		// it preload. HTTP/1.0 clients know neither.
		if !cc.req.http10 {
			cc.out.b = appendClientResponse(cc.out.b, resp, frameNone, true, false, "", false)
			if err := cc.out.flush(); err != nil {
				return true, err
			}
		}
	}
}

var (
	errClientGone  = errors.New("client closed the connection")
	errBadResponse = errors.New("malformed response head from upstream")
)

// watchClient watches the client connection while the upstream is slow;
// stop ends the watch and reports whether the client left. A pipelined
// next request also ends the watch (its bytes stay buffered).
func (cc *clientConn) watchClient(uc *upConn) (stop func() bool) {
	cc.c.SetReadDeadline(time.Time{})
	cc.keepAliveProbes() // a client that vanishes silently is found too
	done := make(chan bool, 1)
	go func() {
		_, err := cc.br.Peek(1)
		gone := err != nil && !isTimeout(err)
		if gone {
			uc.c.SetReadDeadline(aLongTimeAgo) // wake the wait for the head
		}
		done <- gone
	}()
	return func() bool {
		cc.c.SetReadDeadline(aLongTimeAgo)
		gone := <-done
		cc.c.SetReadDeadline(time.Time{})
		return gone
	}
}

// staleConnError reports whether err looks like an upstream having closed
// a pooled connection while it was idle.
func staleConnError(err error) bool {
	var ne *net.OpError
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &ne)
}
