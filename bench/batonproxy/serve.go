package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"

	"github.com/batonhq/baton/proxy"
)

// serve runs the proxy's own data plane on ln, as baton serve does; with
// a TLS configuration, as baton serve --proxy-tls-cert does.
func serve(p *proxy.Proxy, ln net.Listener, config *tls.Config) error {
	var err error
	if config != nil {
		err = p.ServeTLS(ln, config)
	} else {
		err = p.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func shutdown(p *proxy.Proxy, ctx context.Context) error { return p.Shutdown(ctx) }
