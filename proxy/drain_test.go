package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSwitchUnderLoadLosesNoRequest is the contract: 16 clients loop GETs
// while the routes move to a new set of instances 50 times, each old set
// drained and then shut down. Not one request may fail.
func TestSwitchUnderLoadLosesNoRequest(t *testing.T) {
	for _, name := range []string{"Serve", "ServeHTTP"} {
		t.Run(name, func(t *testing.T) {
			p := newTestProxy(t, Config{})
			base := startServe(t, p)
			if name == "ServeHTTP" {
				front := httptest.NewServer(p)
				t.Cleanup(front.Close)
				base = front.URL
			}
			switchUnderLoad(t, p, base, 16)
		})
	}
}

// TestSwitchUnderLoad64Connections is the contract at 64 connections on
// the data plane.
func TestSwitchUnderLoad64Connections(t *testing.T) {
	p := newTestProxy(t, Config{})
	switchUnderLoad(t, p, startServe(t, p), 64)
}

func switchUnderLoad(t *testing.T, p *Proxy, base string, clients int) {
	switchUnderLoadWith(t, p, base, newClient(t, clients), clients)
}

// switchUnderLoadWith runs the contract with clients goroutines sending
// through client.
func switchUnderLoadWith(t *testing.T, p *Proxy, base string, client *http.Client, clients int) {

	generation := func(i int) ([]*httptest.Server, Route) {
		name := fmt.Sprintf("gen%d", i)
		// Not startUpstream: these are closed by the test, mid-run.
		var srvs []*httptest.Server
		var addrs []string
		for range 2 {
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(name))
			}))
			srvs = append(srvs, s)
			addrs = append(addrs, addrOf(s))
		}
		return srvs, route1("hello.localhost", "hello", name, addrs...)
	}
	closeAll := func(srvs []*httptest.Server) {
		for _, s := range srvs {
			s.Close()
		}
	}

	cur, rt := generation(0)
	p.SetRoutes([]Route{rt})

	var (
		stop     = make(chan struct{})
		progress = make(chan struct{}, 4*clients)
		wg       sync.WaitGroup
		okCount  atomic.Int64
		mu       sync.Mutex
		failures []string
		seen     = map[string]int{}
	)
	for range clients {
		wg.Go(func() {
			local := map[string]int{}
			defer func() {
				mu.Lock()
				for k, v := range local {
					seen[k] += v
				}
				mu.Unlock()
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, body, err := getVia(client, base, "hello.localhost")
				if err != nil || status != http.StatusOK {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("status %d body %q err %v", status, body, err))
					mu.Unlock()
					continue
				}
				okCount.Add(1)
				local[body]++
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}
	// waitProgress waits until the clients completed n more requests, so
	// every switch happens under load.
	waitProgress := func(n int) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for range n {
			select {
			case <-progress:
			case <-timeout:
				t.Fatalf("clients made no progress (%d ok so far)", okCount.Load())
			}
		}
	}

	const switches = 50
	for i := 1; i <= switches; i++ {
		waitProgress(clients)
		next, rt := generation(i)
		p.SetRoutes([]Route{rt})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := p.Drain(ctx, []string{addrOf(cur[0]), addrOf(cur[1])})
		cancel()
		if err != nil {
			t.Fatalf("switch %d: %v", i, err)
		}
		closeAll(cur)
		cur = next
	}
	waitProgress(4 * clients)
	close(stop)
	wg.Wait()
	closeAll(cur)

	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed across %d switches; first: %s",
			len(failures), int(okCount.Load())+len(failures), switches, failures[0])
	}
	if seen["gen0"] == 0 || seen[fmt.Sprintf("gen%d", switches)] == 0 {
		t.Fatalf("responses did not come from both the first and the last generation: %v", seen)
	}
	t.Logf("%d requests, all 200, from %d generations", okCount.Load(), len(seen))
}

func TestDrainWaitsForInFlightRequest(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		w.Write([]byte("slow"))
	})
	fast := startUpstream(t, "fast")
	p := newTestProxy(t, Config{})
	front := httptest.NewServer(p)
	defer front.Close()
	client := newClient(t, 2)

	p.SetRoutes([]Route{route1("d.localhost", "d", "d--000001", addrOf(slow))})
	type result struct {
		status int
		body   string
		err    error
	}
	slowResult := make(chan result, 1)
	go func() {
		status, body, err := getVia(client, front.URL, "d.localhost")
		slowResult <- result{status, body, err}
	}()
	<-started
	if n := p.InFlight(addrOf(slow)); n != 1 {
		t.Fatalf("InFlight(slow) = %d, want 1", n)
	}

	// Switch: new requests go to fast at once.
	p.SetRoutes([]Route{route1("d.localhost", "d", "d--000002", addrOf(fast))})
	if status, body, err := getVia(client, front.URL, "d.localhost"); err != nil || status != 200 || body != "fast" {
		t.Fatalf("after switch: %d %q %v", status, body, err)
	}

	// A Drain whose context has ended says how much is still in flight.
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	err := p.Drain(expired, []string{addrOf(slow)})
	if err == nil || !strings.Contains(err.Error(), "1 request still in flight") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain(expired) = %v, want an error with the in-flight count", err)
	}

	drained := make(chan error, 1)
	go func() { drained <- p.Drain(context.Background(), []string{addrOf(slow)}) }()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v while a request was in flight", err)
	default:
	}
	close(release)
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if n := p.InFlight(addrOf(slow)); n != 0 {
		t.Fatalf("InFlight(slow) after Drain = %d", n)
	}
	if r := <-slowResult; r.err != nil || r.status != 200 || r.body != "slow" {
		t.Fatalf("in-flight request: %d %q %v", r.status, r.body, r.err)
	}
	p.mu.Lock()
	_, kept := p.reg[addrOf(slow)]
	p.mu.Unlock()
	if kept {
		t.Errorf("drained upstream no table references is still registered")
	}
}

func TestDrainUnknownAddrReturnsAtOnce(t *testing.T) {
	p := newTestProxy(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Drain must not even need the context
	if err := p.Drain(ctx, []string{"127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
}

// TestReusedAddrStartsFresh: ports get reused, and a revision rolled back
// to comes back on its old addresses; neither may stay draining.
func TestReusedAddrStartsFresh(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	p := newTestProxy(t, Config{})
	ra := route1("r.localhost", "r", "r--000001", addrOf(a))
	rb := route1("r.localhost", "r", "r--000002", addrOf(b))

	// Drained after being switched away from, then switched back to.
	p.SetRoutes([]Route{ra})
	p.SetRoutes([]Route{rb})
	if err := p.Drain(context.Background(), []string{addrOf(a)}); err != nil {
		t.Fatal(err)
	}
	p.SetRoutes([]Route{ra})
	if w := serve(t, p, http.MethodGet, "r.localhost"); w.Code != 200 || w.Body.String() != "a" {
		t.Fatalf("after switching back: %d %q", w.Code, w.Body)
	}

	// Drained while still routed: out of rotation until SetRoutes lists it
	// again.
	if err := p.Drain(context.Background(), []string{addrOf(a)}); err != nil {
		t.Fatal(err)
	}
	decodeProblem(t, serve(t, p, http.MethodGet, "r.localhost"), http.StatusServiceUnavailable)
	p.SetRoutes([]Route{ra})
	if w := serve(t, p, http.MethodGet, "r.localhost"); w.Code != 200 || w.Body.String() != "a" {
		t.Fatalf("after routing a drained address again: %d %q", w.Code, w.Body)
	}
}

// TestDrainNeverReleasesACountedRequest checks the handshake itself, without
// HTTP: once Drain has returned, no request may be counted on the drained
// upstream, however the goroutines interleave.
func TestDrainNeverReleasesACountedRequest(t *testing.T) {
	p := newTestProxy(t, Config{})
	for round := range 200 {
		oldAddr := fmt.Sprintf("127.0.0.1:%d", 10000+2*round)
		newAddr := fmt.Sprintf("127.0.0.1:%d", 10001+2*round)
		p.SetRoutes([]Route{route1("h.localhost", "h", "old", oldAddr)})

		var drained atomic.Bool
		var violations, served atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, _, pb := p.acquire("h.localhost", "", "", "")
					u := c.u
					if pb != nil {
						t.Errorf("acquire: %s", pb.Detail)
						return
					}
					if u.addr == oldAddr && drained.Load() {
						violations.Add(1)
					}
					served.Add(1)
					u.release()
				}
			})
		}
		p.SetRoutes([]Route{route1("h.localhost", "h", "new", newAddr)})
		if err := p.Drain(context.Background(), []string{oldAddr}); err != nil {
			t.Fatal(err)
		}
		drained.Store(true)
		close(stop)
		wg.Wait()
		if v := violations.Load(); v > 0 {
			t.Fatalf("round %d: %d requests counted on %s after Drain returned", round, v, oldAddr)
		}
	}
}
