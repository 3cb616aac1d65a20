package webhooks_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
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

// TestDeliveryRetriedAfterFailuresIsSigned: the receiver fails twice; the
// third attempt is delivered, every attempt carries the same event id and
// a valid signature, and the body describes the deployment.
func TestDeliveryRetriedAfterFailuresIsSigned(t *testing.T) {
	secret := []byte("s3cret")
	url, got := receiver(t, secret, 2)
	d, err := webhooks.New(webhooks.Config{URLs: []string{url}, Secret: secret, Backoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d.Open()
	t.Cleanup(func() { d.Close() })

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
	// The receiver reports before its answer reaches the dispatcher.
	for deadline := time.Now().Add(10 * time.Second); d.Stats()[url] != [2]uint64{1, 0}; {
		if time.Now().After(deadline) {
			t.Fatalf("delivered, dropped = %v, want [1 0]", d.Stats()[url])
		}
		time.Sleep(time.Millisecond)
	}
	d.Close()
	select {
	case r := <-got:
		t.Errorf("delivered again after success: %+v", r)
	default:
	}
}

// TestWrongSecretDoesNotVerify: a receiver with another secret rejects it.
func TestWrongSecretDoesNotVerify(t *testing.T) {
	url, got := receiver(t, []byte("other"), 0)
	d, err := webhooks.New(webhooks.Config{URLs: []string{url}, Secret: []byte("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	d.Open()
	t.Cleanup(func() { d.Close() })
	d.NotifyFinished(finished())
	if r := next(t, got); r.signed {
		t.Error("signature verified under the wrong secret")
	}
}

// TestNotifyNeverBlocksAndCloseEnds: with a receiver that hangs, Notify
// returns at once past the queue bound (drops are counted), and Close
// ends the delivery goroutine mid-request.
func TestNotifyNeverBlocksAndCloseEnds(t *testing.T) {
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
	d, err := webhooks.New(webhooks.Config{URLs: []string{s.URL}, QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	d.Open()
	d.NotifyFinished(finished())
	<-arrived // the goroutine is stuck in the receiver now
	start := time.Now()
	for range 10 {
		d.NotifyFinished(finished())
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Notify took %s with a hanging receiver", el)
	}
	d.Close() // returns only once the goroutine ended
	if st := d.Stats()[s.URL]; st[0] != 0 || st[1] < 8 {
		t.Errorf("delivered, dropped = %v, want 0 and ≥ 8", st)
	}
}

func TestNewRejectsNonHTTPURLs(t *testing.T) {
	for _, u := range []string{"ftp://example.com/x", "/relative", "http://", "file:///etc/passwd"} {
		if _, err := webhooks.New(webhooks.Config{URLs: []string{u}}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}
