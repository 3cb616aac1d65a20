package webhooks

import (
	"context"
	"strconv"
	"time"

	"github.com/batonhq/baton"
)

// ConflictSource lists the status conflicts of every app now, by app
// (what `baton status` shows).
type ConflictSource func(ctx context.Context) (map[string][]baton.Conflict, error)

// conflictPoll is how often WatchConflicts looks, while a hook wants
// conflict events.
const conflictPoll = 5 * time.Second

// WatchConflicts sends a "conflict.CODE" event each time a conflict
// appears in an app's status, until Close. It looks at once, then every
// few seconds, and only while some hook asks for conflict events; what
// it finds at its first look is taken as known, not as new. The event id
// names the app, the code and when it was seen, so a conflict that goes
// and comes back is a new event.
func (d *Dispatcher) WatchConflicts(src ConflictSource, every time.Duration) {
	if every <= 0 {
		every = conflictPoll
	}
	d.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		var known map[string]bool // nil: no baseline yet
		for first := true; ; first = false {
			if !first {
				select {
				case <-d.ctx.Done():
					return
				case <-tick.C:
				}
			}
			if !d.wantConflicts() {
				known = nil
				continue
			}
			now, err := src(d.ctx)
			if err != nil {
				if d.ctx.Err() == nil {
					d.log.Warn("webhooks: read conflicts", "err", err)
				}
				continue
			}
			seen := map[string]bool{}
			at := time.Now().UTC()
			for app, cs := range now {
				for _, c := range cs {
					k := app + "\x00" + c.Code
					seen[k] = true
					if known != nil && !known[k] {
						d.Notify(conflictEvent(app, c, at))
					}
				}
			}
			known = seen
		}
	})
}

// wantConflicts reports whether some hook gets conflict events.
func (d *Dispatcher) wantConflicts() bool {
	hs, err := d.Hooks(d.ctx)
	if err != nil {
		return false
	}
	for _, h := range hs {
		if h.WantsType("conflict.*") {
			return true
		}
	}
	return false
}

// conflictEvent is the event of conflict c appearing in app's status.
func conflictEvent(app string, c baton.Conflict, at time.Time) Event {
	return Event{
		ID:   "conflict." + app + "." + c.Code + "." + strconv.FormatInt(at.Unix(), 10),
		Type: "conflict." + c.Code, Time: at, App: app,
		Conflict: &Conflict{Code: c.Code, Message: c.Message, Fix: c.Fix},
	}
}

// Conflict is what a conflict event says: the status conflict that
// appeared, with the command that fixes it.
type Conflict struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}
