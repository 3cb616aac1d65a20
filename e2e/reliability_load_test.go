package e2e

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// relLoad sends GET / through baton's proxy at a constant rate (each
// worker one request per tick, round robin over hosts) and counts answers.
// Unlike startLoad it keeps its rate while the proxy is down, so a count of
// failures measures how long and how often requests failed.
type relLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	samples    map[string]int // failure text → count
	// firstFail and lastFail bound the failures seen (zero: none).
	firstFail, lastFail time.Time
	stop                chan struct{}
	stopOnce            sync.Once
	wg                  sync.WaitGroup
}

// startRelLoad starts workers that each send one request every interval,
// and stops them at the test's end if finish was not called.
func startRelLoad(t testing.TB, proxyAddr string, hosts []string, workers int, every time.Duration) *relLoad {
	t.Helper()
	p := newProxyClient(proxyAddr)
	p.http.Timeout = 5 * time.Second
	l := &relLoad{samples: map[string]int{}, stop: make(chan struct{})}
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for n := i; ; n++ {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				host := hosts[n%len(hosts)]
				status, body, err := p.get(host, "/")
				switch {
				case err != nil:
					l.fail(host, err.Error())
				case status != 200:
					l.fail(host, fmt.Sprintf("status %d: %.80s", status, body))
				default:
					l.ok.Add(1)
				}
			}
		}()
	}
	t.Cleanup(func() { l.finish() })
	return l
}

func (l *relLoad) fail(host, what string) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.firstFail.IsZero() {
		l.firstFail = now
	}
	l.lastFail = now
	if len(l.samples) < 20 {
		l.samples[host+": "+what]++
	}
}

// finish stops the workers and waits for them.
func (l *relLoad) finish() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// totals returns the requests sent and failed so far.
func (l *relLoad) totals() (requests, failed int64) {
	f := l.failed.Load()
	return l.ok.Load() + f, f
}

// failureWindow returns the time from the first to the last failure.
func (l *relLoad) failureWindow() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastFail.Sub(l.firstFail)
}

// failureSamples describes up to 20 kinds of failure seen.
func (l *relLoad) failureSamples() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := ""
	for what, n := range l.samples {
		s += fmt.Sprintf("\n    %d× %s", n, what)
	}
	return s
}

// report stops the load and adds its counts to c.
func (l *relLoad) report(t testing.TB, c *relCounts) (requests, failed int64) {
	t.Helper()
	l.finish()
	requests, failed = l.totals()
	c.add(func(c *relCounts) { c.Requests += requests; c.FailedRequests += failed })
	if failed > 0 {
		t.Logf("load: %d requests, %d failed:%s", requests, failed, l.failureSamples())
	} else {
		t.Logf("load: %d requests, none failed", requests)
	}
	return requests, failed
}
