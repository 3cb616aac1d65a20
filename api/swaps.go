package api

import (
	"context"
	"net/http"
	"time"

	"github.com/batonhq/baton"
)

func (s *Server) createSwap(w http.ResponseWriter, r *http.Request) {
	var body baton.SwapParams
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	policy, err := baton.ParsePolicy(r.URL.Query().Get("on_conflict"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.Coord.Swap(r.Context(), baton.OpRequest{App: r.PathValue("app"), Policy: policy, Author: r.URL.Query().Get("author")}, body)
	s.auditf(r, "swap", r.PathValue("app"), body.Source+"→"+body.Target, err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/swaps/"+d.ID)
	writeJSON(w, http.StatusAccepted, d)
}

// swapOf returns the swap operation of the request.
func (s *Server) swapOf(r *http.Request) (baton.Deployment, error) {
	d, err := s.Store.Deployment(r.Context(), r.PathValue("id"))
	if err == nil && d.Kind != baton.KindSwap {
		err = baton.Errorf(baton.ENOTFOUND, "%s is a %s, not a swap; see /api/v1/deployments/%s", d.ID, d.Kind, d.ID)
	}
	return d, err
}

func (s *Server) getSwap(w http.ResponseWriter, r *http.Request) {
	d, err := s.swapOf(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, d)
}

func (s *Server) completeSwap(w http.ResponseWriter, r *http.Request) {
	if _, err := s.swapOf(r); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Minute)
	defer cancel()
	d, err := s.Coord.CompleteSwap(ctx, r.PathValue("id"))
	s.auditf(r, "swap.complete", r.PathValue("id"), "", err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, d)
}

func (s *Server) cancelSwap(w http.ResponseWriter, r *http.Request) {
	if _, err := s.swapOf(r); err != nil {
		s.fail(w, r, err)
		return
	}
	s.cancel(w, r)
}
