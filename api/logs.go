package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// deploymentLog answers the log as plain text, or as a Server-Sent Events
// stream (Accept: text/event-stream) that follows it until the deployment ends.
func (s *Server) deploymentLog(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d, err := s.Store.Deployment(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		lines, err := s.Store.Log(r.Context(), id, 0)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, l := range lines {
			fmt.Fprint(w, formatLogLine(l))
		}
		return
	}
	s.streamLog(w, r, d)
}

// streamLog sends events: "log" (id = line id, data = timestamped text),
// "deployment" (JSON, on every state or phase change) and a final "end"
// (JSON of the finished deployment). Last-Event-ID resumes after a line.
func (s *Server) streamLog(w http.ResponseWriter, r *http.Request, d baton.Deployment) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.fail(w, r, baton.Errorf(baton.EINTERNAL, "streaming unsupported"))
		return
	}
	var after int64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		after, _ = strconv.ParseInt(v, 10, 64)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	var lastState baton.State
	var lastPhase baton.Phase = "-"
	for {
		changed := s.Coord.Changes()
		lines, err := s.Store.Log(ctx, d.ID, after)
		if err != nil {
			return
		}
		for _, l := range lines {
			writeLogEvent(w, l)
			after = l.ID
		}
		cur, err := s.Store.Deployment(ctx, d.ID)
		if err != nil {
			return
		}
		if cur.State != lastState || cur.Phase != lastPhase {
			lastState, lastPhase = cur.State, cur.Phase
			writeEvent(w, "deployment", cur)
		}
		if cur.State.Final() {
			// The coordinator appends a deployment's last line before it
			// records the final state (coordinator/worker.go), so the lines
			// appended since the read above are all there now.
			rest, _ := s.Store.Log(ctx, d.ID, after)
			for _, l := range rest {
				writeLogEvent(w, l)
			}
			writeEvent(w, "end", cur)
			flusher.Flush()
			return
		}
		flusher.Flush()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
		}
	}
}

func writeEvent(w http.ResponseWriter, event string, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
}

// writeLogEvent sends one log line as an SSE "log" event; a line with
// newlines inside is flattened so it stays one event.
func writeLogEvent(w http.ResponseWriter, l baton.LogLine) {
	fmt.Fprintf(w, "id: %d\nevent: log\ndata: %s\n\n", l.ID, strings.ReplaceAll(strings.TrimRight(formatLogLine(l), "\n"), "\n", " "))
}
