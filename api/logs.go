package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

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
// (JSON of the finished deployment). Last-Event-ID (or ?after=) resumes
// after a line.
func (s *Server) streamLog(w http.ResponseWriter, r *http.Request, d baton.Deployment) {
	stream, err := newSSE(w)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer stream.stop()
	after := max(resumeSeq(r), 0)
	stream.start()
	ctx := r.Context()
	var lastState baton.State
	var lastPhase baton.Phase = "-"
	for {
		changed := s.Coord.Changes()
		lines, err := s.Store.Log(ctx, d.ID, after)
		if err != nil {
			return
		}
		for _, l := range lines {
			writeLogEvent(stream, l)
			after = l.ID
		}
		cur, err := s.Store.Deployment(ctx, d.ID)
		if err != nil {
			return
		}
		if cur.State != lastState || cur.Phase != lastPhase {
			lastState, lastPhase = cur.State, cur.Phase
			stream.eventJSON("", "deployment", cur)
		}
		if cur.State.Final() {
			// The coordinator appends a deployment's last line before it
			// records the final state (coordinator/worker.go), so the lines
			// appended since the read above are all there now.
			rest, _ := s.Store.Log(ctx, d.ID, after)
			for _, l := range rest {
				writeLogEvent(stream, l)
			}
			stream.eventJSON("", "end", cur)
			stream.flush()
			return
		}
		stream.flush()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-stream.idle():
			stream.keepAlive()
		}
	}
}

// writeLogEvent sends one log line as an SSE "log" event; a line with
// newlines inside is flattened so it stays one event.
func writeLogEvent(stream *sseStream, l baton.LogLine) {
	text := strings.ReplaceAll(strings.TrimRight(formatLogLine(l), "\n"), "\n", " ")
	stream.event(strconv.FormatInt(l.ID, 10), "log", []byte(text))
}
