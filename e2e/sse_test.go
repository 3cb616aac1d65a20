package e2e

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

type sseEvent struct{ id, name, data string }

// readSSE reads a deployment's event stream until its "end" event.
func readSSE(t testing.TB, b *batonProc, id, lastEventID string) []sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+b.apiAddr+"/api/v1/deployments/"+id+"/log", nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var out []sseEvent
	var ev sseEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" {
				out = append(out, ev)
				if ev.name == "end" {
					return out
				}
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
	t.Fatalf("stream ended without an end event: %v", sc.Err())
	return nil
}

func logEvents(evs []sseEvent) []sseEvent {
	var out []sseEvent
	for _, e := range evs {
		if e.name == "log" {
			out = append(out, e)
		}
	}
	return out
}

// TestLogStream: a client connected before a deployment starts receives
// every phase in order and the final state; reconnecting with
// Last-Event-ID resumes without gaps or repeats.
func TestLogStream(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "sse"); err != nil {
		t.Fatal(err)
	}
	g := newGate(t)
	first := deploy(t, c, "sse", appDir(t, "v1", buildWaitsFor(g)), api.DeployOptions{})
	waitPhase(t, c, first.ID, baton.PhaseBuilding)
	second := deploy(t, c, "sse", appDir(t, "v2"), api.DeployOptions{})
	streamed := make(chan []sseEvent, 1)
	go func() { streamed <- readSSE(t, b, second.ID, "") }()
	// The stream is open while second is still queued; let the queue move.
	eventually(t, 10*time.Second, "stream connected", func() bool {
		d, _ := c.Deployment(context.Background(), second.ID)
		return d.State == baton.StateQueued
	})
	g.open(t)
	evs := <-streamed
	end := evs[len(evs)-1]
	if end.name != "end" || !strings.Contains(end.data, `"state":"succeeded"`) {
		t.Fatalf("last event = %+v", end)
	}
	var phases []string
	for _, e := range logEvents(evs) {
		if i := strings.Index(e.data, "phase "); i >= 0 {
			phases = append(phases, strings.Fields(e.data[i+6:])[0])
		}
	}
	want := []string{"extracting", "starting", "health-checking", "switching", "draining"}
	if strings.Join(phases, ",") != strings.Join(want, ",") {
		t.Fatalf("phases streamed %v, want %v", phases, want)
	}
	logs := logEvents(evs)
	cut := 3
	resumed := logEvents(readSSE(t, b, second.ID, logs[cut-1].id))
	if len(resumed) != len(logs)-cut {
		t.Fatalf("resumed %d lines, want %d", len(resumed), len(logs)-cut)
	}
	for i, e := range resumed {
		if e.id != logs[cut+i].id || e.data != logs[cut+i].data {
			t.Fatalf("resumed line %d = %+v, want %+v", i, e, logs[cut+i])
		}
	}
}
