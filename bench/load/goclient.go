package main

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// goClient sends the load through net/http's Client, as load tools built
// on it do. It costs the machine about as much per request as a Go
// server, which leaves the proxies less of the shared CPU and so reports
// higher ratios to direct; -client=go exists to compare with such
// measurements.
type goClient struct {
	c   *http.Client
	tr  *http.Transport
	url string
	o   options
}

func newGoClient(o options, deadline time.Time) *goClient {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, never an environment proxy
		MaxIdleConnsPerHost: o.conns,
		MaxConnsPerHost:     o.conns,
		DisableKeepAlives:   !o.keepAlive,
		DisableCompression:  true,
	}
	return &goClient{
		c:   &http.Client{Transport: tr, Timeout: time.Until(deadline) + 5*time.Second},
		tr:  tr,
		url: "http://" + o.addr + o.path,
		o:   o,
	}
}

func (g *goClient) close() { g.tr.CloseIdleConnections() }

func (g *goClient) do() error {
	req, err := http.NewRequest(http.MethodGet, g.url, nil)
	if err != nil {
		return err
	}
	req.Host = g.o.host
	resp, err := g.c.Do(req)
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
	return nil
}
