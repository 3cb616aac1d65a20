package baton

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// Hook is a webhook: an http(s) URL that gets a signed JSON event when
// something it asked for happens (a deployment ends, a swap ends, …).
type Hook struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// App limits the hook to one app; empty: every app.
	App string `json:"app,omitempty"`
	// Events are the event types it gets: exact ("deployment.failed") or
	// a kind's every type ("swap.*"); empty: every event.
	Events []string `json:"events,omitempty"`
	// Secret signs every body (HMAC-SHA256); never serialized.
	Secret string `json:"-"`
	// Signed says whether it has a secret: in JSON it is derived from
	// Secret (MarshalJSON), so a client, which never gets the secret,
	// reads it there. Nothing needs to set it.
	Signed    bool      `json:"signed"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	// Source is "api" for hooks in the store, "flag" for those `baton
	// serve --webhook` configures (they live as long as the flag).
	Source string `json:"source"`
}

// MarshalJSON writes the hook with "signed" derived from its secret. A
// hook without one keeps Signed as it came: a client's, decoded from JSON.
func (h Hook) MarshalJSON() ([]byte, error) {
	type plain Hook // without this method
	p := plain(h)
	p.Signed = h.Signed || h.Secret != ""
	return json.Marshal(p)
}

// HookEventKinds are the kinds of events a hook can ask for.
var HookEventKinds = []string{"deployment", "swap", "rollback", "activate", "deactivate", "restart", "settings", "stabilize", "traffic"}

// ValidateHook checks a hook's URL (absolute http or https) and event
// patterns.
func ValidateHook(h Hook) error {
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Errorf(EINVALID, "webhook URL %q: want an absolute http:// or https:// URL", h.URL)
	}
	if u.User != nil {
		return Errorf(EINVALID, "webhook URL %q carries credentials: sign with --secret instead", h.URL)
	}
	for _, e := range h.Events {
		kind, state, ok := strings.Cut(e, ".")
		if e == "*" {
			continue
		}
		if !ok || kind == "" || state == "" || strings.ContainsAny(e, " ,") {
			return Errorf(EINVALID, "event %q: want KIND.STATE (deployment.succeeded) or KIND.* (swap.*)", e)
		}
	}
	return nil
}

// Wants reports whether the hook gets an event of type typ about app.
func (h Hook) Wants(typ, app string) bool {
	return (h.App == "" || h.App == app) && h.WantsType(typ)
}

// WantsType reports whether the hook gets events of type typ, of
// whichever app; typ "KIND.*" asks whether it gets any type of the kind.
func (h Hook) WantsType(typ string) bool {
	if len(h.Events) == 0 {
		return true
	}
	kind, state, _ := strings.Cut(typ, ".")
	for _, e := range h.Events {
		if e == "*" || e == typ || e == kind+".*" || (state == "*" && strings.HasPrefix(e, kind+".")) {
			return true
		}
	}
	return false
}

// DeliveryState is where a webhook delivery stands.
type DeliveryState string

// Delivery states.
const (
	// DeliveryPending waits for its next attempt.
	DeliveryPending DeliveryState = "pending"
	// DeliveryDelivered got a 2xx answer.
	DeliveryDelivered DeliveryState = "delivered"
	// DeliveryFailed gave up after its last attempt.
	DeliveryFailed DeliveryState = "failed"
)

// Delivery is one event queued for one hook.
type Delivery struct {
	ID     int64  `json:"id"`
	HookID string `json:"hook"`
	// EventID is the same on every attempt (receivers drop repeats) and
	// unique per hook: queueing it twice keeps one delivery.
	EventID   string        `json:"event_id"`
	EventType string        `json:"event_type"`
	App       string        `json:"app,omitempty"`
	Body      []byte        `json:"-"`
	State     DeliveryState `json:"state"`
	Attempts  int           `json:"attempts"`
	// LastStatus is the last answer's HTTP status (0: no answer).
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at,omitempty"`
	// NextAttemptAt is when a pending delivery is tried next.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

// DeliveryAttempt is the outcome of one attempt to deliver.
type DeliveryAttempt struct {
	Status int
	Error  string
	// State is DeliveryDelivered, DeliveryFailed (no more attempts) or
	// DeliveryPending (retry after RetryIn).
	State   DeliveryState
	RetryIn time.Duration
}

// HookStore keeps webhooks and the queue of their deliveries, so that an
// event outlives a restart of baton until it is delivered.
type HookStore interface {
	// CreateHook stores a hook (ValidateHook: EINVALID); ECONFLICT if its
	// ID exists.
	CreateHook(ctx context.Context, h Hook) (Hook, error)
	// Hook returns a hook; ENOTFOUND if there is none with that ID.
	Hook(ctx context.Context, id string) (Hook, error)
	// Hooks lists the hooks, oldest first.
	Hooks(ctx context.Context) ([]Hook, error)
	// DeleteHook removes a hook and its deliveries; ENOTFOUND if none.
	DeleteHook(ctx context.Context, id string) error
	// AddDeliveries queues pending deliveries, due at once. A delivery of
	// an event already queued for the same hook is not queued again; it
	// returns how many were new.
	AddDeliveries(ctx context.Context, ds []Delivery) (int, error)
	// ClaimDeliveries returns up to limit pending deliveries that are due
	// by the store's clock, oldest first, and moves each one's next attempt
	// lease later: another worker does not take them meanwhile, and one
	// whose worker died is tried again once the lease has passed.
	ClaimDeliveries(ctx context.Context, lease time.Duration, limit int) ([]Delivery, error)
	// RecordDelivery counts an attempt of delivery id and records its
	// outcome; ENOTFOUND if the delivery is gone.
	RecordDelivery(ctx context.Context, id int64, a DeliveryAttempt) error
	// Deliveries lists the newest deliveries first, of one hook or (hook
	// "") of all, at most limit (0: 100).
	Deliveries(ctx context.Context, hook string, limit int) ([]Delivery, error)
}
