package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// testHooks: hooks round-trip (secret included, never serialized), IDs are
// unique, only http(s) URLs are kept, and removing a hook removes its
// deliveries.
func testHooks(t *testing.T, s baton.Store) {
	ctx := context.Background()
	if hs := must(s.Hooks(ctx)).on(t); len(hs) != 0 {
		t.Fatalf("a new store has hooks: %+v", hs)
	}
	h := must(s.CreateHook(ctx, baton.Hook{ID: "h-1", URL: "https://ci.example/hook", App: "web",
		Events: []string{"deployment.failed", "swap.*"}, Secret: "s3cret", CreatedBy: "test"})).on(t)
	if h.CreatedAt.IsZero() || !h.Signed || h.Source != "api" {
		t.Fatalf("created = %+v", h)
	}
	got := must(s.Hook(ctx, "h-1")).on(t)
	if got.URL != "https://ci.example/hook" || got.App != "web" || len(got.Events) != 2 || got.Events[1] != "swap.*" ||
		got.Secret != "s3cret" || !got.Signed || got.CreatedBy != "test" || !got.CreatedAt.Equal(h.CreatedAt) {
		t.Fatalf("Hook = %+v, want %+v", got, h)
	}
	_, err := s.CreateHook(ctx, baton.Hook{ID: "h-1", URL: "http://other.example/"})
	wantCode(t, err, baton.ECONFLICT)
	for _, bad := range []string{"ftp://x.example/", "/relative", "file:///etc/passwd", "http://user:pw@x.example/"} {
		_, err := s.CreateHook(ctx, baton.Hook{ID: "h-bad", URL: bad})
		wantCode(t, err, baton.EINVALID)
	}
	_, err = s.CreateHook(ctx, baton.Hook{ID: "h-bad", URL: "http://x.example/", Events: []string{"deployment"}})
	wantCode(t, err, baton.EINVALID)
	all := must(s.CreateHook(ctx, baton.Hook{ID: "h-2", URL: "http://all.example/"})).on(t)
	if all.Events != nil || all.Signed {
		t.Fatalf("hook without events or secret = %+v", all)
	}
	if hs := must(s.Hooks(ctx)).on(t); len(hs) != 2 || hs[0].ID != "h-1" || hs[1].ID != "h-2" {
		t.Fatalf("Hooks = %+v", hs)
	}

	must(s.AddDeliveries(ctx, []baton.Delivery{
		{HookID: "h-1", EventID: "e-1", EventType: "deployment.failed", App: "web", Body: []byte(`{"id":"e-1"}`)},
		{HookID: "h-2", EventID: "e-1", EventType: "deployment.failed", App: "web", Body: []byte(`{"id":"e-1"}`)},
	})).on(t)
	wantCode(t, s.DeleteHook(ctx, "h-1"), "")
	wantCode(t, s.DeleteHook(ctx, "h-1"), baton.ENOTFOUND)
	_, err = s.Hook(ctx, "h-1")
	wantCode(t, err, baton.ENOTFOUND)
	if ds := must(s.Deliveries(ctx, "", 0)).on(t); len(ds) != 1 || ds[0].HookID != "h-2" {
		t.Fatalf("deliveries after removing h-1 = %+v", ds)
	}
}

// testDeliveryQueue: a delivery is queued once per hook and event, claimed
// when due and not again while its lease runs, retried after RetryIn, and
// ends delivered or failed with its attempts, status and error recorded.
func testDeliveryQueue(t *testing.T, s baton.Store) {
	ctx := context.Background()
	ev := func(hook, id string) baton.Delivery {
		return baton.Delivery{HookID: hook, EventID: id, EventType: "deployment.succeeded", App: "web", Body: []byte(`{"id":"` + id + `"}`)}
	}
	if n := must(s.AddDeliveries(ctx, []baton.Delivery{ev("flag-a", "d-1.succeeded"), ev("flag-b", "d-1.succeeded")})).on(t); n != 2 {
		t.Fatalf("added %d, want 2", n)
	}
	// The same event again (a repeated notification) is not queued twice.
	if n := must(s.AddDeliveries(ctx, []baton.Delivery{ev("flag-a", "d-1.succeeded"), ev("flag-a", "d-2.succeeded")})).on(t); n != 1 {
		t.Fatalf("added %d, want 1 (d-2 only)", n)
	}
	claimed := must(s.ClaimDeliveries(ctx, time.Minute, 10)).on(t)
	if len(claimed) != 3 || claimed[0].EventID != "d-1.succeeded" || claimed[2].EventID != "d-2.succeeded" ||
		string(claimed[0].Body) != `{"id":"d-1.succeeded"}` || claimed[0].State != baton.DeliveryPending || claimed[0].Attempts != 0 {
		t.Fatalf("claimed = %+v", claimed)
	}
	if again := must(s.ClaimDeliveries(ctx, time.Minute, 10)).on(t); len(again) != 0 {
		t.Fatalf("claimed again while leased: %+v", again)
	}
	a, b, c := claimed[0], claimed[1], claimed[2]
	wantCode(t, s.RecordDelivery(ctx, a.ID, baton.DeliveryAttempt{Status: 200, State: baton.DeliveryDelivered}), "")
	wantCode(t, s.RecordDelivery(ctx, b.ID, baton.DeliveryAttempt{Status: 500, Error: "receiver answered 500", State: baton.DeliveryPending}), "")
	wantCode(t, s.RecordDelivery(ctx, c.ID, baton.DeliveryAttempt{Error: "connection refused", State: baton.DeliveryPending, RetryIn: time.Hour}), "")
	wantCode(t, s.RecordDelivery(ctx, 1<<40, baton.DeliveryAttempt{State: baton.DeliveryDelivered}), baton.ENOTFOUND)

	// b is due again at once (RetryIn 0); c only in an hour; a is done.
	retry := must(s.ClaimDeliveries(ctx, time.Minute, 10)).on(t)
	if len(retry) != 1 || retry[0].ID != b.ID || retry[0].Attempts != 1 || retry[0].LastStatus != 500 || retry[0].LastError != "receiver answered 500" {
		t.Fatalf("retry claim = %+v, want b after one attempt", retry)
	}
	wantCode(t, s.RecordDelivery(ctx, b.ID, baton.DeliveryAttempt{Status: 410, Error: "gone", State: baton.DeliveryFailed}), "")
	if more := must(s.ClaimDeliveries(ctx, time.Minute, 10)).on(t); len(more) != 0 {
		t.Fatalf("claimed a finished or not yet due delivery: %+v", more)
	}

	byID := map[int64]baton.Delivery{}
	for _, d := range must(s.Deliveries(ctx, "", 0)).on(t) {
		byID[d.ID] = d
	}
	if d := byID[a.ID]; d.State != baton.DeliveryDelivered || d.Attempts != 1 || d.LastStatus != 200 || d.LastAttemptAt == nil || d.NextAttemptAt != nil {
		t.Fatalf("delivered = %+v", d)
	}
	if d := byID[b.ID]; d.State != baton.DeliveryFailed || d.Attempts != 2 || d.LastStatus != 410 || d.LastError != "gone" {
		t.Fatalf("failed = %+v", d)
	}
	if d := byID[c.ID]; d.State != baton.DeliveryPending || d.Attempts != 1 || d.NextAttemptAt == nil ||
		d.NextAttemptAt.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("pending = %+v, want its next attempt in an hour", d)
	}
	onlyA := must(s.Deliveries(ctx, "flag-a", 0)).on(t)
	if len(onlyA) != 2 || onlyA[0].EventID != "d-2.succeeded" || onlyA[1].EventID != "d-1.succeeded" {
		t.Fatalf("deliveries of flag-a, newest first = %+v", onlyA)
	}
	if one := must(s.Deliveries(ctx, "", 1)).on(t); len(one) != 1 {
		t.Fatalf("limit 1 = %d deliveries", len(one))
	}
}

// testDeliveryClaimConcurrent: workers claiming at once (several
// controllers on one store) never get the same delivery.
func testDeliveryClaimConcurrent(t *testing.T, s baton.Store) {
	ctx := context.Background()
	var ds []baton.Delivery
	for i := range 40 {
		ds = append(ds, baton.Delivery{HookID: "h", EventID: fmt.Sprintf("e-%d", i), EventType: "deployment.succeeded", Body: []byte("{}")})
	}
	must(s.AddDeliveries(ctx, ds)).on(t)
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				got, err := s.ClaimDeliveries(ctx, time.Hour, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, d := range got {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Fatalf("claimed %d distinct deliveries, want 40", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("delivery %d claimed %d times", id, n)
		}
	}
}
