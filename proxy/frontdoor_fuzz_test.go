package proxy

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"testing"
	"time"
)

// FuzzFrontDoor is differential fuzzing of the data plane's HTTP/1.1
// parser against a strict one: it sends mutated request streams (heads,
// chunked and sized bodies, pipelined requests) through the proxy to a
// net/http instance and requires that every request the instance parsed
// and ran was one the proxy accepted, in order, with the same method,
// target and body bytes. A request the instance ran that the proxy never
// saw as one is request smuggling.
//
// What the proxy accepted is computed by running the proxy's own parsing
// (readHead, parse, the body copiers) over the same bytes: the model. The
// instance may see fewer requests than the model (the proxy answers
// unknown hosts itself, the instance refuses what it finds invalid), never
// others.
//
// The seeds run in every `go test`; ./test.sh also fuzzes for a bounded
// time (see there). Crashers go to testdata/fuzz/FuzzFrontDoor as
// regression seeds.
func FuzzFrontDoor(f *testing.F) {
	const host = "fz.localhost"
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	const post = "POST /p HTTP/1.1\r\nHost: " + host + "\r\n"
	const chunkedPost = post + "Transfer-Encoding: chunked\r\n\r\n"
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n" + smuggled,
		post + "Content-Length: 5\r\n\r\nhello" + smuggled,
		chunkedPost + "5\r\nhello\r\n0\r\n\r\n" + smuggled,
		chunkedPost + "5;a=b;c=\"d\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n" + smuggled,
		chunkedPost + "1\nX\n0\n\n" + smuggled,
		chunkedPost + "40;a=\"\n" + smuggled + "\"\r\n",
		chunkedPost + "0\r\n" + smuggled,
		chunkedPost + "1\rX\r\n0\r\n\r\n" + smuggled,
		chunkedPost + "zz\r\nhello\r\n0\r\n\r\n" + smuggled,
		post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
		post + "Content-Length: 0\r\nContent-Length: 44\r\n\r\n" + smuggled,
		post + "Transfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n" + smuggled,
		post + "Content-Length: 0\r\nX-A: a\r\n b\r\n\r\n" + smuggled,
		post + "X-A: a\rb\r\nContent-Length: 0\r\n\r\n" + smuggled,
		"GET / HTTP/1.1\r\nHost: " + host + "\r\nHost: other\r\n\r\n" + smuggled,
		"GET http://" + host + "/abs?q HTTP/1.1\r\nHost: x\r\n\r\n" + smuggled,
		"GET / HTTP/1.0\r\nHost: " + host + "\r\nConnection: keep-alive\r\n\r\n" + smuggled,
		post + "Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc" + smuggled,
	} {
		f.Add([]byte(seed))
	}

	p := newTestProxy(f, Config{Logger: slog.New(slog.DiscardHandler)})
	// Each input ends with a half-close; the proxy must not take it for the
	// client leaving while an upstream is slow on a loaded machine (see
	// TestClientHalfCloseEndsTheConnection).
	p.watchAfter = time.Hour
	base := startServe(f, p)

	f.Fuzz(func(t *testing.T, raw []byte) {
		// An instance per input, closed before its record is read: Close
		// waits for the requests it began, and a connection it never
		// accepted ran nothing. A shared one would let a late request of
		// one input show up in the next.
		ru, closeUpstream := newRecordingUpstream()
		defer closeUpstream()
		p.SetRoutes([]Route{route1(host, "fz", "fz--000001", ru.addr)})
		accepted, refused := modelRequests(raw, p.maxHeaderBytes)
		c, _ := rawConn(t, base)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(raw)
		closeWrite(c)
		// Every request is complete or cut off by the end of the stream:
		// the proxy must answer what it can and close.
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("the proxy did not end the connection: %v", err)
		}
		c.Close()
		closeUpstream()
		got := ru.requests()

		next := 0 // the first model request not matched yet
		for i, g := range got {
			j := next
			for j < len(accepted) && !(accepted[j].method == g.method && accepted[j].target == g.target) {
				j++
			}
			if j == len(accepted) {
				// Only the request the proxy refused mid-body may reach the
				// instance, cut short, as the last one.
				if refused != nil && i == len(got)-1 && g.bodyErr != nil &&
					g.method == refused.method && g.target == refused.target {
					break
				}
				t.Fatalf("the instance ran %s %s (body %q, err %v), which the proxy did not accept as a request; accepted %+v",
					g.method, g.target, g.body, g.bodyErr, accepted)
			}
			if g.bodyErr != nil || g.body != accepted[j].body {
				t.Fatalf("%s %s: the instance read body %q (err %v), the proxy accepted %q",
					g.method, g.target, g.body, g.bodyErr, accepted[j].body)
			}
			next = j + 1
		}
	})
}

// modelRequests returns the requests the proxy's parser accepts from the
// start of raw, with their bodies as the instance should read them, and
// the first request it refuses because of its body (nil if none): its
// head may reach the instance before the body fails.
func modelRequests(raw []byte, maxHeader int) (accepted []upstreamRequest, refusedBody *upstreamRequest) {
	br := bufio.NewReaderSize(bytes.NewReader(raw), clientReadBuffer)
	var r request
	for {
		var err error
		if r.raw, err = readHead(br, r.raw, maxHeader); err != nil {
			return accepted, nil
		}
		if r.parse() != nil {
			return accepted, nil
		}
		u := upstreamRequest{method: string(r.method), target: string(originForm(r.target))}
		body := wbuf{w: &bufConn{Buffer: new(bytes.Buffer)}}
		switch {
		case r.chunked:
			err = copyChunked(&body, br, nil, true, maxHeader)
		case r.length > 0:
			err = copyLength(&body, br, nil, r.length)
		}
		if err == nil {
			err = body.flush()
		}
		if err != nil {
			return accepted, &u
		}
		u.body = body.w.(*bufConn).String()
		accepted = append(accepted, u)
		if !r.keepAlive || r.upgrade != nil {
			return accepted, nil
		}
	}
}
