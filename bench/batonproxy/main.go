// Command batonproxy runs baton's proxy package alone in front of one
// upstream, the way `baton serve` runs it, so the benchmarks measure the
// data plane without the coordinator: proxy.New with one route for -host
// to -upstream, serving on -addr. With -tls (a certificate it makes
// itself) or -tls-cert/-tls-key it serves HTTPS as `baton serve
// --proxy-tls-cert` does: HTTP/1.1 over TLS on the data plane, h2 on
// the proxy's HTTP/2 server. It starts again tuned as `baton serve`
// does (internal/schedtune).
//
//	batonproxy -addr 127.0.0.1:8080 -upstream 127.0.0.1:9001 -host bench.localhost
//	batonproxy -addr 127.0.0.1:8443 -upstream 127.0.0.1:9001 -tls
//	batonproxy -addr 127.0.0.1:8081 -upstream 127.0.0.1:9001 -request-metrics=false
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served on -pprof only
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/batonhq/baton/internal/schedtune"
	"github.com/batonhq/baton/proxy"
)

func main() {
	schedtune.Apply() // as baton serve does (cmd/baton)
	addr := flag.String("addr", "127.0.0.1:0", "proxy listen address")
	upstream := flag.String("upstream", "", "upstream address HOST:PORT")
	host := flag.String("host", "bench.localhost", "routed Host")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address")
	selfSigned := flag.Bool("tls", false, "serve HTTPS with a self-signed certificate made at start")
	certFile := flag.String("tls-cert", "", "serve HTTPS with this certificate (PEM; with -tls-key)")
	keyFile := flag.String("tls-key", "", "private key of -tls-cert (PEM)")
	requestMetrics := flag.Bool("request-metrics", true, "count every request, as baton serve does by default (=false: as --request-metrics=false)")
	flag.Parse()
	tlsConfig, err := tlsConfig(*selfSigned, *certFile, *keyFile)
	if err == nil {
		err = run(*addr, *upstream, *host, *pprofAddr, proxy.Config{NoRequestMetrics: !*requestMetrics}, tlsConfig)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "batonproxy:", err)
		os.Exit(1)
	}
}

// run serves the proxy configured by cfg (its logger set here).
func run(addr, upstream, host, pprofAddr string, cfg proxy.Config, tlsConfig *tls.Config) error {
	if upstream == "" {
		return errors.New("-upstream is required")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.Logger = log
	p := proxy.New(cfg)
	defer p.Close()
	p.SetRoutes([]proxy.Route{{Host: host, App: "bench", Slot: "production",
		Backends: []proxy.Backend{{Revision: "bench--000001", Weight: 100, Addrs: []string{upstream}}}}})

	ln, err := proxy.Listen(addr)
	if err != nil {
		return err
	}
	if pprofAddr != "" {
		pln, err := net.Listen("tcp", pprofAddr)
		if err != nil {
			return err
		}
		psrv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
		pdone := make(chan struct{})
		go func() {
			defer close(pdone)
			psrv.Serve(pln)
		}()
		defer func() {
			psrv.Close()
			<-pdone
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- serve(p, ln, tlsConfig) }()
	fmt.Println(ln.Addr().String())
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = shutdown(p, sctx)
	return errors.Join(err, <-done)
}
