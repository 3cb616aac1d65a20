package main

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/batonhq/baton/proxy"
)

// serve runs the proxy's own data plane on ln, as baton serve does.
func serve(p *proxy.Proxy, ln net.Listener) error {
	if err := p.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func shutdown(p *proxy.Proxy, ctx context.Context) error { return p.Shutdown(ctx) }
