package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// BenchmarkLookup measures the request path's table lookup; it must not
// allocate, for lowercase hosts or mixed-case hosts with a port.
func BenchmarkLookup(b *testing.B) {
	p := newTestProxy(b, Config{})
	routes := make([]Route, 0, 1000)
	for i := range 1000 {
		routes = append(routes, route1(fmt.Sprintf("app%d.localhost", i), fmt.Sprintf("app%d", i), "r", "127.0.0.1:1"))
	}
	p.SetRoutes(routes)
	for _, host := range []string{"app500.localhost", "App500.LocalHost:8080"} {
		b.Run(host, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if p.table.Load().lookup(host) == nil {
					b.Fatal("no route")
				}
			}
		})
	}
}

// BenchmarkProxyGET measures GETs through ServeHTTP mounted in net/http's
// server (a real listener) to one httptest upstream, in parallel;
// BenchmarkDirectGET is the same load straight to the upstream, for the
// ratio, and BenchmarkServeGET the same through the Serve data plane.
func BenchmarkProxyGET(b *testing.B) {
	up := benchUpstream(b)
	p := newTestProxy(b, Config{})
	p.SetRoutes([]Route{route1("bench.localhost", "bench", "bench--000001", addrOf(up))})
	front := httptest.NewServer(p)
	b.Cleanup(front.Close)
	benchGET(b, front.URL, "bench.localhost")
}

// BenchmarkDirectGET is BenchmarkProxyGET without the proxy.
func BenchmarkDirectGET(b *testing.B) {
	up := benchUpstream(b)
	benchGET(b, up.URL, "bench.localhost")
}

func benchUpstream(b *testing.B) *httptest.Server {
	return startHandler(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"service":"probe"}`)
	})
}

func benchGET(b *testing.B, base, host string) {
	benchGETWith(b, newClient(b, 64), base, host)
}

// benchGETWith is benchGET with the client given: 16 concurrent
// requests on 2 cores, as in BENCHMARKS.md.
func benchGETWith(b *testing.B, client *http.Client, base, host string) {
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Host = host
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkServeGET is BenchmarkProxyGET through the Serve data plane.
func BenchmarkServeGET(b *testing.B) {
	up := benchUpstream(b)
	p := newTestProxy(b, Config{})
	p.SetRoutes([]Route{route1("bench.localhost", "bench", "bench--000001", addrOf(up))})
	benchGET(b, startServe(b, p), "bench.localhost")
}

// BenchmarkServeTLSGET is BenchmarkServeGET over ServeTLS: h2 with the
// 16 requests as concurrent streams on one connection (the HTTP/2
// server's path), and HTTP/1.1 on 16 TLS connections (the data plane's)
// for the ratio.
func BenchmarkServeTLSGET(b *testing.B) {
	up := benchUpstream(b)
	for _, h2 := range []bool{true, false} {
		name := map[bool]string{true: "h2", false: "HTTP1.1"}[h2]
		b.Run(name, func(b *testing.B) {
			p := newTestProxy(b, Config{})
			p.SetRoutes([]Route{route1("bench.localhost", "bench", "bench--000001", addrOf(up))})
			base, pool := startServeTLS(b, p)
			benchGETWith(b, tlsClient(b, pool, h2, 16), base, "bench.localhost")
		})
	}
}

// BenchmarkServeRequestPath measures the data plane alone: a client and an
// upstream that speak HTTP/1.1 on raw sockets and allocate nothing, so
// ns/op and allocs/op are the proxy's own (plus the loopback syscalls).
func BenchmarkServeRequestPath(b *testing.B) {
	for _, size := range []int{29, 64 << 10} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			up := startRawUpstream(b, size)
			p := newTestProxy(b, Config{})
			p.SetRoutes([]Route{route1("bench.localhost", "bench", "bench--000001", up)})
			base := startServe(b, p)
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := newRawClient(b, base, "bench.localhost")
				defer c.close()
				for pb.Next() {
					if err := c.get(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestServeRequestPathDoesNotAllocate: steady keep-alive GETs through the
// data plane allocate nothing per request.
func TestServeRequestPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	up := startRawUpstream(t, 29)
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("a.localhost", "a", "a--000001", up)})
	c := newRawClient(t, startServe(t, p), "a.localhost")
	defer c.close()
	for range 100 { // warm the pools
		if err := c.get(); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := c.get(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0.1 {
		t.Errorf("%.2f allocations per request, want 0", allocs)
	}
}

// startRawUpstream serves every request on a connection with a fixed
// response of size bytes, reading heads with a bufio.Reader and no
// allocation per request.
func startRawUpstream(t testing.TB, size int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size))
	resp = append(resp, bytes.Repeat([]byte("x"), size)...)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					for { // the request head, to its empty line
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// rawClient sends keep-alive GETs on one connection and reads responses
// framed by Content-Length, without allocating.
type rawClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
}

func newRawClient(t testing.TB, base, host string) *rawClient {
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return &rawClient{c: c, br: bufio.NewReaderSize(c, 64<<10),
		req: []byte("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n")}
}

func (c *rawClient) close() { c.c.Close() }

func (c *rawClient) get() error {
	if _, err := c.c.Write(c.req); err != nil {
		return err
	}
	length := -1
	for first := true; ; first = false {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first && !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
			return fmt.Errorf("status line %q", line)
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			length = int(parseLength(bytes.TrimSpace(v)))
		}
	}
	if length < 0 {
		return fmt.Errorf("no Content-Length")
	}
	_, err := c.br.Discard(length)
	return err
}
