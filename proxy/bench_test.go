package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
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

// BenchmarkProxyGET measures GETs through the proxy (a real listener) to
// one httptest upstream, in parallel; BenchmarkDirectGET is the same load
// straight to the upstream, for the ratio.
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
	// 16 concurrent keep-alive clients on 2 cores, as in BENCHMARKS.md.
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	client := newClient(b, 64)
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
