package proxy

import (
	"fmt"
	"testing"
)

// scaleRoutes is the routing table of apps apps with three slots each
// (production, staging, canary): even apps have one revision with one
// instance per slot, odd ones two revisions (90/10, as in multiple
// revision mode) with two instances each. Every instance has its own
// address. gen > 0 puts app 0's production slot on another revision and
// port, as a deployment of it would.
func scaleRoutes(apps, gen int) []Route {
	routes := make([]Route, 0, apps*3)
	port := 10000
	next := func() string { port++; return fmt.Sprintf("127.0.0.1:%d", port) }
	for i := range apps {
		app := fmt.Sprintf("app%04d", i)
		for _, slot := range []string{"production", "staging", "canary"} {
			host := app + "-" + slot + ".localhost"
			if slot == "production" {
				host = app + ".localhost"
			}
			if i%2 == 1 {
				routes = append(routes, Route{Host: host, App: app, Slot: slot, Backends: []Backend{
					{Revision: app + "--000001", Weight: 90, Addrs: []string{next(), next()}},
					{Revision: app + "--000002", Weight: 10, Addrs: []string{next(), next()}},
				}})
				continue
			}
			rev, addr := app+"--000001", next()
			if i == 0 && slot == "production" && gen > 0 {
				rev, addr = fmt.Sprintf("%s--%06d", app, 1+gen), fmt.Sprintf("127.0.0.1:%d", 60000+gen)
			}
			r := route1(host, app, rev, addr)
			r.Slot = slot
			routes = append(routes, r)
		}
	}
	return routes
}

// BenchmarkSetRoutes3000 measures building and publishing the routing
// table of 1,000 apps × 3 slots (7,500 instances), which baton does on
// every switch, traffic change and restored app: "same" republishes an
// unchanged table, "one-app-deployed" alternates app 0's production slot
// between two revisions on other ports, so each call also retires the old
// upstreams and registers new ones.
func BenchmarkSetRoutes3000(b *testing.B) {
	b.Run("same", func(b *testing.B) {
		p := newTestProxy(b, Config{})
		routes := scaleRoutes(1000, 0)
		p.SetRoutes(routes)
		b.ReportAllocs()
		for b.Loop() {
			p.SetRoutes(routes)
		}
	})
	b.Run("one-app-deployed", func(b *testing.B) {
		p := newTestProxy(b, Config{})
		tables := [2][]Route{scaleRoutes(1000, 0), scaleRoutes(1000, 1)}
		p.SetRoutes(tables[1])
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p.SetRoutes(tables[i%2])
			i++
		}
	})
}

// BenchmarkLookup3000 is BenchmarkLookup with the table of
// BenchmarkSetRoutes3000: the lookup must stay allocation-free and flat.
func BenchmarkLookup3000(b *testing.B) {
	p := newTestProxy(b, Config{})
	p.SetRoutes(scaleRoutes(1000, 0))
	if n := len(p.table.Load().routes); n != 3000 {
		b.Fatalf("%d routes, want 3000", n)
	}
	for _, host := range []string{"app0500.localhost", "app0999-canary.localhost", "App0500-Staging.LocalHost:8080"} {
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
