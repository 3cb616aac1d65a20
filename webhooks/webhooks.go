// Package webhooks tells HTTP receivers when deployments and operations
// end: a signed JSON event per finished operation, queued in the store for
// every hook that asked for it and posted by a worker with back-off, off
// the coordinator's path. Queued events survive a restart of baton;
// delivery is at least once, with the same event id on every attempt.
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
	"slices"
	"strconv"
	"strings"
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
	// Type is KIND.STATE, e.g. "deployment.succeeded", "swap.failed";
	// "conflict.CODE" when a status conflict appears; "ping" from
	// `baton hooks test`.
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	App  string    `json:"app"`
	Slot string    `json:"slot"`
	// Deployment is the finished deployment or operation (zero in
	// conflict and ping events).
	Deployment Deployment `json:"deployment,omitzero"`
	// Conflict is the status conflict that appeared (conflict.* events).
	Conflict *Conflict `json:"conflict,omitempty"`
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

// PingType is the type of the event `baton hooks test` sends.
const PingType = "ping"

// Config configures a Dispatcher. Zero values take defaults.
type Config struct {
	// Store keeps the hooks and queues the deliveries.
	Store baton.HookStore
	// URLs are hooks configured at start (baton serve --webhook): every
	// event goes to them, signed with Secret. They are not in the store;
	// their deliveries are.
	URLs   []string
	Secret []byte
	// Client posts the events; default a client with a 10 s timeout.
	Client *http.Client
	// QueueSize bounds the events waiting to be written to the store
	// (default 256); beyond it new events are dropped and counted, never
	// waited for.
	QueueSize int
	// MaxAttempts bounds the attempts per delivery (default 8).
	MaxAttempts int
	// Backoff is the wait after the first failed attempt (default 1 s);
	// it doubles per attempt, with jitter, up to MaxBackoff (default 5 min).
	Backoff, MaxBackoff time.Duration
	// Poll is how often the worker looks for due deliveries when nothing
	// woke it (default 1 s).
	Poll   time.Duration
	Logger *slog.Logger
}

// Dispatcher queues events in the store and delivers them. New builds it,
// Open starts its goroutines, Close stops them and waits.
type Dispatcher struct {
	cfg    Config
	log    *slog.Logger
	static []baton.Hook
	// events waits to be written to the store, off the caller's path.
	events chan Event
	wake   chan struct{}

	ctx    context.Context
	cancel context.CancelCauseFunc
	// stopRecording ends the recorder once it has stored what is queued.
	stopRecording chan struct{}
	closing       sync.Once
	// recording runs the recorder; wg the worker.
	recording, wg sync.WaitGroup
	opened        atomic.Bool

	dropped, delivered, failed atomic.Uint64
}

// errClosed is the cause Close cancels with.
var errClosed = errors.New("webhooks: closed")

// StaticHookID is the ID of the hook that `--webhook url` configures: the
// same across restarts, so its queued deliveries find it again.
func StaticHookID(url string) string {
	sum := sha256.Sum256([]byte(url))
	return staticPrefix + hex.EncodeToString(sum[:6])
}

// staticPrefix starts the IDs of hooks of --webhook.
const staticPrefix = "flag-"

// staticOrphanAge is how long a delivery to a --webhook this controller
// does not have waits for a controller that has it (controllers sharing a
// store may be started with different flags) before it fails.
const staticOrphanAge = 24 * time.Hour

// New checks the configuration and builds a Dispatcher; it starts nothing.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil {
		return nil, errors.New("webhooks: no store")
	}
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
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, events: make(chan Event, cfg.QueueSize), wake: make(chan struct{}, 1),
		stopRecording: make(chan struct{})}
	for _, raw := range cfg.URLs {
		h := baton.Hook{ID: StaticHookID(raw), URL: raw, Secret: string(cfg.Secret), Source: "flag"}
		if err := baton.ValidateHook(h); err != nil {
			return nil, fmt.Errorf("--webhook %q: want an absolute http or https URL", raw)
		}
		d.static = append(d.static, h)
	}
	d.ctx, d.cancel = context.WithCancelCause(context.Background())
	return d, nil
}

// Open starts the recorder and the delivery worker.
func (d *Dispatcher) Open() {
	if !d.opened.CompareAndSwap(false, true) {
		return
	}
	d.recording.Go(d.record)
	d.wg.Go(d.work)
}

// Close stores the events still waiting (for up to 5 s), stops delivering
// and waits for the goroutines. Deliveries not yet made stay queued in
// the store for the next start.
func (d *Dispatcher) Close() error {
	if d.opened.Load() {
		d.closing.Do(func() { close(d.stopRecording) })
		done := make(chan struct{})
		go func() { d.recording.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
	d.cancel(errClosed)
	d.recording.Wait()
	d.wg.Wait()
	if n := len(d.events); n > 0 {
		d.dropped.Add(uint64(n))
		d.log.Warn("webhooks: events not queued at close", "events", n)
	}
	return nil
}

// Hooks lists the hooks: those of the flags first, then the store's.
func (d *Dispatcher) Hooks(ctx context.Context) ([]baton.Hook, error) {
	stored, err := d.cfg.Store.Hooks(ctx)
	return append(slices.Clone(d.static), stored...), err
}

// Hook returns one hook, of the flags or of the store.
func (d *Dispatcher) Hook(ctx context.Context, id string) (baton.Hook, error) {
	for _, h := range d.static {
		if h.ID == id {
			return h, nil
		}
	}
	return d.cfg.Store.Hook(ctx, id)
}

// IsStatic reports whether id is a hook of the flags (not removable).
func (d *Dispatcher) IsStatic(id string) bool {
	for _, h := range d.static {
		if h.ID == id {
			return true
		}
	}
	return false
}

// Notify queues ev for the hooks that want it. It never blocks: the store
// write happens on the recorder's goroutine; when its queue is full the
// event is dropped, logged and counted.
func (d *Dispatcher) Notify(ev Event) {
	if d == nil || d.ctx.Err() != nil {
		return
	}
	select {
	case d.events <- ev:
	default:
		d.dropped.Add(1)
		d.log.Warn("webhooks: queue full; event dropped", "event", ev.ID)
	}
}

// NotifyFinished queues the event for a finished deployment; it is the
// coordinator's OnFinished hook.
func (d *Dispatcher) NotifyFinished(dep baton.Deployment) {
	d.Notify(EventOf(dep, finishedAt(dep)))
}

// finishedAt is when dep ended: its event's time.
func finishedAt(dep baton.Deployment) time.Time {
	if dep.FinishedAt != nil {
		return *dep.FinishedAt
	}
	return time.Now()
}

// CatchUp queues, in the background, the events of operations that ended
// recently, as NotifyFinished would have: an event that had not reached
// the store when baton stopped, or an operation that recovery ended at
// start, is queued now; one already queued is not queued twice (its id is
// the same), and a hook gets no event from before it was added.
func (d *Dispatcher) CatchUp(deps []baton.Deployment) {
	d.wg.Go(func() {
		for _, dep := range deps {
			if d.ctx.Err() != nil {
				return
			}
			if dep.State.Final() {
				d.store(EventOf(dep, finishedAt(dep)), true)
			}
		}
	})
}

// Ping queues a ping event for one hook at once (in the caller's
// transaction, not through the recorder) and returns its delivery's event id.
func (d *Dispatcher) Ping(ctx context.Context, h baton.Hook) (string, error) {
	ev := Event{ID: baton.NewID("ping-"), Type: PingType, Time: time.Now().UTC(), App: h.App}
	body, _ := json.Marshal(ev)
	if _, err := d.cfg.Store.AddDeliveries(ctx, []baton.Delivery{{HookID: h.ID, EventID: ev.ID, EventType: ev.Type, App: h.App, Body: body}}); err != nil {
		return "", err
	}
	d.poke()
	return ev.ID, nil
}

// Stats reports the deliveries made and given up since start, and the
// events dropped before reaching the store.
func (d *Dispatcher) Stats() (delivered, failed, dropped uint64) {
	return d.delivered.Load(), d.failed.Load(), d.dropped.Load()
}

func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// record writes queued events to the store until Close, then what is
// left in the queue.
func (d *Dispatcher) record() {
	for {
		select {
		case ev := <-d.events:
			d.store(ev, false)
		case <-d.stopRecording:
			for {
				select {
				case ev := <-d.events:
					d.store(ev, false)
				default:
					return
				}
			}
		}
	}
}

// store queues one delivery of ev per hook that wants it; a caughtUp
// event (CatchUp) not for hooks added after it happened.
func (d *Dispatcher) store(ev Event, caughtUp bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), 10*time.Second)
	defer cancel()
	hooks, err := d.Hooks(ctx)
	if err != nil {
		d.dropped.Add(1)
		d.log.Error("webhooks: list hooks; event dropped", "event", ev.ID, "err", err)
		return
	}
	body, err := json.Marshal(ev)
	if err != nil { // cannot happen: strings and times
		d.log.Error("webhooks: encode event", "event", ev.ID, "err", err)
		return
	}
	var ds []baton.Delivery
	for _, h := range hooks {
		if h.Wants(ev.Type, ev.App) && !(caughtUp && ev.Time.Before(h.CreatedAt)) {
			ds = append(ds, baton.Delivery{HookID: h.ID, EventID: ev.ID, EventType: ev.Type, App: ev.App, Body: body})
		}
	}
	if len(ds) == 0 {
		return
	}
	if _, err := d.cfg.Store.AddDeliveries(ctx, ds); err != nil {
		d.dropped.Add(1)
		d.log.Error("webhooks: queue deliveries; event dropped", "event", ev.ID, "err", err)
		return
	}
	d.poke()
}

// claimBatch is how many due deliveries the worker takes at once; those
// of different hooks are posted concurrently.
const claimBatch = 16

// work claims due deliveries and posts them until Close.
func (d *Dispatcher) work() {
	// A claim outlives the longest attempt, so a delivery is not taken
	// twice; if baton dies mid-attempt it is due again once this passes.
	lease := d.cfg.Client.Timeout + 10*time.Second
	if d.cfg.Client.Timeout <= 0 {
		lease = 2 * time.Minute
	}
	tick := time.NewTicker(d.cfg.Poll)
	defer tick.Stop()
	for {
		n := 0
		ds, err := d.cfg.Store.ClaimDeliveries(d.ctx, lease, claimBatch)
		if err != nil && d.ctx.Err() == nil {
			d.log.Warn("webhooks: claim deliveries", "err", err)
		}
		if len(ds) > 0 {
			n = len(ds)
			// One goroutine per hook: its events go out in order, and a
			// slow receiver delays only its own.
			byHook := map[string][]baton.Delivery{}
			for _, dl := range ds {
				byHook[dl.HookID] = append(byHook[dl.HookID], dl)
			}
			var wg sync.WaitGroup
			for _, list := range byHook {
				wg.Go(func() {
					for _, dl := range list {
						d.attempt(dl)
					}
				})
			}
			wg.Wait()
		}
		if n == claimBatch {
			continue
		}
		select {
		case <-d.ctx.Done():
			return
		case <-d.wake:
		case <-tick.C:
		}
	}
}

// attempt posts one delivery and records the outcome.
func (d *Dispatcher) attempt(dl baton.Delivery) {
	rec := func(a baton.DeliveryAttempt) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), 10*time.Second)
		defer cancel()
		if err := d.cfg.Store.RecordDelivery(ctx, dl.ID, a); err != nil && baton.ErrorCode(err) != baton.ENOTFOUND {
			d.log.Warn("webhooks: record delivery", "event", dl.EventID, "err", err)
		}
	}
	h, err := d.Hook(d.ctx, dl.HookID)
	if baton.ErrorCode(err) == baton.ENOTFOUND {
		if strings.HasPrefix(dl.HookID, staticPrefix) && time.Since(dl.CreatedAt) < staticOrphanAge {
			// Another controller on the store may have this --webhook:
			// leave the delivery to it for a while.
			rec(baton.DeliveryAttempt{Error: "no --webhook of this controller", State: baton.DeliveryPending, RetryIn: time.Minute})
			return
		}
		rec(baton.DeliveryAttempt{Error: "hook removed", State: baton.DeliveryFailed})
		return
	}
	if err != nil {
		rec(baton.DeliveryAttempt{Error: err.Error(), State: baton.DeliveryPending, RetryIn: d.cfg.Backoff})
		return
	}
	attempt := dl.Attempts + 1
	status, err := d.post(h, dl, attempt)
	switch {
	case err == nil:
		d.delivered.Add(1)
		rec(baton.DeliveryAttempt{Status: status, State: baton.DeliveryDelivered})
	case d.ctx.Err() != nil:
		// Cut off by Close: due again at the next start.
		rec(baton.DeliveryAttempt{Status: status, Error: "interrupted: baton stopped", State: baton.DeliveryPending})
	case attempt >= d.cfg.MaxAttempts:
		d.failed.Add(1)
		d.log.Error("webhooks: delivery failed; giving up", "url", h.URL, "event", dl.EventID, "attempts", attempt, "err", err)
		rec(baton.DeliveryAttempt{Status: status, Error: err.Error(), State: baton.DeliveryFailed})
	default:
		wait := d.backoff(attempt)
		d.log.Warn("webhooks: delivery failed; retrying", "url", h.URL, "event", dl.EventID, "attempt", attempt, "in", wait, "err", err)
		rec(baton.DeliveryAttempt{Status: status, Error: err.Error(), State: baton.DeliveryPending, RetryIn: wait})
	}
}

// backoff is the wait after the attempt-th failure: Backoff doubled per
// attempt up to MaxBackoff, with jitter within ±20 %, so receivers that
// come back are not hit by every baton at once.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	wait := d.cfg.Backoff
	for i := 1; i < attempt && wait < d.cfg.MaxBackoff; i++ {
		wait *= 2
	}
	wait = min(wait, d.cfg.MaxBackoff)
	return wait - wait/5 + time.Duration(rand.Int64N(int64(wait/5)*2+1))
}

// post makes one attempt; a non-2xx answer is an error.
func (d *Dispatcher) post(h baton.Hook, dl baton.Delivery, attempt int) (int, error) {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, h.URL, bytes.NewReader(dl.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "baton-webhooks")
	req.Header.Set(EventHeader, dl.EventType)
	req.Header.Set(DeliveryHeader, dl.EventID)
	req.Header.Set("X-Baton-Attempt", strconv.Itoa(attempt))
	if h.Secret != "" {
		req.Header.Set(SignatureHeader, Sign([]byte(h.Secret), dl.Body))
	}
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}
