package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// Contract tests of what must hold when several callers (goroutines here,
// controllers in production) use a store at once.

// concurrently runs fn(i) for i in [0, n) in n goroutines released at the
// same moment, and returns their errors by i.
func concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	startGun := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGun
			errs[i] = fn(i)
		}()
	}
	close(startGun)
	wg.Wait()
	return errs
}

// testEnqueueFailConcurrent: policy fail is decided atomically with the
// insert. Of 20 simultaneous requests on an idle app exactly one is
// accepted and the others name it; while it runs, 20 more are all refused.
func testEnqueueFailConcurrent(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "race")).on(t)
	const n = 20
	ids := make([]string, n)
	errs := concurrently(n, func(i int) error {
		d := newDeployment("race", baton.PolicyFail)
		ids[i] = d.ID
		_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: d})
		return err
	})
	var accepted []string
	for i, err := range errs {
		if err == nil {
			accepted = append(accepted, ids[i])
		} else if baton.ErrorCode(err) != baton.ECONFLICT {
			t.Fatalf("request %d: %v, want ECONFLICT or success", i, err)
		}
	}
	if len(accepted) != 1 {
		t.Fatalf("%d of %d concurrent fail-policy requests accepted on an idle app, want exactly 1", len(accepted), n)
	}
	for i, err := range errs {
		var e *baton.Error
		if err != nil && (!errors.As(err, &e) || e.Conflict == nil || e.Conflict.Holder == nil || e.Conflict.Holder.ID != accepted[0]) {
			t.Fatalf("refusal %d does not name the accepted deployment %s: %v", i, accepted[0], err)
		}
	}
	first := must(s.Deployment(ctx, accepted[0])).on(t)
	start(t, s, first)
	errs = concurrently(n, func(int) error {
		_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: newDeployment("race", baton.PolicyFail)})
		return err
	})
	for i, err := range errs {
		var e *baton.Error
		if !errors.As(err, &e) || e.Code != baton.ECONFLICT || e.Conflict == nil || e.Conflict.Holder == nil || e.Conflict.Holder.ID != first.ID {
			t.Fatalf("request %d while %s runs: %v, want ECONFLICT naming it", i, first.ID, err)
		}
	}
	if all := must(s.Deployments(ctx, baton.DeploymentFilter{App: "race"})).on(t); len(all) != 1 {
		t.Fatalf("%d deployments recorded, want only the accepted one", len(all))
	}
}

// testEnqueueQueueFullConcurrent: the queue bound holds exactly under
// concurrent requests.
func testEnqueueQueueFullConcurrent(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "bounded")).on(t)
	const n, limit = 20, 5
	errs := concurrently(n, func(int) error {
		_, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: newDeployment("bounded", baton.PolicyQueue), MaxQueue: limit})
		return err
	})
	accepted := 0
	for i, err := range errs {
		switch baton.ErrorCode(err) {
		case "":
			accepted++
		case baton.EQUEUEFULL:
		default:
			t.Fatalf("request %d: %v, want EQUEUEFULL or success", i, err)
		}
	}
	q := must(s.Deployments(ctx, baton.DeploymentFilter{App: "bounded", States: []baton.State{baton.StateQueued}})).on(t)
	if accepted != limit || len(q) != limit {
		t.Fatalf("%d accepted, %d queued; want both %d", accepted, len(q), limit)
	}
}

// testIdempotencyConcurrent: simultaneous retries with one key create one
// deployment and all get it back.
func testIdempotencyConcurrent(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "retry")).on(t)
	const n = 10
	results := make([]baton.EnqueueResult, n)
	errs := concurrently(n, func(i int) error {
		d := newDeployment("retry", baton.PolicyQueue)
		d.IdempotencyKey = "pipeline-42"
		var err error
		results[i], err = s.Enqueue(ctx, baton.EnqueueRequest{Deployment: d, IdempotencyWindow: time.Hour})
		return err
	})
	created := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !results[i].Existing {
			created++
		}
		if results[i].Deployment.ID != results[0].Deployment.ID {
			t.Fatalf("request %d got %s, request 0 got %s", i, results[i].Deployment.ID, results[0].Deployment.ID)
		}
	}
	if all := must(s.Deployments(ctx, baton.DeploymentFilter{App: "retry"})).on(t); created != 1 || len(all) != 1 {
		t.Fatalf("%d created, %d recorded; want 1 and 1", created, len(all))
	}
}

// testLogConcurrentTail: a reader following a log with Log(after) misses
// no line while several writers append to it.
func testLogConcurrentTail(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "tail")).on(t)
	d := enqueue(t, s, newDeployment("tail", baton.PolicyQueue)).Deployment
	const writers, perWriter = 4, 40
	done := make(chan struct{})
	var seen []baton.LogLine
	readErr := make(chan error, 1)
	go func() {
		var after int64
		for {
			// Read once more after the writers finish, to catch the tail.
			finished := false
			select {
			case <-done:
				finished = true
			default:
			}
			lines, err := s.Log(ctx, d.ID, after)
			if err != nil {
				readErr <- err
				return
			}
			for _, l := range lines {
				if l.ID <= after {
					readErr <- fmt.Errorf("line id %d after %d: ids not increasing", l.ID, after)
					return
				}
				after = l.ID
				seen = append(seen, l)
			}
			if finished {
				readErr <- nil
				return
			}
		}
	}()
	errs := concurrently(writers, func(w int) error {
		for i := 0; i < perWriter; i += 2 {
			if err := s.AppendLog(ctx, d.ID, fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("w%d-%d", w, i+1)); err != nil {
				return err
			}
		}
		return nil
	})
	close(done)
	if err := errors.Join(append(errs, <-readErr)...); err != nil {
		t.Fatal(err)
	}
	all := must(s.Log(ctx, d.ID, 0)).on(t)
	if len(all) != writers*perWriter || len(seen) != len(all) {
		t.Fatalf("the tailing reader saw %d lines, the log has %d, %d were written", len(seen), len(all), writers*perWriter)
	}
	for i := range all {
		if seen[i].ID != all[i].ID || seen[i].Text != all[i].Text {
			t.Fatalf("line %d: the reader saw %+v, the log has %+v", i, seen[i], all[i])
		}
	}
}
