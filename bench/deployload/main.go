// Command deployload measures what users of an app see while baton
// deploys it over and over: it starts a real `baton serve` (SQLite, free
// loopback ports, a temporary data directory), deploys examples/hello,
// keeps a steady load on the app through baton's proxy with every answer
// checked, and meanwhile runs back-to-back deployments to production with
// slot swaps (deploy to staging, swap staging → production) interleaved.
//
// It reports failed requests (each one, with its reason), latency in
// steady state and around each switch, and each operation's time split
// into baton's own work and the app's start and health check, as a
// Markdown table on stdout and in -out.
//
//	go build -o bin/baton ./cmd/baton && go build -o bin/hello ./examples/hello
//	go run ./bench/deployload -baton bin/baton -hello bin/hello
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/bench/internal/harness"
)

type options struct {
	baton, hello, example, manifest, out, app string
	deploys, swaps, conns, images             int
	rate                                      float64
	window, steady, timeout                   time.Duration
	keep                                      bool
}

func main() {
	var o options
	flag.StringVar(&o.baton, "baton", "", "the baton binary (required; `make bench-deploy` builds it)")
	flag.StringVar(&o.hello, "hello", "", "the example app binary built from examples/hello (required)")
	flag.StringVar(&o.example, "example", "examples/hello", "the example app's folder (its baton.toml and files are deployed with the binary)")
	flag.StringVar(&o.manifest, "manifest", "", "deploy with this baton.toml instead of the example's")
	flag.IntVar(&o.deploys, "deploys", 100, "deployments to production")
	flag.IntVar(&o.swaps, "swaps", 20, "swaps (each: deploy to staging, then swap staging → production), spread among the deployments")
	flag.IntVar(&o.conns, "conns", 4, "keep-alive connections of the load")
	flag.Float64Var(&o.rate, "rate", 400, "requests per second over all connections (0: each connection sends as fast as it is answered)")
	flag.DurationVar(&o.window, "window", 500*time.Millisecond, "requests due within this long before or after a switch count as 'around a switch'")
	flag.DurationVar(&o.steady, "steady", 3*time.Second, "load without operations before the first and after the last one (the steady state)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up (and clean up) after this long")
	flag.StringVar(&o.app, "app", "bench", "the app's name")
	flag.StringVar(&o.out, "out", "bench/results-deploy.md", "write the Markdown report here (\"\": stdout only)")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directory and baton's log after the run")
	flag.IntVar(&o.images, "images", 0, "instead of the load run: this many rounds of a cold container image deploy, a warm one and the same app as an archive (images.go; needs runc); report in bench/results-images.md")
	flag.Parse()
	if o.images > 0 {
		if o.baton == "" {
			fmt.Fprintln(os.Stderr, "deployload: -baton is required")
			os.Exit(2)
		}
		if o.out == "bench/results-deploy.md" {
			o.out = "bench/results-images.md"
		}
		ctx, stop := harness.SignalContext(context.Background())
		code := runImages(ctx, o)
		stop()
		os.Exit(code)
	}
	if o.baton == "" || o.hello == "" {
		fmt.Fprintln(os.Stderr, "deployload: -baton and -hello are required; `make bench-deploy` builds both and runs this")
		os.Exit(2)
	}
	if o.deploys < 1 || o.swaps < 0 || o.conns < 1 {
		fmt.Fprintln(os.Stderr, "deployload: want -deploys ≥ 1, -swaps ≥ 0, -conns ≥ 1")
		os.Exit(2)
	}
	ctx, stop := harness.SignalContext(context.Background())
	code := run(ctx, o)
	stop()
	os.Exit(code)
}

// run returns the exit code: 0 when every request succeeded and every
// operation succeeded, 1 otherwise.
func run(ctx context.Context, o options) int {
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, fmt.Errorf("the run took longer than -timeout %s", o.timeout))
	defer cancel()
	manifest := ""
	if o.manifest != "" {
		b, err := os.ReadFile(o.manifest)
		if err != nil {
			return fail(err)
		}
		manifest = string(b)
	}
	ex, err := harness.NewExample(o.example, o.hello, manifest)
	if err != nil {
		return fail(err)
	}

	b, stopBaton, err := harness.StartAnnounced(ctx, harness.Config{Bin: o.baton}, "deployload", o.keep)
	if err != nil {
		return fail(err)
	}
	defer stopBaton()
	c := b.Client(2)

	r := &runner{o: o, c: c, ex: ex, host: o.app + ".localhost"}
	if err := r.setUp(ctx); err != nil {
		b.Keep = true
		return fail(err)
	}
	step("load: %d keep-alive connections, %s, GET http://%s/ with Host %s; every answer must be 200 from a live revision of %s/production",
		o.conns, rateText(o.rate), b.ProxyAddr, r.host, o.app)
	l := startLoad(loadConfig{url: "http://" + b.ProxyAddr + "/", host: r.host, app: o.app, slot: baton.ProductionSlot, conns: o.conns, rate: o.rate})
	step("steady state: %s of load with no operation", o.steady)
	measure(ctx, o.steady)
	step("running %d deployments to production and %d swaps, back to back", o.deploys, o.swaps)
	opErr := r.operations(ctx, l)
	if opErr == nil {
		step("steady state: %s of load with no operation", o.steady)
		measure(ctx, o.steady)
		opErr = context.Cause(ctx)
	}
	samples := l.finish()
	step("load stopped: %d requests", len(samples))
	if cause := context.Cause(ctx); errors.Is(cause, harness.ErrInterrupted) {
		fmt.Fprintf(os.Stderr, "deployload: %v; no report\n", cause)
		return 1
	}
	if opErr != nil {
		b.Keep = true
		fmt.Fprintf(os.Stderr, "deployload: %v\n%s\n", opErr, b.LogTail(15))
		fmt.Fprintf(os.Stderr, "deployload: data and baton's log kept in %s\n", b.Root)
		return 1
	}

	step("reading the deployment logs and checking every answer against the switch timeline")
	rep, err := r.report(l, samples)
	if err != nil {
		b.Keep = true
		return fail(err)
	}
	if err := harness.WriteReport(rep.markdown(), o.out); err != nil {
		return fail(err)
	}
	if rep.anyFailed() {
		b.Keep = true
		return 1
	}
	return 0
}

// measure lets the load run for d (a measurement period, not a wait for
// anything) or until ctx ends.
func measure(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func rateText(rate float64) string {
	if rate <= 0 {
		return "closed loop (as fast as answered)"
	}
	return fmt.Sprintf("%.0f requests/s in total", rate)
}

// runner runs the operations and remembers them.
type runner struct {
	o    options
	c    *api.Client
	ex   *harness.Example
	host string
	ops  []*op
	// initial is the first deployment, made before the load starts.
	initial *op
	seq     int
}

func (r *runner) setUp(ctx context.Context) error {
	step("creating app %s with slot staging", r.o.app)
	if _, err := r.c.CreateApp(ctx, r.o.app); err != nil {
		return err
	}
	if _, err := r.c.CreateSlot(ctx, r.o.app, "staging"); err != nil {
		return err
	}
	step("deploying %s (v0) to production before the load starts", r.o.example)
	o, err := r.do(ctx, deployProduction)
	if err != nil {
		return err
	}
	r.initial = o
	step("v0 live as %s after %s", o.d.Revision, o.t2.Sub(o.t0).Round(time.Millisecond))
	return nil
}

// operations runs the deployments with the swaps spread evenly among them.
func (r *runner) operations(ctx context.Context, l *load) error {
	swapsDone := 0
	total := r.o.deploys + 2*r.o.swaps
	for i := range r.o.deploys {
		if _, err := r.do(ctx, deployProduction); err != nil {
			return err
		}
		// Swap after deployment i when the even spread says so.
		for swapsDone < r.o.swaps && (swapsDone+1)*r.o.deploys <= (i+1)*r.o.swaps {
			if _, err := r.do(ctx, deployStaging); err != nil {
				return err
			}
			if _, err := r.do(ctx, swapToProduction); err != nil {
				return err
			}
			swapsDone++
		}
		if n := len(r.ops); (i+1)%10 == 0 || n == total {
			step("%d/%d operations done; load: %d requests, %d failed so far", n, total, l.requests.Load(), l.failuresSoFar())
		}
	}
	return nil
}

// do runs one operation to its end and reads its log. A failed
// operation is an error: the run is about zero failures.
func (r *runner) do(ctx context.Context, kind opKind) (*op, error) {
	o := &op{kind: kind, version: fmt.Sprintf("v%d", r.seq)}
	r.seq++
	var err error
	switch kind {
	case deployProduction, deployStaging:
		slot := baton.ProductionSlot
		if kind == deployStaging {
			slot = "staging"
		}
		art, zerr := r.ex.Zip(o.version)
		if zerr != nil {
			return nil, zerr
		}
		o.t0 = time.Now()
		var res api.DeployResult
		res, err = r.c.Deploy(ctx, r.o.app, bytes.NewReader(art), api.DeployOptions{Slot: slot, ContentType: "application/zip",
			Message: "deployload " + o.version, Author: "deployload"})
		o.d = res.Deployment
	case swapToProduction:
		o.t0 = time.Now()
		o.d, err = r.c.Swap(ctx, r.o.app, "staging", baton.ProductionSlot, false, baton.PolicyQueue)
	}
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", kind, o.version, err)
	}
	d, err := r.c.Follow(ctx, o.d.ID, func(api.Event) {})
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", o.d.ID, err)
	}
	o.t2 = time.Now()
	o.d = d
	text, err := r.c.Log(ctx, d.ID)
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", d.ID, err)
	}
	if d.State != baton.StateSucceeded {
		return nil, fmt.Errorf("%s %s (%s) ended %s: %s\n%s", kind, d.ID, o.version, d.State, d.Error, text)
	}
	if o.phases, o.serves, err = parseLog(text); err != nil {
		return nil, fmt.Errorf("log of %s: %w", d.ID, err)
	}
	if kind != deployStaging {
		if _, ok := o.switchOf(r.host); !ok {
			return nil, fmt.Errorf("%s %s succeeded but its log has no line saying what now serves %s:\n%s", kind, d.ID, r.host, text)
		}
	}
	if r.initial != nil {
		r.ops = append(r.ops, o)
	}
	return o, nil
}

var step = harness.Step

func fail(err error) int {
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "-timeout") {
		msg += " (raise -timeout, or lower -deploys / -swaps)"
	}
	fmt.Fprintln(os.Stderr, "deployload:", msg)
	return 1
}
