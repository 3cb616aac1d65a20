// Command fasthttpproxy is the minimal Go proxy on valyala/fasthttp that
// ../shared/BENCHMARKS.md measured as a reference: a fasthttp Server whose
// handler sends each request through a HostClient to -upstream. No
// routing, no X-Forwarded-*, no draining; it is here so that
// bench/proxies.sh can put baton next to the fastest Go design in the
// same run.
//
// It is a module of its own, so that baton's go.mod does not carry a
// dependency only a benchmark uses.
//
//	fasthttpproxy -addr 127.0.0.1:8080 -upstream 127.0.0.1:9001
package main

import (
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	upstream := flag.String("upstream", "", "upstream address HOST:PORT")
	flag.Parse()
	if *upstream == "" {
		log.Fatal("fasthttpproxy: -upstream is required")
	}
	client := &fasthttp.HostClient{Addr: *upstream, MaxConns: 1024}
	handler := func(ctx *fasthttp.RequestCtx) {
		if err := client.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("upstream: "+err.Error(), fasthttp.StatusBadGateway)
		}
	}
	log.Fatal((&fasthttp.Server{Handler: handler}).ListenAndServe(*addr))
}
