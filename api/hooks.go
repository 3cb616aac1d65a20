package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/batonhq/baton"
)

// Hooks is what the API needs of the webhook dispatcher: the hooks of the
// store and of `baton serve --webhook` together, and a test event.
type Hooks interface {
	Hooks(ctx context.Context) ([]baton.Hook, error)
	Hook(ctx context.Context, id string) (baton.Hook, error)
	// IsStatic reports whether a hook comes from a flag (not removable).
	IsStatic(id string) bool
	// Ping queues a test event for the hook and returns its event id.
	Ping(ctx context.Context, h baton.Hook) (string, error)
}

// HookRequest is the body of POST /api/v1/hooks.
type HookRequest struct {
	URL string `json:"url"`
	// App limits the hook to one app; empty: every app.
	App string `json:"app,omitempty"`
	// Events are exact types or KIND.*; empty: every event.
	Events []string `json:"events,omitempty"`
	// Secret signs the bodies (X-Baton-Signature-256); never shown again.
	Secret string `json:"secret,omitempty"`
}

// PingResult answers POST /api/v1/hooks/{id}/test.
type PingResult struct {
	EventID string `json:"event_id"`
}

func (s *Server) hooksOrFail(w http.ResponseWriter, r *http.Request) bool {
	if s.Hooks == nil {
		s.fail(w, r, baton.Errorf(baton.EINTERNAL, "webhooks are not configured on this baton"))
		return false
	}
	return true
}

func (s *Server) createHook(w http.ResponseWriter, r *http.Request) {
	var body HookRequest
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	if body.App != "" {
		if _, err := s.Store.App(r.Context(), body.App); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	h := baton.Hook{ID: baton.NewID("h-"), URL: body.URL, App: body.App, Events: body.Events, Secret: body.Secret, CreatedBy: actor(r)}
	h, err := s.Store.CreateHook(r.Context(), h)
	s.auditf(r, "hook.add", h.ID, describeHook(h), err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/hooks/"+h.ID)
	writeJSON(w, http.StatusCreated, h)
}

// describeHook is a hook for the audit log (never its secret, nor the
// URL's query, which may carry a token).
func describeHook(h baton.Hook) string {
	u, _, _ := strings.Cut(h.URL, "?")
	out := u
	if h.App != "" {
		out += " app " + h.App
	}
	if len(h.Events) > 0 {
		out += " events " + strings.Join(h.Events, ",")
	}
	if h.Secret != "" {
		out += " signed"
	}
	return out
}

func (s *Server) listHooks(w http.ResponseWriter, r *http.Request) {
	if !s.hooksOrFail(w, r) {
		return
	}
	hs, err := s.Hooks.Hooks(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if hs == nil {
		hs = []baton.Hook{}
	}
	writeJSON(w, 200, hs)
}

func (s *Server) removeHook(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var err error
	if s.Hooks != nil && s.Hooks.IsStatic(id) {
		err = baton.Errorf(baton.ECONFLICT, "webhook %s comes from `baton serve --webhook`: remove the flag and restart baton", id)
	} else {
		err = s.Store.DeleteHook(r.Context(), id)
	}
	s.auditf(r, "hook.remove", id, "", err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) testHook(w http.ResponseWriter, r *http.Request) {
	if !s.hooksOrFail(w, r) {
		return
	}
	h, err := s.Hooks.Hook(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := s.Hooks.Ping(r.Context(), h)
	s.auditf(r, "hook.test", h.ID, id, err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, PingResult{EventID: id})
}

// listDeliveries answers the newest deliveries, of one hook (?hook=) or
// of all, at most ?limit= (default 100).
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	limit, err := QueryLimit(r, 100, 1000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	hook := r.PathValue("id")
	if hook != "" && s.Hooks != nil {
		if _, err := s.Hooks.Hook(r.Context(), hook); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	ds, err := s.Store.Deliveries(r.Context(), hook, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ds == nil {
		ds = []baton.Delivery{}
	}
	writeJSON(w, 200, ds)
}
