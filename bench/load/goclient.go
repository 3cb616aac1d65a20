package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"
)

// goClient sends the load through net/http's Client, as load tools built
// on it do. It costs the machine about as much per request as a Go
// server, which leaves the proxies less of the shared CPU and so reports
// higher ratios to direct; -client=go exists to compare with such
// measurements, and to speak https (HTTP/1.1 over TLS, or HTTP/2 with
// -h2).
type goClient struct {
	// clients has one client per worker, or one shared by all: HTTP/2
	// multiplexes a Transport's requests on one connection, so -h2 gives
	// every worker its own Transport (-c connections, one stream each)
	// unless -h2-shared asks for -c streams on one connection.
	clients []*http.Client
	trs     []*http.Transport
	url     string
	o       options
	// major is the HTTP major version every answer must come in.
	major int
}

func newGoClient(o options, deadline time.Time) *goClient {
	g := &goClient{url: o.scheme + "://" + o.addr + o.path, o: o, major: 1}
	if o.h2 {
		g.major = 2
	}
	n := 1
	if o.h2 && !o.h2Shared {
		n = o.conns
	}
	for range n {
		tr := &http.Transport{
			Proxy:               nil, // loopback only, never an environment proxy
			MaxIdleConnsPerHost: o.conns,
			MaxConnsPerHost:     o.conns,
			DisableKeepAlives:   !o.keepAlive,
			DisableCompression:  true,
			// Targets are loopback only (loopbackOnly), typically with a
			// self-signed certificate: there is nothing to verify.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		}
		tr.Protocols = new(http.Protocols)
		if o.h2 {
			tr.Protocols.SetHTTP2(true)
		} else {
			tr.Protocols.SetHTTP1(true)
		}
		g.trs = append(g.trs, tr)
		g.clients = append(g.clients, &http.Client{Transport: tr, Timeout: time.Until(deadline) + 5*time.Second})
	}
	return g
}

func (g *goClient) close() {
	for _, tr := range g.trs {
		tr.CloseIdleConnections()
	}
}

// do sends one request as worker i.
func (g *goClient) do(i int) error {
	req, err := http.NewRequest(http.MethodGet, g.url, nil)
	if err != nil {
		return err
	}
	req.Host = g.o.host
	resp, err := g.clients[i%len(g.clients)].Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if resp.ProtoMajor != g.major {
		return fmt.Errorf("answered in %s, want HTTP/%d", resp.Proto, g.major)
	}
	return nil
}
