package api

import (
	"net/http"

	"github.com/batonhq/baton"
)

func (s *Server) createSlot(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	sl, err := s.Coord.CreateSlot(r.Context(), r.PathValue("app"), body.Name)
	s.auditf(r, "slot.create", r.PathValue("app")+"/"+body.Name, "", err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/apps/"+sl.App+"/slots/"+sl.Name)
	writeJSON(w, http.StatusCreated, sl)
}

func (s *Server) listSlots(w http.ResponseWriter, r *http.Request) {
	a, err := s.Store.App(r.Context(), r.PathValue("app"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, a.Slots)
}

// slotOf returns the named slot of the request's app, ENOTFOUND if none.
func (s *Server) slotOf(r *http.Request) (baton.Slot, error) {
	a, err := s.Store.App(r.Context(), r.PathValue("app"))
	if err != nil {
		return baton.Slot{}, err
	}
	sl, ok := a.Slot(r.PathValue("slot"))
	if !ok {
		return sl, baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist; create it with `baton slots create %s %s`",
			r.PathValue("slot"), a.Name, a.Name, r.PathValue("slot"))
	}
	return sl, nil
}

func (s *Server) updateSlot(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AutoSwapTo *string `json:"auto_swap_to"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	sl, err := s.slotOf(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if body.AutoSwapTo != nil {
		target := *body.AutoSwapTo
		if target != "" {
			a, _ := s.Store.App(r.Context(), sl.App)
			if _, ok := a.Slot(target); !ok || target == sl.Name {
				s.fail(w, r, baton.Errorf(baton.EINVALID, "auto_swap_to %q must name another slot of %s", target, sl.App))
				return
			}
		}
		err := s.Store.SetAutoSwap(r.Context(), sl.App, sl.Name, target)
		s.auditf(r, "slot.auto-swap", sl.App+"/"+sl.Name, "auto_swap_to "+target, err)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		sl.AutoSwapTo = target
	}
	writeJSON(w, 200, sl)
}

func (s *Server) deleteSlot(w http.ResponseWriter, r *http.Request) {
	err := s.Coord.DeleteSlot(r.Context(), r.PathValue("app"), r.PathValue("slot"))
	s.auditf(r, "slot.delete", r.PathValue("app")+"/"+r.PathValue("slot"), "", err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listSettings(w http.ResponseWriter, r *http.Request) {
	sl, err := s.slotOf(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	settings, err := s.Store.Settings(r.Context(), sl.App, sl.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]baton.Setting, 0, len(settings))
	for _, st := range settings {
		out = append(out, st.Masked())
	}
	writeJSON(w, 200, out)
}

// changeSettings queues a settings change: 202 + Location of the operation
// that applies it (it restarts the slot's live revision as a new revision).
func (s *Server) changeSettings(w http.ResponseWriter, r *http.Request, ch baton.SettingsChange) {
	sl, err := s.slotOf(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	policy, err := baton.ParsePolicy(r.URL.Query().Get("on_conflict"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.Coord.SetSettings(r.Context(), baton.OpRequest{App: sl.App, Slot: sl.Name, Policy: policy, Author: r.URL.Query().Get("author")}, ch)
	keys := ""
	for _, st := range ch.Set {
		keys += st.Key + " "
	}
	for _, k := range ch.Unset {
		keys += "-" + k + " "
	}
	s.auditf(r, "settings", sl.App+"/"+sl.Name, keys, err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/deployments/"+d.ID)
	writeJSON(w, http.StatusAccepted, d)
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Settings []baton.Setting `json:"settings"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	s.changeSettings(w, r, baton.SettingsChange{Set: body.Settings})
}

func (s *Server) putSetting(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Value  string `json:"value"`
		Sticky bool   `json:"sticky"`
		Secret bool   `json:"secret"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	s.changeSettings(w, r, baton.SettingsChange{Set: []baton.Setting{{Key: r.PathValue("key"), Value: body.Value, Sticky: body.Sticky, Secret: body.Secret}}})
}

func (s *Server) deleteSetting(w http.ResponseWriter, r *http.Request) {
	s.changeSettings(w, r, baton.SettingsChange{Unset: []string{r.PathValue("key")}})
}
