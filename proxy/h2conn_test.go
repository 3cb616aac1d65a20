package proxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Client speaks HTTP/2 frames on one connection to ServeTLS, for what
// net/http's client never sends.
type h2Client struct {
	t    testing.TB
	c    *tls.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
}

// dialH2 connects to base, sends the preface and a SETTINGS frame with
// settings, in that order, repeats and all.
func dialH2(t testing.TB, base string, pool *x509.CertPool, settings ...http2.Setting) *h2Client {
	t.Helper()
	c, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	h := &h2Client{t: t, c: c, fr: http2.NewFramer(c, c)}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.hbuf)
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	// WriteSettings would do, but it is the frame's exact bytes that count.
	payload := make([]byte, 0, 6*len(settings))
	for _, s := range settings {
		payload = append(payload, byte(s.ID>>8), byte(s.ID), byte(s.Val>>24), byte(s.Val>>16), byte(s.Val>>8), byte(s.Val))
	}
	if err := h.fr.WriteRawFrame(http2.FrameSettings, 0, 0, payload); err != nil {
		t.Fatal(err)
	}
	return h
}

// get sends a GET for host on stream with the extra fields (name, value
// pairs), every field indexed in the dynamic table.
func (h *h2Client) get(stream uint32, host string, fields ...string) {
	h.t.Helper()
	h.hbuf.Reset()
	all := append([]string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", host}, fields...)
	for i := 0; i+1 < len(all); i += 2 {
		h.enc.WriteField(hpack.HeaderField{Name: all[i], Value: all[i+1]})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: h.hbuf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
}

// next returns the next frame on stream (not 0), or a GOAWAY; it
// acknowledges the server's SETTINGS and skips what else comes.
func (h *h2Client) next(stream uint32) http2.Frame {
	h.t.Helper()
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.t.Fatalf("waiting for a frame on stream %d: %v", stream, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			return f
		default:
			if f.Header().StreamID == stream {
				return f
			}
		}
	}
}

// TestServeTLSH2MalformedRequestIsStreamError: over h2, a request with a
// connection-specific field or a TE other than "trailers" (RFC 9113
// §8.2.2) is reset with PROTOCOL_ERROR and never forwarded, and the
// connection goes on: the next request, whose fields the malformed one
// put in the HPACK dynamic table, is served. (net/http's and x/net's
// server answer such requests with a 400; h2spec 8.1.2.2.)
func TestServeTLSH2MalformedRequestIsStreamError(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Case"))
		mu.Unlock()
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("m.localhost", "m", "m--000001", addrOf(up))})
	base, pool := startServeTLS(t, p)
	h := dialH2(t, base, pool)

	cases := []struct {
		name string
		bad  []string
	}{
		{"connection", []string{"connection", "keep-alive"}},
		{"keep-alive", []string{"keep-alive", "timeout=5"}},
		{"proxy-connection", []string{"proxy-connection", "keep-alive"}},
		{"transfer-encoding", []string{"transfer-encoding", "chunked"}},
		{"upgrade", []string{"upgrade", "websocket"}},
		{"te gzip", []string{"te", "gzip"}},
		{"te twice", []string{"te", "trailers", "te", "trailers"}},
	}
	var want []string
	stream := uint32(1)
	for _, c := range cases {
		h.get(stream, "m.localhost", append([]string{"x-case", c.name}, c.bad...)...)
		got := h.next(stream)
		if f, ok := got.(*http2.RSTStreamFrame); !ok || f.ErrCode != http2.ErrCodeProtocol {
			t.Fatalf("%s: got %v, want RST_STREAM(PROTOCOL_ERROR)", c.name, got)
		}
		stream += 2
		h.get(stream, "m.localhost", "x-case", c.name, "te", "trailers")
		got = h.next(stream)
		if f, ok := got.(*http2.MetaHeadersFrame); !ok || f.PseudoValue("status") != "200" {
			t.Fatalf("the request after %s: got %v, want a 200", c.name, got)
		}
		want = append(want, c.name)
		stream += 2
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("the upstream saw %q, want only the well-formed %q", seen, want)
	}
}

// TestServeTLSH2RepeatedSettingLastWins: a SETTINGS frame naming a
// setting twice is applied in order (RFC 9113 §6.5.3; h2spec 6.5.3):
// the last value stands, rather than the connection being closed. An
// invalid value before a valid one is still the error it is.
func TestServeTLSH2RepeatedSettingLastWins(t *testing.T) {
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("s.localhost", "s", "s--000001", addrOf(startUpstream(t, "a body of some bytes")))})
	base, pool := startServeTLS(t, p)

	h := dialH2(t, base, pool,
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
	h.get(1, "s.localhost")
	got := h.next(1)
	if f, ok := got.(*http2.MetaHeadersFrame); !ok || f.PseudoValue("status") != "200" {
		t.Fatalf("got %v, want a 200", got)
	}
	// A stream window of 1 (the last value) lets one byte through.
	got = h.next(1)
	if f, ok := got.(*http2.DataFrame); !ok || len(f.Data()) != 1 {
		t.Fatalf("got %v, want a DATA frame of 1 byte", got)
	}
	h.fr.WriteRSTStream(1, http2.ErrCodeCancel)

	h = dialH2(t, base, pool,
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
	h.get(1, "s.localhost")
	got = h.next(1)
	if f, ok := got.(*http2.GoAwayFrame); !ok || f.ErrCode != http2.ErrCodeFlowControl {
		t.Fatalf("got %v, want GOAWAY(FLOW_CONTROL_ERROR) for a window over 2^31-1", got)
	}
}

// TestServeTLSH2ExpectContinueOnce: a request with Expect: 100-continue
// over h2 gets one 100 Continue, though the proxy sends one as it starts
// to read the body and the upstream (net/http) answers the Expect it is
// forwarded with another.
func TestServeTLSH2ExpectContinueOnce(t *testing.T) {
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("c.localhost", "c", "c--000001", addrOf(up))})
	base, pool := startServeTLS(t, p)
	h := dialH2(t, base, pool)

	h.hbuf.Reset()
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "PUT"}, {Name: ":scheme", Value: "https"},
		{Name: ":path", Value: "/"}, {Name: ":authority", Value: "c.localhost"},
		{Name: "content-length", Value: "3"}, {Name: "expect", Value: "100-continue"}} {
		h.enc.WriteField(f)
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.hbuf.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	continues := 0
	sent := false
	var body []byte
	for {
		switch f := h.next(1).(type) {
		case *http2.MetaHeadersFrame:
			switch status := f.PseudoValue("status"); status {
			case "100":
				continues++
				if !sent {
					if err := h.fr.WriteData(1, true, []byte("abc")); err != nil {
						t.Fatal(err)
					}
					sent = true
				}
			case "200":
			default:
				t.Fatalf("status %s; want 100, then 200", status)
			}
			if f.StreamEnded() {
				t.Fatal("the response ended without a body")
			}
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			if f.StreamEnded() {
				if string(body) != "abc" || continues != 1 {
					t.Fatalf("body %q after %d 100 Continue; want \"abc\" after one", body, continues)
				}
				return
			}
		default:
			t.Fatalf("got %v on the stream", f)
		}
	}
}
