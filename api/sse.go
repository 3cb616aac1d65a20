package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/batonhq/baton"
)

// sseKeepAlive is how long a stream stays silent before it sends a
// comment, so that proxies and browsers keep an idle stream open.
const sseKeepAlive = 15 * time.Second

// sseStream writes one Server-Sent Events response: the head, events,
// comments, and a keep-alive comment when it has been idle. The three
// streams (a deployment's log, an app's output, app events) write
// through it.
type sseStream struct {
	w     http.ResponseWriter
	f     http.Flusher
	quiet *time.Ticker
}

// newSSE prepares a stream on w, writing nothing yet (a handler may still
// answer a problem instead); it fails when w cannot flush. Stop it when
// done.
func newSSE(w http.ResponseWriter) (*sseStream, error) {
	f, ok := w.(http.Flusher)
	if !ok {
		return nil, baton.Errorf(baton.EINTERNAL, "streaming unsupported")
	}
	return &sseStream{w: w, f: f, quiet: time.NewTicker(sseKeepAlive)}, nil
}

// start writes the head of the stream.
func (s *sseStream) start() {
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	s.w.WriteHeader(http.StatusOK)
}

// event writes one event; id "" sends none. data must hold no newline.
func (s *sseStream) event(id, name string, data []byte) {
	if id != "" {
		fmt.Fprintf(s.w, "id: %s\n", id)
	}
	fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", name, data)
}

// eventJSON writes one event whose data is v as JSON.
func (s *sseStream) eventJSON(id, name string, v any) {
	b, _ := json.Marshal(v)
	s.event(id, name, b)
}

// retry tells the client how long to wait before it reconnects.
func (s *sseStream) retry(d time.Duration) {
	fmt.Fprintf(s.w, "retry: %d\n\n", d.Milliseconds())
}

// comment writes a comment line, which clients ignore.
func (s *sseStream) comment(text string) {
	fmt.Fprintf(s.w, ": %s\n\n", text)
}

// flush sends what was written; the keep-alive counts from here.
func (s *sseStream) flush() {
	s.f.Flush()
	s.quiet.Reset(sseKeepAlive)
}

// idle ticks when nothing was flushed for sseKeepAlive: then call
// keepAlive.
func (s *sseStream) idle() <-chan time.Time { return s.quiet.C }

// keepAlive sends a keep-alive comment.
func (s *sseStream) keepAlive() {
	s.comment("keepalive")
	s.flush()
}

// stop releases the stream's timer.
func (s *sseStream) stop() { s.quiet.Stop() }

// resumeID is where a stream request resumes: after the Last-Event-ID
// header (an EventSource sends it when it reconnects) or ?after=; "" for
// the start.
func resumeID(r *http.Request) string {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return v
	}
	return r.URL.Query().Get("after")
}

// resumeSeq is resumeID as a sequence number, -1 without a valid one.
func resumeSeq(r *http.Request) int64 {
	id, err := strconv.ParseInt(resumeID(r), 10, 64)
	if err != nil || id < 0 {
		return -1
	}
	return id
}
