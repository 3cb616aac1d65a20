package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/batonhq/baton"
)

// ScaleRequest is the body of POST /api/v1/apps/{app}/scale: how many
// instances each revision of the slot runs, and at most how many of them
// on one host.
type ScaleRequest struct {
	// Slot is the slot to scale; "" is production.
	Slot string `json:"slot,omitempty"`
	// Instances is how many instances each revision of the slot runs
	// (1 to baton.MaxScaleInstances).
	Instances int `json:"instances"`
	// MaxPerHost caps the instances of one revision on one host; 0 is
	// no cap.
	MaxPerHost int `json:"max_per_host,omitempty"`
}

// Check validates a scale request and fills in its slot.
func (sr *ScaleRequest) Check() error {
	if sr.Slot == "" {
		sr.Slot = baton.ProductionSlot
	}
	if sr.Instances < 1 {
		return baton.Errorf(baton.EINVALID, `instances is %d: give how many instances each revision of the slot runs, from 1 to %d, e.g. {"instances": 3}`,
			sr.Instances, baton.MaxScaleInstances)
	}
	return baton.Scale{Instances: sr.Instances, MaxPerHost: sr.MaxPerHost}.Validate()
}

// String is the scale in words, for the audit log and messages:
// "3 instances, at most 1 per host".
func (sr ScaleRequest) String() string {
	s := fmt.Sprintf("%d instances", sr.Instances)
	if sr.Instances == 1 {
		s = "1 instance"
	}
	if sr.MaxPerHost > 0 {
		s += fmt.Sprintf(", at most %d per host", sr.MaxPerHost)
	}
	return s
}

// scale queues a scale operation and answers 202 with its Location, as a
// rollback does: added instances start and pass their health check before
// they get traffic, which may take a while; clients follow it like a
// deployment.
func (s *Server) scale(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 {
		s.fail(w, r, baton.Errorf(baton.EINVALID, `a scale needs a JSON body: {"instances": 3}, optionally with "slot" (default production) and "max_per_host" (default 0, no cap)`))
		return
	}
	var body ScaleRequest
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := body.Check(); err != nil {
		s.fail(w, r, err)
		return
	}
	req := baton.OpRequest{Slot: body.Slot, Kind: baton.KindScale, Message: r.URL.Query().Get("message"),
		Params: baton.ScaleParams{Instances: body.Instances, MaxPerHost: body.MaxPerHost}}
	if err := fromQuery(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkSlot(r, req.App, req.Slot); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.Coord.SubmitOp(r.Context(), req)
	s.auditf(r, string(baton.KindScale), req.App+"/"+req.Slot, strings.TrimSpace(d.ID+" "+body.String()), err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/deployments/"+d.ID)
	writeJSON(w, http.StatusAccepted, d)
}

// checkSlot refuses at once an operation on a slot the app does not have,
// naming the slots it has.
func (s *Server) checkSlot(r *http.Request, app, slot string) error {
	a, err := s.Store.App(r.Context(), app)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(a.Slots))
	for _, sl := range a.Slots {
		if sl.Name == slot {
			return nil
		}
		names = append(names, sl.Name)
	}
	return baton.Errorf(baton.ENOTFOUND, "app %s has no slot %q; its slots are %s (create one with `baton slots create %s %s`)",
		app, slot, strings.Join(names, ", "), app, slot)
}
