package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/server"
)

// nextEvent waits for an event of one of the types on ch.
func nextEvent(t *testing.T, ch <-chan api.AppEvent, types ...string) api.AppEvent {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-ch:
			for _, ty := range types {
				if ev.Type == ty {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("no %v event within 30s", types)
		}
	}
}

// watch follows app's events from after into a channel until the test ends.
func watch(t *testing.T, c *api.Client, app string, after int64) <-chan api.AppEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan api.AppEvent, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.WatchEvents(ctx, app, after, func(ev api.AppEvent) bool {
			select {
			case ch <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ch
}

// TestAppEventsResume: a stream starts with a status snapshot, sends a
// freeze as it happens, resumes after a disconnect with the changes it
// missed (not a snapshot), and answers a resume older than what the
// server kept with a snapshot.
func TestAppEventsResume(t *testing.T) {
	e := newAuthEnv(t, server.Config{})
	ctx := context.Background()
	admin, reader := e.client("admin"), e.client("read")

	ch := watch(t, reader, "hello", -1)
	first := nextEvent(t, ch, "status", "freeze")
	if first.Type != "status" || first.App != "hello" || first.Status.App != "hello" {
		t.Fatalf("first event = %s %+v, want a status snapshot of hello", first.Type, first)
	}
	if _, err := admin.Freeze(ctx, "hello", "incident 7", false); err != nil {
		t.Fatal(err)
	}
	fr := nextEvent(t, ch, "freeze")
	if fr.Status.Frozen == nil || fr.Status.Frozen.Reason != "incident 7" || fr.ID <= first.ID {
		t.Fatalf("freeze event = %+v", fr)
	}

	// Missed while away: the unfreeze, as an event after fr's id.
	if _, err := admin.Unfreeze(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	resumed := watch(t, reader, "hello", fr.ID)
	ev := nextEvent(t, resumed, "freeze", "status")
	if ev.Type != "freeze" || ev.Status.Frozen != nil || ev.ID <= fr.ID {
		t.Fatalf("resumed after %d: %s %+v, want the unfreeze", fr.ID, ev.Type, ev)
	}

	// An id from before this baton started: a snapshot.
	old := watch(t, reader, "hello", 1)
	if ev := nextEvent(t, old, "status", "freeze"); ev.Type != "status" || ev.Status.Frozen != nil {
		t.Fatalf("resume from 1: %s %+v, want a status snapshot", ev.Type, ev)
	}

	// The overview stream has every app.
	all := watch(t, reader, "", -1)
	apps := map[string]bool{}
	for len(apps) < 2 {
		apps[nextEvent(t, all, "status").App] = true
	}
	if !apps["hello"] || !apps["other"] {
		t.Fatalf("overview snapshot apps = %v", apps)
	}

	// Plain JSON without Accept: the events kept after ?after=.
	req, _ := http.NewRequest("GET", e.base+"/api/v1/apps/hello/events?after="+itoa(first.ID), nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["read"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var kept []api.AppEvent
	if err := json.NewDecoder(resp.Body).Decode(&kept); err != nil {
		t.Fatal(err)
	}
	freezes := 0
	for _, ev := range kept {
		if ev.Type == "freeze" {
			freezes++
		}
	}
	if freezes != 2 {
		t.Fatalf("events after %d: %d freeze events, want 2 (freeze, unfreeze): %+v", first.ID, freezes, kept)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
