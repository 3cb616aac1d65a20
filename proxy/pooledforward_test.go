package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

// forwarded is what one request through a forwarder amounted to: what the
// instance saw, and what the client got.
type forwarded struct {
	upstream string // the request as the instance read it
	status   int
	header   http.Header
	body     string
	trailer  http.Header
	interim  []string // 1xx responses: code and fields
}

// TestPooledForwardMatchesReverseProxy: the fast path (pooledforward.go)
// sends the instance what ReverseProxy sends, and gives the client what
// ReverseProxy gives, for the responses it must pass along as they are:
// hop-by-hop fields in both directions, fields listed in Connection, TE,
// spoofed forwarding fields, repeated fields, a chunked body with declared
// and undeclared trailers, 103 Early Hints, HEAD, 204, and a body of
// unknown length. Each request goes once through ServeHTTP (which takes
// the fast path for it) and once through ReverseProxy alone.
func TestPooledForwardMatchesReverseProxy(t *testing.T) {
	var mu sync.Mutex
	var seen string
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = describeRequest(r)
		mu.Unlock()
		h := w.Header()
		switch r.URL.Path {
		case "/plain":
			h.Set("Connection", "X-Up-Hop")
			h.Set("X-Up-Hop", "dropped")
			h.Set("Keep-Alive", "timeout=5")
			h.Set("Proxy-Authenticate", "Basic")
			h.Add("X-Multi", "a")
			h.Add("X-Multi", "b")
			h.Set("Content-Type", "text/plain")
			io.WriteString(w, "hello")
		case "/chunked":
			h.Set("Trailer", "X-Sum")
			io.WriteString(w, "one,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "two")
			h.Set("X-Sum", "2")
			h.Set(http.TrailerPrefix+"X-Late", "late")
		case "/hints":
			h.Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			h.Del("Link")
			h.Set("X-Final", "yes")
			io.WriteString(w, "hinted")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/stream":
			h.Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: a\n\n")
			w.(http.Flusher).Flush()
			io.WriteString(w, "data: b\n\n")
		}
	})
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("pf.localhost", "pf", "pf--000001", addrOf(up))})
	fast := httptest.NewServer(p)
	t.Cleanup(fast.Close)
	reference := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.fwd.forward(w, r, addrOf(up)); err != nil {
			t.Errorf("ReverseProxy: %v", err)
		}
	}))
	t.Cleanup(reference.Close)

	through := func(base, method, path string) forwarded {
		t.Helper()
		req, err := http.NewRequest(method, base+path+"?q=1&r=%2F", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "pf.localhost"
		req.Header.Set("Connection", "X-Client-Hop")
		req.Header.Set("X-Client-Hop", "dropped")
		req.Header.Set("Keep-Alive", "timeout=5")
		req.Header.Set("Proxy-Authorization", "Basic eA==")
		req.Header.Set("Te", "trailers, deflate")
		req.Header.Set("X-Forwarded-For", "6.6.6.6")
		req.Header.Set("Forwarded", "for=6.6.6.6")
		req.Header.Add("X-Multi", "1")
		req.Header.Add("X-Multi", "2")
		var ex forwarded
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				ex.interim = append(ex.interim, fmt.Sprint(code, " ", describeHeader(http.Header(h))))
				return nil
			},
		}))
		resp, err := newClient(t, 1).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s via %s: %v", method, path, base, err)
		}
		resp.Header.Del("Date")
		mu.Lock()
		ex.upstream = seen
		mu.Unlock()
		ex.status, ex.header, ex.body, ex.trailer = resp.StatusCode, resp.Header, string(b), resp.Trailer
		return ex
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/plain"}, {"GET", "/chunked"}, {"GET", "/hints"}, {"HEAD", "/plain"},
		{"GET", "/nocontent"}, {"DELETE", "/plain"}, {"GET", "/stream"},
	} {
		got, want := through(fast.URL, c.method, c.path), through(reference.URL, c.method, c.path)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s:\nfast path:    %+v\nReverseProxy: %+v", c.method, c.path, got, want)
		}
	}
}

func describeRequest(r *http.Request) string {
	return fmt.Sprintf("%s %s host=%s %s", r.Method, r.RequestURI, r.Host, describeHeader(r.Header))
}

func describeHeader(h http.Header) string {
	var lines []string
	for k, vv := range h {
		lines = append(lines, k+": "+strings.Join(vv, " | "))
	}
	sort.Strings(lines)
	return strings.Join(lines, "; ")
}

// A pooled connection the instance closed while idle costs a bodyless
// request nothing: it goes again on a new connection.
func TestPooledForwardRetriesStaleConnection(t *testing.T) {
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("st.localhost", "st", "st--000001", addrOf(up))})
	if w := serve(t, p, http.MethodGet, "st.localhost"); w.Code != http.StatusOK {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	p.mu.Lock()
	u := p.reg[addrOf(up)]
	p.mu.Unlock()
	u.pool.mu.Lock()
	pooled := len(u.pool.idle)
	u.pool.mu.Unlock()
	if pooled != 1 {
		t.Fatalf("%d pooled connections after one request, want 1", pooled)
	}
	up.CloseClientConnections() // the instance closes it while it is idle
	if w := serve(t, p, http.MethodGet, "st.localhost"); w.Code != http.StatusOK || w.Body.String() != "ok" {
		t.Fatalf("request on a stale pooled connection: %d %s", w.Code, w.Body)
	}
}
