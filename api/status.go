package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/batonhq/baton"
)

func (s *Server) appStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.Coord.Status(r.Context(), r.PathValue("app"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, st)
}

// allStatus answers the status of every app, or of a page of them (see
// appsPage).
func (s *Server) allStatus(w http.ResponseWriter, r *http.Request) {
	apps, err := s.appsPage(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := s.Coord.Statuses(r.Context(), apps)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeList(w, out)
}

func (s *Server) freeze(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason        string `json:"reason"`
		CancelRunning bool   `json:"cancel_running"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	if body.Reason == "" {
		s.fail(w, r, baton.Errorf(baton.EINVALID, "a freeze needs a reason (it is shown to everyone whose deployment is refused)"))
		return
	}
	a, err := s.Coord.Freeze(r.Context(), r.PathValue("app"), baton.Freeze{Reason: body.Reason, By: actor(r)}, body.CancelRunning)
	s.auditf(r, "freeze", r.PathValue("app"), body.Reason, err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, a)
}

func (s *Server) unfreeze(w http.ResponseWriter, r *http.Request) {
	a, err := s.Coord.Unfreeze(r.Context(), r.PathValue("app"))
	s.auditf(r, "unfreeze", r.PathValue("app"), "", err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, a)
}

// waitIdle blocks until the app has nothing running or queued, or the
// timeout (query, default 60s, at most 10m) passes; it answers
// {"idle": true|false}. Clients call it again to wait longer.
func (s *Server) waitIdle(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if _, err := s.Store.App(r.Context(), app); err != nil {
		s.fail(w, r, err)
		return
	}
	timeout := 60 * time.Second
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 10*time.Minute {
			s.fail(w, r, baton.Errorf(baton.EINVALID, "timeout %q must be a duration up to 10m, like 30s", v))
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	err := s.Coord.WaitIdle(ctx, app)
	if err != nil && ctx.Err() == nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, map[string]bool{"idle": err == nil})
}

func (s *Server) listResources(w http.ResponseWriter, r *http.Request) {
	rs, err := s.Coord.Resources(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, rs)
}

func (s *Server) revisionLog(w http.ResponseWriter, r *http.Request) {
	b, err := s.Coord.RevisionLog(r.PathValue("app"), r.PathValue("rev"), 64<<10)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(b)
}

// nextDeployment waits (timeout query, default 60s) for a deployment of the
// app accepted after ?after=SEQ: 200 with it, or 204 when none came.
func (s *Server) nextDeployment(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if _, err := s.Store.App(r.Context(), app); err != nil {
		s.fail(w, r, err)
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	d, ok, err := s.Coord.NextDeployment(ctx, app, after)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, 200, d)
}

func (s *Server) listControllers(w http.ResponseWriter, r *http.Request) {
	cs, err := s.Coord.Controllers(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if cs == nil {
		cs = []baton.Controller{}
	}
	writeJSON(w, 200, cs)
}

func (s *Server) listHosts(w http.ResponseWriter, r *http.Request) {
	hs, err := s.Coord.Hosts(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if hs == nil {
		hs = []baton.Host{}
	}
	writeJSON(w, 200, hs)
}
