package api

import (
	"net/http"
	"time"

	"github.com/batonhq/baton"
)

// TrafficReport answers GET /api/v1/apps/{app}/traffic: what the proxy
// saw of each revision over the window (the dashboard's traffic panel).
type TrafficReport struct {
	// RequestMetrics is false when baton serve runs with
	// --request-metrics=false: nothing is counted.
	RequestMetrics bool                    `json:"request_metrics"`
	Revisions      []baton.RevisionTraffic `json:"revisions"`
	// Series is each revision's traffic per sampling interval over the
	// window, oldest first (the dashboard's charts).
	Series []baton.TrafficPoint `json:"series"`
}

// maxTrafficWindow is as far back as the samples go (server wiring).
const maxTrafficWindow = 15 * time.Minute

func (s *Server) appTraffic(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if _, err := s.Store.App(r.Context(), app); err != nil {
		s.fail(w, r, err)
		return
	}
	window := 5 * time.Minute
	if v := r.URL.Query().Get("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxTrafficWindow {
			s.fail(w, r, baton.Errorf(baton.EINVALID, "window %q: want a duration up to 15m, like 5m", v))
			return
		}
		window = d
	}
	rep := TrafficReport{Revisions: []baton.RevisionTraffic{}, Series: []baton.TrafficPoint{}}
	if s.Traffic != nil {
		rep.RequestMetrics = true
		if ts := s.Traffic(app, window); ts != nil {
			rep.Revisions = ts
		}
		if s.TrafficSeries != nil {
			if ps := s.TrafficSeries(app, window); ps != nil {
				rep.Series = ps
			}
		}
	}
	writeJSON(w, http.StatusOK, rep)
}
