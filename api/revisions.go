package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/batonhq/baton"
)

// RevisionView is a revision with its runtime state, as the API shows it.
type RevisionView struct {
	baton.Revision
	HealthyInstances int `json:"healthy_instances"`
	Instances        int `json:"instances"`
}

func (s *Server) revisionView(r baton.Revision) RevisionView {
	h, n := s.Coord.InstanceHealth(r.Name)
	return RevisionView{Revision: r, HealthyInstances: h, Instances: n}
}

func (s *Server) listRevisionViews(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if _, err := s.Store.App(r.Context(), app); err != nil {
		s.fail(w, r, err)
		return
	}
	revs, err := s.Store.Revisions(r.Context(), app)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]RevisionView, 0, len(revs))
	for _, rv := range revs {
		out = append(out, s.revisionView(rv))
	}
	writeJSON(w, 200, out)
}

func (s *Server) getRevision(w http.ResponseWriter, r *http.Request) {
	rv, err := s.Store.Revision(r.Context(), r.PathValue("rev"))
	if err == nil && rv.App != r.PathValue("app") {
		err = baton.Errorf(baton.ENOTFOUND, "revision %q does not belong to app %q", rv.Name, r.PathValue("app"))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, s.revisionView(rv))
}

// fromQuery fills in what every operation request takes from its URL:
// the app, the conflict policy (on_conflict) and, unless set, the author.
func fromQuery(r *http.Request, req *baton.OpRequest) error {
	q := r.URL.Query()
	policy, err := baton.ParsePolicy(q.Get("on_conflict"))
	if err != nil {
		return err
	}
	req.App, req.Policy = r.PathValue("app"), policy
	if req.Author == "" {
		req.Author = q.Get("author")
	}
	return nil
}

// runOp queues an operation and waits for its end: 200 with the operation
// when it succeeded, a 409 problem with its reason when it failed.
func (s *Server) runOp(w http.ResponseWriter, r *http.Request, req baton.OpRequest) {
	params, err := baton.EncodeParams(req.Kind, req.Params) // for the audit entry
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := fromQuery(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.Coord.SubmitOp(r.Context(), req)
	s.auditf(r, string(req.Kind), req.App+"/"+req.Slot, d.ID+" "+params, err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/deployments/"+d.ID)
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Minute)
	defer cancel()
	d, err = s.Coord.Wait(ctx, d.ID)
	if err != nil {
		writeJSON(w, http.StatusAccepted, d)
		return
	}
	if d.State != baton.StateSucceeded {
		s.fail(w, r, baton.Errorf(baton.ECONFLICT, "%s %s %s: %s", d.Kind, d.ID, d.State, d.Error))
		return
	}
	writeJSON(w, 200, d)
}

func (s *Server) revisionOp(kind baton.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		app, name := r.PathValue("app"), r.PathValue("rev")
		rv, err := s.Store.Revision(r.Context(), name)
		if err == nil && rv.App != app {
			err = baton.Errorf(baton.ENOTFOUND, "revision %q does not belong to app %q", name, app)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		slot := r.URL.Query().Get("slot")
		if slot == "" {
			slot = rv.Slot
		}
		s.runOp(w, r, baton.OpRequest{Slot: slot, Kind: kind, Params: baton.RevisionParams{Revision: name}})
	}
}

func (s *Server) setTraffic(w http.ResponseWriter, r *http.Request) {
	var body baton.TrafficParams
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := baton.ValidateWeights(body.Weights); err != nil {
		s.fail(w, r, err)
		return
	}
	s.runOp(w, r, baton.OpRequest{Slot: r.PathValue("slot"), Kind: baton.KindTraffic, Params: body})
}

func (s *Server) stabilize(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Revision string `json:"revision"`
		Slot     string `json:"slot"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &body); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.runOp(w, r, baton.OpRequest{Slot: body.Slot, Kind: baton.KindStabilize, Params: baton.RevisionParams{Revision: body.Revision}})
}

// rollback queues a rollback and answers 202 with its Location, as a
// deploy does: it starts instances and waits for their health, which may
// take a while; clients follow it like a deployment.
func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	var body baton.RollbackParams
	if r.ContentLength != 0 {
		if err := decode(r, &body); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	req := baton.OpRequest{Slot: r.PathValue("slot"), Message: r.URL.Query().Get("message")}
	if err := fromQuery(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.Coord.Rollback(r.Context(), req, body)
	s.auditf(r, string(baton.KindRollback), req.App+"/"+req.Slot, d.ID+" to "+body.To, err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/deployments/"+d.ID)
	writeJSON(w, http.StatusAccepted, d)
}

// orQueue is a policy option as its effect: "" is queue.
func orQueue(p baton.Policy) baton.Policy {
	if p == "" {
		return baton.PolicyQueue
	}
	return p
}

func (s *Server) updateApp(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RevisionMode *string `json:"revision_mode"`
		// baton's own options ("" sets the default back); see baton.AppOptions.
		KuduOnConflict *string `json:"kudu_on_conflict"`
		GitOnConflict  *string `json:"git_on_conflict"`
		// RegistryOnConflict is the policy of images pushed to /v2/.
		RegistryOnConflict *string `json:"registry_on_conflict"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	app := r.PathValue("app")
	if body.KuduOnConflict != nil || body.GitOnConflict != nil || body.RegistryOnConflict != nil {
		a, err := s.Store.App(r.Context(), app)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		o := a.Options
		if body.KuduOnConflict != nil {
			o.KuduOnConflict = baton.Policy(*body.KuduOnConflict)
		}
		if body.GitOnConflict != nil {
			o.GitOnConflict = baton.Policy(*body.GitOnConflict)
		}
		if body.RegistryOnConflict != nil {
			o.RegistryOnConflict = baton.Policy(*body.RegistryOnConflict)
		}
		err = o.Check()
		if err == nil {
			err = s.Store.SetAppOptions(r.Context(), app, o)
		}
		s.auditf(r, "app.options", app, fmt.Sprintf("kudu_on_conflict=%s git_on_conflict=%s registry_on_conflict=%s", orQueue(o.KuduOnConflict), orQueue(o.GitOnConflict), orQueue(o.RegistryOnConflict)), err)
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if body.RevisionMode != nil {
		mode, err := baton.ParseRevisionMode(*body.RevisionMode)
		var rs []baton.Revision
		if err == nil {
			rs, err = s.Store.Revisions(r.Context(), app)
		}
		if err == nil {
			err = baton.CheckRevisionMode(app, mode, baton.ActiveBySlot(rs))
		}
		if err == nil {
			err = s.Store.SetRevisionMode(r.Context(), app, mode)
		}
		s.auditf(r, "app.revision-mode", app, *body.RevisionMode, err)
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.getApp(w, r)
}
