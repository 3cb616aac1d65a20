// Package webhooks tells HTTP receivers when deployments and operations
// end: a signed JSON event per finished operation, posted to every
// configured URL with retries, off the coordinator's path.
package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
// under the shared secret, as GitHub's X-Hub-Signature-256 does.
const SignatureHeader = "X-Baton-Signature-256"

// EventHeader names the event type; DeliveryHeader the event id, the same
// on every attempt, so receivers can drop repeats.
const (
	EventHeader    = "X-Baton-Event"
	DeliveryHeader = "X-Baton-Delivery"
)

// Event is the JSON body of one delivery.
type Event struct {
	// ID identifies the event across retries: the deployment id and its
	// final state.
	ID string `json:"id"`
	// Type is KIND.STATE, e.g. "deployment.succeeded", "swap.failed".
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	App  string    `json:"app"`
	Slot string    `json:"slot"`
	// Deployment is the finished deployment or operation.
	Deployment Deployment `json:"deployment"`
}

// Deployment is what an event says about a finished operation.
type Deployment struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	State      string     `json:"state"`
	Revision   string     `json:"revision,omitempty"`
	Error      string     `json:"error,omitempty"`
	Commit     string     `json:"commit,omitempty"`
	Author     string     `json:"author,omitempty"`
	Message    string     `json:"message,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// EventOf is the event for a finished deployment. A plain deploy is of
// type "deployment.STATE"; other operations use their kind ("swap.failed").
func EventOf(d baton.Deployment, now time.Time) Event {
	kind := string(d.Kind)
	if d.Kind == baton.KindDeploy || d.Kind == "" {
		kind = "deployment"
	}
	return Event{
		ID: d.ID + "." + string(d.State), Type: kind + "." + string(d.State), Time: now.UTC(),
		App: d.App, Slot: d.Slot,
		Deployment: Deployment{
			ID: d.ID, Kind: string(d.Kind), State: string(d.State), Revision: d.Revision, Error: d.Error,
			Commit: d.Commit, Author: d.Author, Message: d.Message,
			CreatedAt: d.CreatedAt, StartedAt: d.StartedAt, FinishedAt: d.FinishedAt,
		},
	}
}

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret, in
// constant time. Receivers written in Go can use it.
func Verify(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(sig), []byte(Sign(secret, body)))
}

// Config configures a Dispatcher. Zero values take defaults.
type Config struct {
	// URLs receive every event; each must be http or https.
	URLs []string
	// Secret signs every body (SignatureHeader); empty sends no signature.
	Secret []byte
	// Client posts the events; default a client with a 10 s timeout.
	Client *http.Client
	// QueueSize bounds the events waiting per URL (default 256); beyond
	// it new events are dropped and counted, never waited for.
	QueueSize int
	// MaxAttempts bounds the attempts per event and URL (default 8).
	MaxAttempts int
	// Backoff is the wait after the first failed attempt (default 1 s);
	// it doubles per attempt, with jitter, up to MaxBackoff (default 5 min).
	Backoff, MaxBackoff time.Duration
	Logger              *slog.Logger
}

// Dispatcher delivers events to the configured URLs, one goroutine per
// URL so a slow receiver delays nobody else. New builds it, Open starts
// the goroutines, Close stops them and waits.
type Dispatcher struct {
	cfg     Config
	log     *slog.Logger
	targets []*target

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	opened atomic.Bool
}

// target is one receiver URL with its queue.
type target struct {
	url   string
	queue chan delivery
	// dropped counts events refused because the queue was full, or
	// abandoned after MaxAttempts or at Close.
	dropped   atomic.Uint64
	delivered atomic.Uint64
}

type delivery struct {
	id, typ string
	body    []byte
}

// errClosed is the cause Close cancels with.
var errClosed = errors.New("webhooks: closed")

// New checks the configuration and builds a Dispatcher; it starts nothing.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger}
	for _, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("webhook URL %q: want an absolute http or https URL", raw)
		}
		d.targets = append(d.targets, &target{url: raw, queue: make(chan delivery, cfg.QueueSize)})
	}
	d.ctx, d.cancel = context.WithCancelCause(context.Background())
	return d, nil
}

// Open starts one delivery goroutine per URL.
func (d *Dispatcher) Open() {
	if !d.opened.CompareAndSwap(false, true) {
		return
	}
	for _, t := range d.targets {
		d.wg.Go(func() { d.run(t) })
	}
}

// Close stops delivering and waits for the goroutines. Events still
// queued or being retried are dropped (and logged).
func (d *Dispatcher) Close() error {
	d.cancel(errClosed)
	d.wg.Wait()
	for _, t := range d.targets {
		if n := len(t.queue); n > 0 {
			t.dropped.Add(uint64(n))
			d.log.Warn("webhooks: events not delivered at close", "url", t.url, "events", n)
		}
	}
	return nil
}

// Notify queues ev for every URL. It never blocks: when a URL's queue is
// full the event is dropped for it, logged and counted.
func (d *Dispatcher) Notify(ev Event) {
	if d == nil || len(d.targets) == 0 || d.ctx.Err() != nil {
		return
	}
	body, err := json.Marshal(ev)
	if err != nil { // cannot happen: strings and times
		d.log.Error("webhooks: encode event", "event", ev.ID, "err", err)
		return
	}
	dl := delivery{id: ev.ID, typ: ev.Type, body: body}
	for _, t := range d.targets {
		select {
		case t.queue <- dl:
		default:
			t.dropped.Add(1)
			d.log.Warn("webhooks: queue full; event dropped", "url", t.url, "event", ev.ID)
		}
	}
}

// NotifyFinished queues the event for a finished deployment; it is the
// coordinator's OnFinished hook.
func (d *Dispatcher) NotifyFinished(dep baton.Deployment) {
	d.Notify(EventOf(dep, time.Now()))
}

// Stats reports, per URL, the events delivered and dropped so far.
func (d *Dispatcher) Stats() map[string][2]uint64 {
	out := make(map[string][2]uint64, len(d.targets))
	for _, t := range d.targets {
		out[t.url] = [2]uint64{t.delivered.Load(), t.dropped.Load()}
	}
	return out
}

// run delivers t's events in order until Close.
func (d *Dispatcher) run(t *target) {
	for {
		select {
		case <-d.ctx.Done():
			return
		case dl := <-t.queue:
			d.deliver(t, dl)
		}
	}
}

// deliver posts dl to t until a 2xx answer, MaxAttempts, or Close.
func (d *Dispatcher) deliver(t *target, dl delivery) {
	wait := d.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := d.post(t.url, dl, attempt)
		if err == nil {
			t.delivered.Add(1)
			return
		}
		if attempt >= d.cfg.MaxAttempts {
			t.dropped.Add(1)
			d.log.Error("webhooks: delivery failed; giving up", "url", t.url, "event", dl.id, "attempts", attempt, "err", err)
			return
		}
		d.log.Warn("webhooks: delivery failed; retrying", "url", t.url, "event", dl.id, "attempt", attempt, "in", wait, "err", err)
		// Jitter within ±20 %, so receivers that come back are not hit by
		// every baton at once.
		jittered := wait - wait/5 + time.Duration(rand.Int64N(int64(wait/5)*2+1))
		timer := time.NewTimer(jittered)
		select {
		case <-d.ctx.Done():
			timer.Stop()
			t.dropped.Add(1)
			return
		case <-timer.C:
		}
		wait = min(2*wait, d.cfg.MaxBackoff)
	}
}

// post makes one attempt; a non-2xx answer is an error.
func (d *Dispatcher) post(u string, dl delivery, attempt int) error {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, u, bytes.NewReader(dl.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "baton-webhooks")
	req.Header.Set(EventHeader, dl.typ)
	req.Header.Set(DeliveryHeader, dl.id)
	req.Header.Set("X-Baton-Attempt", fmt.Sprint(attempt))
	if len(d.cfg.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(d.cfg.Secret, dl.body))
	}
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
