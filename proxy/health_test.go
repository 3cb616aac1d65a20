package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestUnhealthyInstanceGetsNoRequests(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	p := newTestProxy(t, Config{})
	// Marked before it is routed: the mark waits for the address.
	p.SetHealthy(addrOf(b), false)
	p.SetRoutes([]Route{route1("h.localhost", "h", "h--000001", addrOf(a), addrOf(b))})
	for range 20 {
		if got := serve(t, p, "GET", "h.localhost").Body.String(); got != "a" {
			t.Fatalf("served by %q while b is unhealthy", got)
		}
	}
	// The mark survives a new table that still routes the address.
	p.SetRoutes([]Route{route1("h.localhost", "h", "h--000002", addrOf(a), addrOf(b))})
	for range 20 {
		if got := serve(t, p, "GET", "h.localhost").Body.String(); got != "a" {
			t.Fatalf("after SetRoutes, served by %q while b is unhealthy", got)
		}
	}
	// With nothing healthy, requests still go out rather than fail.
	p.SetHealthy(addrOf(a), false)
	counts := map[string]int{}
	for range 20 {
		w := serve(t, p, "GET", "h.localhost")
		if w.Code != 200 {
			t.Fatalf("nothing healthy: %d %s", w.Code, w.Body)
		}
		counts[w.Body.String()]++
	}
	if counts["a"] == 0 || counts["b"] == 0 {
		t.Errorf("with nothing healthy, requests went to %v", counts)
	}
	p.SetHealthy(addrOf(a), true)
	p.SetHealthy(addrOf(b), true)
	counts = map[string]int{}
	for range 20 {
		counts[serve(t, p, "GET", "h.localhost").Body.String()]++
	}
	if counts["a"] != 10 || counts["b"] != 10 {
		t.Errorf("healthy again, requests went to %v", counts)
	}
}

// TestUnhealthyRevisionShiftsItsWeight: when every instance of a revision
// is unhealthy, the healthy revisions share its weight in proportion.
func TestUnhealthyRevisionShiftsItsWeight(t *testing.T) {
	a, b, c := startUpstream(t, "a"), startUpstream(t, "b"), startUpstream(t, "c")
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{{Host: "w.localhost", App: "w", Slot: "production", Backends: []Backend{
		{Revision: "w--000001", Weight: 60, Addrs: []string{addrOf(a)}},
		{Revision: "w--000002", Weight: 30, Addrs: []string{addrOf(b)}},
		{Revision: "w--000003", Weight: 10, Addrs: []string{addrOf(c)}},
	}}})
	p.SetHealthy(addrOf(a), false)
	const n = 3000
	counts := map[string]int{}
	for range n {
		counts[serve(t, p, "GET", "w.localhost").Body.String()]++
	}
	// b:c stays 3:1, so b gets 75 % ± 4 %.
	if counts["a"] != 0 || counts["b"] < n*71/100 || counts["b"] > n*79/100 {
		t.Errorf("with w--000001 unhealthy: %v of %d", counts, n)
	}
}

// TestUnhealthyThenKilledUnderLoadLosesNoRequest: 16 clients loop while
// one of two instances is marked unhealthy and then shut down. Not one
// request may fail: marking moves new requests off it at once, and
// in-flight ones finish before it stops.
func TestUnhealthyThenKilledUnderLoadLosesNoRequest(t *testing.T) {
	var servedByDoomed atomic.Int64
	keep := startUpstream(t, "keep")
	doomed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		servedByDoomed.Add(1)
		w.Write([]byte("doomed"))
	}))
	defer doomed.Close()
	p := newTestProxy(t, Config{})
	p.SetRoutes([]Route{route1("k.localhost", "k", "k--000001", addrOf(keep), addrOf(doomed))})

	for _, f := range fronts(t, p) {
		t.Run(f.name, func(t *testing.T) {
			p.SetHealthy(addrOf(doomed), true)
			const clients = 16
			client := newClient(t, clients)
			var (
				stop     = make(chan struct{})
				wg       sync.WaitGroup
				ok       atomic.Int64
				mu       sync.Mutex
				failures []string
			)
			for range clients {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						status, body, err := getVia(client, f.url, "k.localhost")
						if err != nil || status != 200 {
							mu.Lock()
							failures = append(failures, fmt.Sprintf("%d %q %v", status, body, err))
							mu.Unlock()
							continue
						}
						ok.Add(1)
					}
				})
			}
			progress := func(n int64) {
				t.Helper()
				target := ok.Load() + n
				waitFor(t, fmt.Sprintf("%d more requests", n), func() bool { return ok.Load() >= target })
			}
			progress(200)
			if f.name == "Serve" && servedByDoomed.Load() == 0 {
				t.Fatal("the doomed instance served nothing before it was marked")
			}
			p.SetHealthy(addrOf(doomed), false)
			// In-flight requests finish; after that it gets nothing new.
			waitFor(t, "the doomed instance to be idle", func() bool { return p.InFlight(addrOf(doomed)) == 0 })
			before := servedByDoomed.Load()
			progress(200)
			if after := servedByDoomed.Load(); after != before {
				t.Fatalf("an unhealthy instance got %d new requests", after-before)
			}
			if f.name == "ServeHTTP" {
				doomed.Close() // killed: its port now refuses
			}
			progress(400)
			close(stop)
			wg.Wait()
			if len(failures) > 0 {
				t.Fatalf("%d of %d requests failed; first: %s", len(failures), ok.Load()+int64(len(failures)), failures[0])
			}
		})
	}
	// Long after, with the instance gone for good, still nothing fails.
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		if w := serve(t, p, "GET", "k.localhost"); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
