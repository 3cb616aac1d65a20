package api

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
)

// AppEvent is one change of an app's state, as the event streams
// (GET /api/v1/apps/{app}/events and GET /api/v1/events) send it: the SSE
// event name is Type, the SSE id is ID.
//
// Types: "deployment" (Deployment queued, in a new phase or finished:
// Change says which), "routing" (a slot's active revisions or weights),
// "health" (an instance's health), "placement" (a slot's scale, or the
// hosts a revision's instances run on), "conflicts", "freeze", and "status",
// a full snapshot sent first and whenever a resume is older than what the
// server kept. Every event carries the app's Status after the change, so
// a client renders from the stream alone.
type AppEvent struct {
	ID   int64     `json:"id"`
	Type string    `json:"type"`
	App  string    `json:"app"`
	At   time.Time `json:"at"`
	// Change is "queued", "phase" or "finished" for a deployment event.
	Change     string            `json:"change,omitempty"`
	Deployment *baton.Deployment `json:"deployment,omitempty"`
	Status     baton.AppStatus   `json:"status"`
}

// eventRingSize is how many events the server keeps per app for resumes.
const eventRingSize = 256

// eventPoll is how often a stream looks at status without a change
// notification: instance health changes do not notify.
const eventPoll = 2 * time.Second

// eventHub turns status snapshots into events. It runs no goroutine: the
// streams' handlers call poll, which compares the app's status with the
// last one seen under the app's lock, so every stream sees the same events
// with the same ids.
type eventHub struct {
	mu   sync.Mutex
	seq  int64
	apps map[string]*appEvents
}

type appEvents struct {
	mu   sync.Mutex
	last *baton.AppStatus
	ring []AppEvent // oldest first
	// floor is the id of the newest event dropped from the ring (or the
	// hub's first id minus one): a resume at or after it is complete.
	floor int64
}

func newEventHub(now time.Time) *eventHub {
	// Ids start at the clock so that a client resuming across a restart
	// of baton holds an id below every id kept: it gets a snapshot.
	return &eventHub{seq: now.UnixMilli() * 1000, apps: map[string]*appEvents{}}
}

func (h *eventHub) app(name string) *appEvents {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := h.apps[name]
	if a == nil {
		a = &appEvents{floor: h.seq}
		h.apps[name] = a
	}
	return a
}

func (h *eventHub) next() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	return h.seq
}

// poll records the events between the last status seen of app and st.
func (h *eventHub) poll(app string, st baton.AppStatus, now time.Time) {
	a := h.app(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		a.last = &st
		return
	}
	for _, e := range diffStatus(*a.last, st) {
		e.ID, e.App, e.At, e.Status = h.next(), app, now, st
		a.ring = append(a.ring, e)
	}
	if over := len(a.ring) - eventRingSize; over > 0 {
		a.floor = a.ring[over-1].ID
		a.ring = slices.Delete(a.ring, 0, over)
	}
	a.last = &st
}

// since returns app's events after id, and false when events after id
// were dropped (or id is from before this baton started).
func (h *eventHub) since(app string, id int64) ([]AppEvent, bool) {
	a := h.app(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	if id < a.floor {
		return nil, false
	}
	i, _ := slices.BinarySearchFunc(a.ring, id+1, func(e AppEvent, id int64) int { return int(e.ID - id) })
	return slices.Clone(a.ring[i:]), true
}

// head is the newest id of the hub.
func (h *eventHub) head() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq
}

// diffStatus is the events that lead from prev to cur.
func diffStatus(prev, cur baton.AppStatus) []AppEvent {
	var out []AppEvent
	seen := map[string]baton.Deployment{}
	for _, d := range opsOf(prev) {
		seen[d.ID] = d
	}
	for _, d := range opsOf(cur) {
		old, ok := seen[d.ID]
		change := ""
		switch {
		case !ok && d.State.Final():
			change = "finished"
		case !ok:
			change = "queued"
		case d.State.Final() && !old.State.Final():
			change = "finished"
		case d.State != old.State || d.Phase != old.Phase:
			change = "phase"
		}
		if change != "" {
			out = append(out, AppEvent{Type: "deployment", Change: change, Deployment: &d})
		}
	}
	if !reflect.DeepEqual(routingOf(prev), routingOf(cur)) {
		out = append(out, AppEvent{Type: "routing"})
	}
	if !reflect.DeepEqual(healthOf(prev), healthOf(cur)) {
		out = append(out, AppEvent{Type: "health"})
	}
	if !reflect.DeepEqual(placementOf(prev), placementOf(cur)) {
		out = append(out, AppEvent{Type: "placement"})
	}
	if !reflect.DeepEqual(conflictCodes(prev), conflictCodes(cur)) {
		out = append(out, AppEvent{Type: "conflicts"})
	}
	if (prev.Frozen == nil) != (cur.Frozen == nil) || (prev.Frozen != nil && prev.Frozen.Reason != cur.Frozen.Reason) {
		out = append(out, AppEvent{Type: "freeze"})
	}
	return out
}

func opsOf(st baton.AppStatus) []baton.Deployment {
	var all []baton.Deployment
	if st.Running != nil {
		all = append(all, *st.Running)
	}
	all = append(all, st.Queue...)
	// The oldest of Recent fall off the list, which is not a change.
	all = append(all, st.Recent...)
	seen := map[string]bool{}
	out := all[:0]
	for _, d := range all {
		if !seen[d.ID] {
			seen[d.ID] = true
			out = append(out, d)
		}
	}
	return out
}

func routingOf(st baton.AppStatus) []string {
	var out []string
	for _, s := range st.Slots {
		for _, r := range s.Revisions {
			out = append(out, fmt.Sprintf("%s/%s=%d", s.Name, r.Name, r.Weight))
		}
		out = append(out, s.Name+">"+s.AutoSwapTo)
	}
	return out
}

func healthOf(st baton.AppStatus) []string {
	var out []string
	for _, s := range st.Slots {
		for _, r := range s.Revisions {
			out = append(out, fmt.Sprintf("%s/%s %d %s", s.Name, r.Name, r.Healthy, r.State))
			for _, in := range r.Instances {
				out = append(out, fmt.Sprintf("%s %t %t %d", in.Addr, in.Healthy, in.CrashLooping, in.Restarts))
			}
		}
	}
	return out
}

// placementOf is each slot's scale and where each revision's instances
// run, by host, as status shows them.
func placementOf(st baton.AppStatus) []string {
	var out []string
	for _, s := range st.Slots {
		if s.Scale != nil {
			out = append(out, fmt.Sprintf("%s scale %d/%d", s.Name, s.Scale.Instances, s.Scale.MaxPerHost))
		}
		for _, r := range s.Revisions {
			for _, p := range r.Hosts {
				out = append(out, fmt.Sprintf("%s/%s %s %d %s", s.Name, r.Name, p.Host, p.Instances, p.State))
			}
		}
	}
	return out
}

func conflictCodes(st baton.AppStatus) []string {
	var out []string
	for _, c := range st.Conflicts {
		out = append(out, c.Code+" "+c.Message)
	}
	return out
}

// appEvents streams one app's events (GET /api/v1/apps/{app}/events); as
// plain JSON without Accept: text/event-stream, the events kept after
// ?after= (or Last-Event-ID).
func (s *Server) appEvents(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if _, err := s.Store.App(r.Context(), app); err != nil {
		s.fail(w, r, err)
		return
	}
	s.streamEvents(w, r, func(context.Context) ([]string, error) { return []string{app}, nil })
}

// allEvents streams every app's events (GET /api/v1/events), for the
// overview.
func (s *Server) allEvents(w http.ResponseWriter, r *http.Request) {
	s.streamEvents(w, r, func(ctx context.Context) ([]string, error) {
		apps, err := s.Store.Apps(ctx)
		if err != nil {
			return nil, err
		}
		names := make([]string, len(apps))
		for i, a := range apps {
			names[i] = a.Name
		}
		return names, nil
	})
}

// streamEvents sends the events of the apps names lists: a "status"
// snapshot per app first (or after a resume the hub cannot serve), then
// each event as it happens.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, names func(context.Context) ([]string, error)) {
	ctx := r.Context()
	after := resumeSeq(r)
	// collect polls every app and returns what to send after the id.
	collect := func(after int64) ([]AppEvent, error) {
		apps, err := names(ctx)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		var out []AppEvent
		for _, app := range apps {
			st, err := s.Coord.Status(ctx, app)
			if baton.ErrorCode(err) == baton.ENOTFOUND {
				continue // deleted since it was listed
			}
			if err != nil {
				return nil, err
			}
			s.events.poll(app, st, now)
			evs, ok := s.events.since(app, after)
			if !ok || after < 0 {
				evs = []AppEvent{{ID: s.events.head(), Type: "status", App: app, At: now, Status: st}}
			}
			out = append(out, evs...)
		}
		slices.SortStableFunc(out, func(a, b AppEvent) int { return int(a.ID - b.ID) })
		return out, nil
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		evs, err := collect(after)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if evs == nil {
			evs = []AppEvent{}
		}
		writeJSON(w, http.StatusOK, evs)
		return
	}
	stream, err := newSSE(w)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer stream.stop()
	stream.start()
	stream.retry(time.Second)
	poll := time.NewTicker(eventPoll)
	defer poll.Stop()
	for {
		changed := s.Coord.Changes()
		evs, err := collect(after)
		if err != nil {
			return
		}
		for _, e := range evs {
			stream.eventJSON(strconv.FormatInt(e.ID, 10), e.Type, e)
			after = max(after, e.ID)
		}
		stream.flush()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-poll.C:
		case <-stream.idle():
			stream.keepAlive()
		}
	}
}
