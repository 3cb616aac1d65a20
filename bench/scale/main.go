// Command scale measures baton with many apps: it starts a real `baton
// serve` (SQLite, free loopback ports, a temporary data directory),
// registers 1,000 apps with 3 slots each through the API, times `status`
// of all apps and of one, restarts baton and times until /readyz and the
// proxy answer again (the routing table rebuilt from the store), sends
// 1,000 concurrent deployment requests to one app and follows every
// accepted one to its final state, and reads baton's memory from /proc
// between the stages. It prints a Markdown table and writes it to -out.
//
//	go build -o bin/baton ./cmd/baton && go build -o bin/hello ./examples/hello
//	go run ./bench/scale -baton bin/baton -hello bin/hello
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/bench/internal/harness"
)

type options struct {
	baton, hello, out                      string
	apps, slots, workers, deployed, storm  int
	statusAllReps, statusOneReps, restarts int
	policy                                 string
	timeout                                time.Duration
	keep                                   bool
	store                                  string
}

// storeName names the store for the report.
func (o options) storeName() string {
	if o.store == "" {
		return "SQLite"
	}
	return "PostgreSQL"
}

// storeArgs are baton serve's flags for -store.
func (o options) storeArgs() []string {
	if o.store == "" {
		return nil
	}
	return []string{"--store", o.store}
}

func main() {
	var o options
	flag.StringVar(&o.baton, "baton", "", "the baton binary (required; `make bench-scale` builds it)")
	flag.StringVar(&o.hello, "hello", "", "the example app binary built from examples/hello (required)")
	flag.IntVar(&o.apps, "apps", 1000, "apps to register")
	flag.IntVar(&o.slots, "slots", 3, "slots per app, production included")
	flag.IntVar(&o.workers, "workers", 8, "concurrent API requests while registering and reading")
	flag.IntVar(&o.statusAllReps, "status-all-reps", 10, "calls of GET /api/v1/status (all apps) to time")
	flag.IntVar(&o.statusOneReps, "status-one-reps", 100, "calls of GET /api/v1/apps/APP/status to time")
	flag.IntVar(&o.deployed, "deployed", 5, "apps to deploy (so the restarted proxy has something to route)")
	flag.IntVar(&o.restarts, "restarts", 3, "restarts of baton serve to time")
	flag.IntVar(&o.storm, "storm", 1000, "concurrent deployment requests to one app")
	flag.StringVar(&o.policy, "storm-policy", string(baton.PolicySupersede), "on_conflict of the storm's requests")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up (and clean up) after this long")
	flag.StringVar(&o.out, "out", "bench/results-scale.md", "write the Markdown report here (\"\": stdout only)")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directory and baton's log after the run")
	flag.StringVar(&o.store, "store", "", "baton serve --store: a postgres:// URL of an empty database (\"\": the embedded SQLite)")
	flag.Parse()
	if o.baton == "" || o.hello == "" {
		fmt.Fprintln(os.Stderr, "scale: -baton and -hello are required; `make bench-scale` builds both and runs this")
		os.Exit(2)
	}
	if o.apps < 1 || o.slots < 1 || o.workers < 1 || o.deployed < 1 || o.deployed >= o.apps || o.storm < 1 {
		// The restart stage times the 503 of the last app, which must not be deployed.
		fmt.Fprintln(os.Stderr, "scale: want -apps, -slots, -workers, -storm ≥ 1 and 1 ≤ -deployed < -apps")
		os.Exit(2)
	}
	if _, err := baton.ParsePolicy(o.policy); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(2)
	}
	ctx, stop := harness.SignalContext(context.Background())
	code := run(ctx, o)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, o options) int {
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, fmt.Errorf("the run took longer than -timeout %s", o.timeout))
	defer cancel()
	b, stopBaton, err := harness.StartAnnounced(ctx, harness.Config{Bin: o.baton, Args: o.storeArgs(), StartTimeout: 2 * time.Minute}, "scale", o.keep)
	if err != nil {
		return fail(err)
	}
	defer stopBaton()
	s := &scale{o: o, b: b, c: b.Client(o.workers), rep: &report{o: o}}
	if err := s.stages(ctx); err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, harness.ErrInterrupted) {
			fmt.Fprintf(os.Stderr, "scale: %v; no report\n", cause)
			return 1
		}
		b.Keep = true
		fmt.Fprintf(os.Stderr, "scale: %v\n%s\nscale: data and baton's log kept in %s\n", err, b.LogTail(15), b.Root)
		return 1
	}
	if err := harness.WriteReport(s.rep.markdown(), o.out); err != nil {
		return fail(err)
	}
	if problems := s.rep.problems(); len(problems) > 0 {
		b.Keep = true
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "scale: PROBLEM:", p)
		}
		return 1
	}
	return 0
}

// scale runs the stages against one baton and fills the report.
type scale struct {
	o   options
	b   *harness.Baton
	c   *api.Client
	rep *report
}

func (s *scale) stages(ctx context.Context) error {
	s.memory("fresh start")
	if err := s.register(ctx); err != nil {
		return err
	}
	s.memory(fmt.Sprintf("after registering %d apps × %d slots", s.o.apps, s.o.slots))
	if err := s.status(ctx); err != nil {
		return err
	}
	s.memory("after the status calls")
	if err := s.deployHandful(ctx); err != nil {
		return err
	}
	if err := s.restarts(ctx); err != nil {
		return err
	}
	s.memory("after restart (routes rebuilt)")
	if err := s.stormStage(ctx); err != nil {
		return err
	}
	s.memory("after the deployment storm")
	return nil
}

func appName(i int) string { return fmt.Sprintf("app%04d", i) }

// extraSlots are the slot names beyond production.
func (s *scale) extraSlots() []string {
	names := []string{"staging", "canary", "preview", "qa", "dev"}
	var out []string
	for i := range s.o.slots - 1 {
		if i < len(names) {
			out = append(out, names[i])
		} else {
			out = append(out, fmt.Sprintf("slot%d", i))
		}
	}
	return out
}

// register creates the apps and their slots, o.workers requests at a time.
func (s *scale) register(ctx context.Context) error {
	step("registering %d apps × %d slots through the API (%d at a time)", s.o.apps, s.o.slots, s.o.workers)
	var mu sync.Mutex
	var createApp, createSlot []time.Duration
	start := time.Now()
	err := forEach(ctx, s.o.apps, s.o.workers, func(ctx context.Context, i int) error {
		t := time.Now()
		if _, err := s.c.CreateApp(ctx, appName(i)); err != nil {
			return fmt.Errorf("create app %s: %w", appName(i), err)
		}
		d := time.Since(t)
		var ds []time.Duration
		for _, slot := range s.extraSlots() {
			t := time.Now()
			if _, err := s.c.CreateSlot(ctx, appName(i), slot); err != nil {
				return fmt.Errorf("create slot %s of %s: %w", slot, appName(i), err)
			}
			ds = append(ds, time.Since(t))
		}
		mu.Lock()
		createApp = append(createApp, d)
		createSlot = append(createSlot, ds...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	total := time.Since(start)
	s.rep.registerTotal = total
	s.rep.add("POST /api/v1/apps (create app)", createApp)
	if len(createSlot) > 0 {
		s.rep.add("POST /api/v1/apps/APP/slots (create slot)", createSlot)
	}
	step("registered %d apps and %d slots in %s (%.0f calls/s)", len(createApp), len(createApp)+len(createSlot),
		total.Round(time.Millisecond), float64(len(createApp)+len(createSlot))/total.Seconds())
	apps, err := s.c.Apps(ctx)
	if err != nil {
		return err
	}
	if len(apps) != s.o.apps {
		return fmt.Errorf("GET /api/v1/apps lists %d apps, want %d", len(apps), s.o.apps)
	}
	return nil
}

// status times the status of all apps and of one, one call at a time.
func (s *scale) status(ctx context.Context) error {
	step("timing GET /api/v1/status (all %d apps; `baton status` reads it in pages of 200) ×%d, GET /api/v1/apps/%s/status ×%d, GET /api/v1/apps ×%d, and a page of each",
		s.o.apps, s.o.statusAllReps, appName(0), s.o.statusOneReps, s.o.statusAllReps)
	check := func(want int) func([]byte) error {
		return func(b []byte) error {
			var v []json.RawMessage
			if err := json.Unmarshal(b, &v); err != nil {
				return err
			}
			if len(v) != want {
				return fmt.Errorf("%d entries, want %d", len(v), want)
			}
			return nil
		}
	}
	// changeApp freezes or unfreezes the last app: a change of an app
	// before each read, so the list cannot be the one the store kept.
	frozen := false
	changeApp := func() error {
		frozen = !frozen
		if frozen {
			_, err := s.c.Freeze(ctx, appName(s.o.apps-1), "bench: a change before the read", false)
			return err
		}
		_, err := s.c.Unfreeze(ctx, appName(s.o.apps-1))
		return err
	}
	for _, c := range []struct {
		name, path string
		reps       int
		check      func([]byte) error
		before     func() error
	}{
		{"GET /api/v1/status (all apps)", "/api/v1/status", s.o.statusAllReps, check(s.o.apps), nil},
		{"GET /api/v1/apps/APP/status (one app)", "/api/v1/apps/" + appName(0) + "/status", s.o.statusOneReps, nil, nil},
		{"GET /api/v1/apps (list)", "/api/v1/apps", s.o.statusAllReps, check(s.o.apps), nil},
		// The SQLite store keeps the list while no app or slot changes
		// (sqlite/catalog.go); right after a change it reads every row.
		{"GET /api/v1/apps (list) right after a change of an app", "/api/v1/apps", s.o.statusAllReps, check(s.o.apps), changeApp},
		// Pages, as `baton status` and `baton apps list` read the lists.
		{"GET /api/v1/status?limit=200 (a page)", "/api/v1/status?limit=200", s.o.statusAllReps, check(min(200, s.o.apps)), nil},
		{"GET /api/v1/apps?limit=200 (a page)", "/api/v1/apps?limit=200", s.o.statusAllReps, check(min(200, s.o.apps)), nil},
	} {
		var ds []time.Duration
		size := 0
		for range c.reps {
			if c.before != nil {
				if err := c.before(); err != nil {
					return err
				}
			}
			d, body, err := s.get(ctx, c.path)
			if err != nil {
				return err
			}
			if c.check != nil {
				if err := c.check(body); err != nil {
					return fmt.Errorf("GET %s: %w", c.path, err)
				}
			}
			ds = append(ds, d)
			size = len(body)
		}
		s.rep.add(fmt.Sprintf("%s, %s answer", c.name, sizeText(size)), ds)
		st := harness.Sorted(ds)
		step("%s: median %s ms, p99 %s ms (%s)", c.name, harness.Ms(harness.Percentile(st, 0.5)), harness.Ms(harness.Percentile(st, 0.99)), sizeText(size))
	}
	return nil
}

func sizeText(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// get times one GET of the API until its body is read (not decoded).
func (s *scale) get(ctx context.Context, path string) (time.Duration, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", s.c.BaseURL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.b.Token)
	t := time.Now()
	resp, err := s.c.HTTP.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != 200 {
		return 0, nil, fmt.Errorf("GET %s answered %d: %.300s", path, resp.StatusCode, body)
	}
	return d, body, nil
}

// deployHandful deploys the first o.deployed apps, concurrently.
func (s *scale) deployHandful(ctx context.Context) error {
	step("deploying the example app (thin artifact: manifest + version, binary by path) to %d apps", s.o.deployed)
	return forEach(ctx, s.o.deployed, s.o.workers, func(ctx context.Context, i int) error {
		art, err := harness.ThinZip(s.o.hello, "v0", "50ms")
		if err != nil {
			return err
		}
		res, err := s.c.Deploy(ctx, appName(i), bytes.NewReader(art), api.DeployOptions{ContentType: "application/zip", Message: "scale"})
		if err != nil {
			return fmt.Errorf("deploy %s: %w", appName(i), err)
		}
		d, err := s.c.Follow(ctx, res.ID, func(api.Event) {})
		if err != nil {
			return fmt.Errorf("follow %s: %w", res.ID, err)
		}
		if d.State != baton.StateSucceeded {
			return fmt.Errorf("deployment %s of %s ended %s: %s", d.ID, appName(i), d.State, d.Error)
		}
		return nil
	})
}

// memory records baton's VmRSS and VmHWM.
func (s *scale) memory(when string) {
	m, err := s.b.Memory()
	if err != nil {
		step("memory %s: %v", when, err)
		return
	}
	s.rep.mem = append(s.rep.mem, memRow{when, m})
	step("memory of baton serve %s: %s", when, m)
}

// forEach runs fn(0..n-1) on workers goroutines; the first error stops
// the rest and is returned.
func forEach(ctx context.Context, n, workers int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

var step = harness.Step

func fail(err error) int {
	msg := err.Error()
	if strings.Contains(msg, "-timeout") {
		msg += " (raise -timeout, or lower -apps / -storm)"
	}
	fmt.Fprintln(os.Stderr, "scale:", msg)
	return 1
}
