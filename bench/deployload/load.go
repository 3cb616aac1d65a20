package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// sample is one request of the load: when it was due, sent and answered
// (offsets from the load's epoch) and which revision answered (-1: failed).
type sample struct {
	due, sent, done time.Duration
	rev             int32
}

// failure is a request that did not get a 200 from a live revision.
type failure struct {
	conn       int
	sent, done time.Time
	reason     string
}

// loadConfig says how to load the app.
type loadConfig struct {
	url, host, app, slot string
	conns                int
	// rate is the total requests per second over all connections; 0 sends
	// the next request as soon as the last is answered.
	rate float64
}

// load keeps conns keep-alive connections busy with GETs through baton's
// proxy and checks every answer.
type load struct {
	cfg   loadConfig
	epoch time.Time
	stop  chan struct{}
	wg    sync.WaitGroup

	samples [][]sample // per connection, appended only by its goroutine
	// newConns counts connections opened; more than conns means a
	// connection was closed under the client (net/http then retries an
	// idempotent GET on a new one, which this count exposes).
	newConns atomic.Int64
	// requests counts answered requests, for progress lines.
	requests atomic.Int64

	mu       sync.Mutex
	failures []failure
	revs     map[string]int32
	revNames []string
}

// answer is what the example app returns.
type answer struct {
	App      string `json:"app"`
	Slot     string `json:"slot"`
	Revision string `json:"revision"`
	Version  string `json:"version"`
}

func startLoad(cfg loadConfig) *load {
	l := &load{cfg: cfg, epoch: time.Now(), stop: make(chan struct{}),
		samples: make([][]sample, cfg.conns), revs: map[string]int32{}}
	for i := range cfg.conns {
		l.wg.Add(1)
		go l.run(i)
	}
	return l
}

// at converts an offset from the epoch to a wall-clock time comparable
// with baton's log timestamps.
func (l *load) at(off time.Duration) time.Time { return l.epoch.Add(off) }

func (l *load) run(conn int) {
	defer l.wg.Done()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}}
	defer client.CloseIdleConnections()
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if !info.Reused {
			l.newConns.Add(1)
		}
	}}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	var interval time.Duration
	next := time.Since(l.epoch)
	if l.cfg.rate > 0 {
		interval = time.Duration(float64(l.cfg.conns) / l.cfg.rate * float64(time.Second))
		next += interval * time.Duration(conn) / time.Duration(l.cfg.conns) // spread the connections
	}
	buf := make([]byte, 0, 1024)
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		due := time.Since(l.epoch)
		if interval > 0 {
			if wait := next - due; wait > 0 {
				select {
				case <-l.stop:
					return
				case <-time.After(wait):
				}
			}
			due, next = next, next+interval
		}
		sent := time.Since(l.epoch)
		rev, reason := l.get(ctx, client, &buf)
		done := time.Since(l.epoch)
		if reason != "" {
			rev = -1
			l.mu.Lock()
			l.failures = append(l.failures, failure{conn: conn, sent: l.at(sent), done: l.at(done), reason: reason})
			l.mu.Unlock()
		}
		l.samples[conn] = append(l.samples[conn], sample{due: due, sent: sent, done: done, rev: rev})
		l.requests.Add(1)
	}
}

// get sends one request and returns the answering revision's index, or
// why the answer is a failure.
func (l *load) get(ctx context.Context, client *http.Client, buf *[]byte) (int32, string) {
	req, err := http.NewRequestWithContext(ctx, "GET", l.cfg.url, nil)
	if err != nil {
		return -1, err.Error()
	}
	req.Host = l.cfg.host
	resp, err := client.Do(req)
	if err != nil {
		return -1, "transport: " + err.Error()
	}
	b := (*buf)[:0]
	b, err = readAll(resp.Body, b)
	resp.Body.Close()
	*buf = b
	if err != nil {
		return -1, fmt.Sprintf("status %d, body cut short: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return -1, fmt.Sprintf("status %d: %.300s", resp.StatusCode, b)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		return -1, fmt.Sprintf("status 200 but not the example app's JSON (%v): %.300s", err, b)
	}
	if a.App != l.cfg.app || a.Slot != l.cfg.slot || a.Revision == "" {
		return -1, fmt.Sprintf("status 200 from the wrong place: app %q slot %q revision %q (want app %q slot %q)", a.App, a.Slot, a.Revision, l.cfg.app, l.cfg.slot)
	}
	return l.intern(a.Revision), ""
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func (l *load) intern(rev string) int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, ok := l.revs[rev]
	if !ok {
		i = int32(len(l.revNames))
		l.revs[rev] = i
		l.revNames = append(l.revNames, rev)
	}
	return i
}

// finish stops the load, waits for the requests in flight, and returns
// every sample.
func (l *load) finish() []sample {
	close(l.stop)
	l.wg.Wait()
	var all []sample
	for _, s := range l.samples {
		all = append(all, s...)
	}
	return all
}

// failuresSoFar is how many requests have failed so far (for progress).
func (l *load) failuresSoFar() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.failures)
}
