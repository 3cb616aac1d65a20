package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"encoding/json"

	"github.com/batonhq/baton"
)

func (s *Server) listDomains(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if app != "" {
		if _, err := s.Store.App(r.Context(), app); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	ds, err := s.Store.Domains(r.Context(), app)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, ds)
}

func (s *Server) addDomain(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
		Slot string `json:"slot"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	app := r.PathValue("app")
	if body.Slot == "" {
		body.Slot = baton.ProductionSlot
	}
	d, err := s.Coord.AddDomain(r.Context(), app, body.Slot, body.Name)
	s.auditf(r, "domain.add", app+"/"+body.Slot, body.Name, err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/apps/"+url.PathEscape(app)+"/domains/"+url.PathEscape(d.Name))
	writeJSON(w, http.StatusCreated, d)
}

func (s *Server) removeDomain(w http.ResponseWriter, r *http.Request) {
	app, name := r.PathValue("app"), r.PathValue("domain")
	err := s.Coord.RemoveDomain(r.Context(), app, name)
	s.auditf(r, "domain.remove", app, name, err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// AddDomain claims name for a slot of app ("" for production).
func (c *Client) AddDomain(ctx context.Context, app, slot, name string) (baton.Domain, error) {
	var d baton.Domain
	b, _ := json.Marshal(map[string]string{"name": name, "slot": slot})
	_, err := c.do(ctx, "POST", "/api/v1/apps/"+url.PathEscape(app)+"/domains", strings.NewReader(string(b)), nil, &d)
	return d, err
}

// Domains lists the custom domains of app ("" for every app).
func (c *Client) Domains(ctx context.Context, app string) ([]baton.Domain, error) {
	var out []baton.Domain
	path := "/api/v1/domains"
	if app != "" {
		path = "/api/v1/apps/" + url.PathEscape(app) + "/domains"
	}
	_, err := c.do(ctx, "GET", path, nil, nil, &out)
	return out, err
}

// RemoveDomain releases a custom domain of app.
func (c *Client) RemoveDomain(ctx context.Context, app, name string) error {
	_, err := c.do(ctx, "DELETE", "/api/v1/apps/"+url.PathEscape(app)+"/domains/"+url.PathEscape(name), nil, nil, nil)
	return err
}
