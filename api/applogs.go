package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// appLogs answers an app's instance output: GET
// /api/v1/apps/{app}/logs?slot=&revision=&since=&limit=. since is a
// duration back from now ("10m"; "0s" is now: only what comes from now
// on) or an RFC 3339 time (baton.ParseSince). The answer is a JSON
// array of baton.AppLogLine, oldest first; with Accept: text/event-stream
// or ?follow=1 it is a Server-Sent Events stream of "log" events (id = the
// line's cursor, data = the line as JSON) that follows the app's output,
// across deployments, until the client leaves; Last-Event-ID (or ?after=)
// resumes it.
func (s *Server) appLogs(w http.ResponseWriter, r *http.Request) {
	q, err := appLogQuery(r, time.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	follow := strings.Contains(r.Header.Get("Accept"), "text/event-stream") || r.URL.Query().Get("follow") == "1"
	if !follow {
		lines, err := s.Coord.AppLogs(r.Context(), q)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if lines == nil {
			lines = []baton.AppLogLine{}
		}
		writeJSON(w, http.StatusOK, lines)
		return
	}
	stream, err := newSSE(w)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer stream.stop()
	if v := resumeID(r); v != "" {
		q.After = v
	}
	started := false
	err = s.Coord.FollowAppLogs(r.Context(), q, func(lines []baton.AppLogLine) error {
		first := !started
		if first {
			started = true
			stream.start()
			stream.comment("following")
		}
		for _, l := range lines {
			stream.eventJSON(l.ID, "log", l)
		}
		if first || len(lines) > 0 {
			stream.flush()
		}
		select {
		case <-stream.idle():
			stream.keepAlive()
		default:
		}
		return r.Context().Err()
	})
	if err != nil && !started {
		s.fail(w, r, err)
	}
}

// appLogQuery reads the query of GET /api/v1/apps/{app}/logs.
func appLogQuery(r *http.Request, now time.Time) (baton.AppLogQuery, error) {
	v := r.URL.Query()
	q := baton.AppLogQuery{App: r.PathValue("app"), Slot: v.Get("slot"), Revision: v.Get("revision")}
	if since := v.Get("since"); since != "" {
		var err error
		if q.Since, err = baton.ParseSince(since, now); err != nil {
			return q, err
		}
	}
	var err error
	q.Limit, err = QueryLimit(r, 0, 100000)
	return q, err
}
