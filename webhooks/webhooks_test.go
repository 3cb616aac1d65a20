package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/poll"
	"github.com/batonhq/baton/sqlite"
	"github.com/batonhq/baton/webhooks"
)

// received is one request the test receiver saw.
type received struct {
	event, delivery, attempt string
	signed                   bool
	body                     []byte
}

// receiver is a real HTTP receiver that verifies signatures, answers the
// first fail requests with 500, and reports every request on a channel.
func receiver(t *testing.T, secret []byte, fail int32) (string, <-chan received) {
	t.Helper()
	ch := make(chan received, 16)
	var n atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ch <- received{
			event: r.Header.Get(webhooks.EventHeader), delivery: r.Header.Get(webhooks.DeliveryHeader),
			attempt: r.Header.Get("X-Baton-Attempt"),
			signed:  webhooks.Verify(secret, body, r.Header.Get(webhooks.SignatureHeader)),
			body:    body,
		}
		if n.Add(1) <= fail {
			http.Error(w, "not now", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(s.Close)
	return s.URL, ch
}

func next(t *testing.T, ch <-chan received) received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
		return received{}
	}
}

func finished() baton.Deployment {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	return baton.Deployment{ID: "d_1", App: "hello", Slot: "production", Kind: baton.KindDeploy,
		State: baton.StateFailed, Revision: "hello--000002", Error: "health check failed", Commit: "abc123",
		CreatedAt: now, StartedAt: &now, FinishedAt: &now}
}

// openStore is a real SQLite store in the test's temp dir.
func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dispatcher opens a Dispatcher on store and closes it when the test ends.
func dispatcher(t *testing.T, cfg webhooks.Config) *webhooks.Dispatcher {
	t.Helper()
	d, err := webhooks.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Open()
	t.Cleanup(func() { d.Close() })
	return d
}

// returns fails the test unless fn returns within 30 s.
func returns(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// eventually polls cond until it holds or 10 s passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}

// TestDeliveryRetriedAfterFailuresIsSigned: the receiver fails twice; the
// third attempt is delivered, every attempt carries the same event id and
// a valid signature, the body describes the deployment, and the store
// records the delivery with its three attempts.
func TestDeliveryRetriedAfterFailuresIsSigned(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cret")
	url, got := receiver(t, secret, 2)
	store := openStore(t)
	d := dispatcher(t, webhooks.Config{Store: store, URLs: []string{url}, Secret: secret, Backoff: 5 * time.Millisecond, Poll: 5 * time.Millisecond})

	d.NotifyFinished(finished())
	for i, want := range []string{"1", "2", "3"} {
		r := next(t, got)
		if r.attempt != want || !r.signed || r.delivery != "d_1.failed" || r.event != "deployment.failed" {
			t.Fatalf("request %d: %+v", i, r)
		}
		if i < 2 {
			continue
		}
		var ev webhooks.Event
		if err := json.Unmarshal(r.body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.App != "hello" || ev.Slot != "production" || ev.Deployment.State != "failed" ||
			ev.Deployment.Revision != "hello--000002" || ev.Deployment.Error != "health check failed" ||
			ev.Deployment.FinishedAt == nil {
			t.Errorf("event %+v", ev)
		}
	}
	eventually(t, "the delivery is recorded as delivered", func() bool {
		ds, err := store.Deliveries(context.Background(), webhooks.StaticHookID(url), 0)
		return err == nil && len(ds) == 1 && ds[0].State == baton.DeliveryDelivered && ds[0].Attempts == 3 && ds[0].LastStatus == 200
	})
	d.Close()
	select {
	case r := <-got:
		t.Errorf("delivered again after success: %+v", r)
	default:
	}
}

// TestStoredHookGetsOnlyWhatItAsked: a hook in the store with an app and
// event filter and its own secret gets the events it asked for, signed with
// its secret, and nothing else.
func TestStoredHookGetsOnlyWhatItAsked(t *testing.T) {
	t.Parallel()
	url, got := receiver(t, []byte("own"), 0)
	store := openStore(t)
	if _, err := store.CreateHook(context.Background(), baton.Hook{ID: "h-1", URL: url, App: "hello", Events: []string{"deployment.succeeded", "swap.*"}, Secret: "own"}); err != nil {
		t.Fatal(err)
	}
	d := dispatcher(t, webhooks.Config{Store: store, Poll: 5 * time.Millisecond})
	other := finished()
	other.App = "other"
	other.State = baton.StateSucceeded
	d.NotifyFinished(other)      // another app
	d.NotifyFinished(finished()) // deployment.failed: not asked for
	ok := finished()
	ok.ID, ok.State = "d_2", baton.StateSucceeded
	d.NotifyFinished(ok)
	swap := finished()
	swap.ID, swap.Kind = "d_3", baton.KindSwap
	d.NotifyFinished(swap)
	for _, want := range []string{"d_2.succeeded", "d_3.failed"} {
		if r := next(t, got); r.delivery != want || !r.signed {
			t.Fatalf("got %+v, want %s signed", r, want)
		}
	}
	d.Close()
	select {
	case r := <-got:
		t.Errorf("delivered what the hook did not ask for: %+v", r)
	default:
	}
}

// TestQueuedDeliverySurvivesRestart: an event queued while the receiver
// refuses is delivered by the next Dispatcher on the same store, once.
func TestQueuedDeliverySurvivesRestart(t *testing.T) {
	t.Parallel()
	url, got := receiver(t, nil, 1)
	store := openStore(t)
	cfg := webhooks.Config{Store: store, URLs: []string{url}, Backoff: 50 * time.Millisecond, Poll: 5 * time.Millisecond}
	first, err := webhooks.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	first.Open()
	first.NotifyFinished(finished())
	if r := next(t, got); r.attempt != "1" {
		t.Fatalf("first attempt: %+v", r)
	}
	first.Close()
	dispatcher(t, cfg)
	if r := next(t, got); r.attempt != "2" || r.delivery != "d_1.failed" {
		t.Fatalf("after restart: %+v", r)
	}
}

// TestWrongSecretDoesNotVerify: a receiver with another secret rejects it.
func TestWrongSecretDoesNotVerify(t *testing.T) {
	t.Parallel()
	url, got := receiver(t, []byte("other"), 0)
	d := dispatcher(t, webhooks.Config{Store: openStore(t), URLs: []string{url}, Secret: []byte("s3cret")})
	d.NotifyFinished(finished())
	if r := next(t, got); r.signed {
		t.Error("signature verified under the wrong secret")
	}
}

// TestNotifyNeverBlocksAndCloseEnds: with a receiver that hangs, Notify
// returns at once past the queue bound (drops are counted), and Close
// ends the worker mid-request, leaving the delivery pending in the store.
func TestNotifyNeverBlocksAndCloseEnds(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	arrived := make(chan struct{}, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(hang) })
	store := openStore(t)
	d, err := webhooks.New(webhooks.Config{Store: store, URLs: []string{s.URL}, QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	d.Open()
	d.NotifyFinished(finished())
	<-arrived // the worker is stuck in the receiver now
	// Both return while the receiver hangs for good: a deadline here is a
	// bound on "never", not a timing.
	returns(t, "1000 Notify calls with a hanging receiver", func() {
		for range 1000 {
			d.NotifyFinished(finished())
		}
	})
	returns(t, "Close with a hanging receiver", func() { d.Close() }) // only once the goroutines ended
	if delivered, _, dropped := d.Stats(); delivered != 0 || dropped == 0 {
		t.Errorf("delivered, dropped = %d, %d, want 0 and some", delivered, dropped)
	}
	ds, err := store.Deliveries(context.Background(), "", 0)
	if err != nil || len(ds) != 1 || ds[0].State != baton.DeliveryPending {
		t.Fatalf("deliveries = %+v, %v; want the one event, pending", ds, err)
	}
}

func TestNewRejectsNonHTTPURLs(t *testing.T) {
	for _, u := range []string{"ftp://example.com/x", "/relative", "http://", "file:///etc/passwd"} {
		if _, err := webhooks.New(webhooks.Config{Store: openStore(t), URLs: []string{u}}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

// conflictSource is a ConflictSource whose answer the test sets; it
// counts the looks that got the answer set last.
type conflictSource struct {
	mu    sync.Mutex
	now   map[string][]baton.Conflict
	looks int
}

func (c *conflictSource) look(context.Context) (map[string][]baton.Conflict, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.looks++
	return c.now, nil
}

// set changes the answer and starts counting looks at it.
func (c *conflictSource) set(now map[string][]baton.Conflict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now, c.looks = now, 0
}

// handled waits until the watcher has handled n looks at the answer set
// last: it started look n+1, which it does only after handling look n.
func (c *conflictSource) handled(t *testing.T, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d looks at the conflicts set last", n+1), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.looks > n
	})
}

// TestConflictEventsWhenConflictsAppear: a conflict in an app's status
// that was not there at the previous look becomes one conflict.CODE event
// for a hook that asked for conflicts; what is there at the first look,
// or stays, sends nothing.
func TestConflictEventsWhenConflictsAppear(t *testing.T) {
	t.Parallel()
	url, got := receiver(t, nil, 0)
	store := openStore(t)
	ctx := context.Background()
	if _, err := store.CreateHook(ctx, baton.Hook{ID: "h-c", URL: url, Events: []string{"conflict.*"}}); err != nil {
		t.Fatal(err)
	}
	d := dispatcher(t, webhooks.Config{Store: store, Poll: 5 * time.Millisecond})
	src := &conflictSource{now: map[string][]baton.Conflict{"web": {{Code: baton.ConflictLongQueue, Message: "queue long"}}}}
	d.WatchConflicts(src.look, 5*time.Millisecond)
	src.handled(t, 2) // the baseline, and a look where it stays
	src.set(map[string][]baton.Conflict{"web": {{Code: baton.ConflictLongQueue}, {Code: baton.ConflictFrozen, Message: "frozen", Fix: "baton unfreeze web"}}})
	r := next(t, got)
	var ev webhooks.Event
	if err := json.Unmarshal(r.body, &ev); err != nil {
		t.Fatal(err)
	}
	if r.event != "conflict.app_frozen" || ev.App != "web" || ev.Conflict == nil || ev.Conflict.Fix != "baton unfreeze web" ||
		!strings.HasPrefix(r.delivery, "conflict.web.app_frozen.") {
		t.Fatalf("conflict event: %+v %+v", r, ev)
	}
	src.handled(t, 4) // the look that found it, and three where it stays
	d.Close()         // stores what the looks sent
	ds, err := store.Deliveries(ctx, "h-c", 0)
	if err != nil || len(ds) != 1 || ds[0].EventID != r.delivery {
		t.Errorf("deliveries = %+v, %v; want only %s", ds, err, r.delivery)
	}
	select {
	case r := <-got:
		t.Errorf("another event: %+v", r)
	default:
	}
}

// TestCatchUpQueuesWhatWasMissed: CatchUp queues the event of an ended
// operation that never reached the store, once however often it runs, and
// not for a hook added after the operation ended.
func TestCatchUpQueuesWhatWasMissed(t *testing.T) {
	t.Parallel()
	url, got := receiver(t, nil, 0)
	store := openStore(t)
	ctx := context.Background()
	h, err := store.CreateHook(ctx, baton.Hook{ID: "h-1", URL: url})
	if err != nil {
		t.Fatal(err)
	}
	d := dispatcher(t, webhooks.Config{Store: store, Poll: 5 * time.Millisecond})
	before := finished()
	ended := h.CreatedAt.Add(-time.Hour) // before the hook was added
	before.FinishedAt = &ended
	recent := finished()
	recent.ID = "d_2"
	at := time.Now().UTC()
	recent.FinishedAt = &at
	d.CatchUp([]baton.Deployment{before, recent})
	if r := next(t, got); r.delivery != "d_2.failed" {
		t.Fatalf("caught up %+v, want d_2.failed", r)
	}
	eventually(t, "one delivery, delivered", func() bool {
		ds, err := store.Deliveries(ctx, "h-1", 0)
		return err == nil && len(ds) == 1 && ds[0].State == baton.DeliveryDelivered
	})
	// Again, with a later operation after it: once that one is
	// delivered, the second run has handled d_2 too (in order).
	later := recent
	later.ID = "d_3"
	d.CatchUp([]baton.Deployment{recent, later})
	if r := next(t, got); r.delivery != "d_3.failed" {
		t.Fatalf("caught up %+v, want d_3.failed (d_2 once)", r)
	}
	d.Close()
	ds, err := store.Deliveries(ctx, "h-1", 0)
	if err != nil || len(ds) != 2 || ds[0].EventID != "d_3.failed" || ds[1].EventID != "d_2.failed" {
		t.Errorf("deliveries = %+v, %v; want d_3.failed and d_2.failed, once each", ds, err)
	}
	select {
	case r := <-got:
		t.Errorf("delivered again: %+v", r)
	default:
	}
}

// TestStaticHookListedSigned: a --webhook hook with a secret is listed as
// signed, as the API writes it.
func TestStaticHookListedSigned(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"s3cret", ""} {
		d := dispatcher(t, webhooks.Config{Store: openStore(t), URLs: []string{"https://ci.example/hook"}, Secret: []byte(secret)})
		hs, err := d.Hooks(context.Background())
		if err != nil || len(hs) != 1 {
			t.Fatalf("hooks = %+v, %v", hs, err)
		}
		b, _ := json.Marshal(hs[0])
		if want := `"signed":` + strconv.FormatBool(secret != ""); !strings.Contains(string(b), want) {
			t.Errorf("secret %q: %s, want %s", secret, b, want)
		}
	}
}
