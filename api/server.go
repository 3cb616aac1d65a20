package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/coordinator"
)

// Server is the HTTP API in front of a coordinator.
type Server struct {
	Coord  *coordinator.Coordinator
	Store  baton.Store
	Logger *slog.Logger
	// MaxUpload bounds artifact uploads (bytes); default 1 GiB.
	MaxUpload int64
	// Ready reports extra readiness (e.g. the proxy is listening).
	Ready func() error
	// Mounts are more handlers on the same listener, by ServeMux pattern
	// (the git endpoint, the Kudu-compatible API).
	Mounts map[string]http.Handler
}

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 1 << 20

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	if s.MaxUpload == 0 {
		s.MaxUpload = 1 << 30
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /readyz", s.ready)
	mux.HandleFunc("POST /api/v1/apps", s.createApp)
	mux.HandleFunc("GET /api/v1/apps", s.listApps)
	mux.HandleFunc("GET /api/v1/apps/{app}", s.getApp)
	mux.HandleFunc("DELETE /api/v1/apps/{app}", s.deleteApp)
	mux.HandleFunc("POST /api/v1/apps/{app}/slots/{slot}/deployments", s.deploy)
	mux.HandleFunc("POST /api/v1/apps/{app}/deployments", s.deploy)
	mux.HandleFunc("GET /api/v1/apps/{app}/deployments", s.listDeployments)
	mux.HandleFunc("PATCH /api/v1/apps/{app}", s.updateApp)
	mux.HandleFunc("GET /api/v1/apps/{app}/revisions", s.listRevisionViews)
	mux.HandleFunc("GET /api/v1/apps/{app}/revisions/{rev}", s.getRevision)
	mux.HandleFunc("POST /api/v1/apps/{app}/revisions/{rev}/activate", s.revisionOp(baton.KindActivate))
	mux.HandleFunc("POST /api/v1/apps/{app}/revisions/{rev}/deactivate", s.revisionOp(baton.KindDeactivate))
	mux.HandleFunc("POST /api/v1/apps/{app}/revisions/{rev}/restart", s.revisionOp(baton.KindRestart))
	mux.HandleFunc("PUT /api/v1/apps/{app}/slots/{slot}/traffic", s.setTraffic)
	mux.HandleFunc("POST /api/v1/apps/{app}/stabilize", s.stabilize)
	mux.HandleFunc("GET /api/v1/status", s.allStatus)
	mux.HandleFunc("GET /api/v1/apps/{app}/status", s.appStatus)
	mux.HandleFunc("GET /api/v1/apps/{app}/wait", s.waitIdle)
	mux.HandleFunc("GET /api/v1/apps/{app}/deployments/next", s.nextDeployment)
	mux.HandleFunc("GET /api/v1/apps/{app}/revisions/{rev}/log", s.revisionLog)
	mux.HandleFunc("POST /api/v1/apps/{app}/freeze", s.freeze)
	mux.HandleFunc("POST /api/v1/apps/{app}/unfreeze", s.unfreeze)
	mux.HandleFunc("POST /api/v1/apps/{app}/swaps", s.createSwap)
	mux.HandleFunc("GET /api/v1/swaps/{id}", s.getSwap)
	mux.HandleFunc("POST /api/v1/swaps/{id}/complete", s.completeSwap)
	mux.HandleFunc("POST /api/v1/swaps/{id}/cancel", s.cancelSwap)
	mux.HandleFunc("POST /api/v1/apps/{app}/slots", s.createSlot)
	mux.HandleFunc("GET /api/v1/apps/{app}/slots", s.listSlots)
	mux.HandleFunc("PATCH /api/v1/apps/{app}/slots/{slot}", s.updateSlot)
	mux.HandleFunc("DELETE /api/v1/apps/{app}/slots/{slot}", s.deleteSlot)
	mux.HandleFunc("GET /api/v1/apps/{app}/slots/{slot}/settings", s.listSettings)
	mux.HandleFunc("PUT /api/v1/apps/{app}/slots/{slot}/settings", s.putSettings)
	mux.HandleFunc("PUT /api/v1/apps/{app}/slots/{slot}/settings/{key}", s.putSetting)
	mux.HandleFunc("DELETE /api/v1/apps/{app}/slots/{slot}/settings/{key}", s.deleteSetting)
	mux.HandleFunc("GET /api/v1/deployments/{id}", s.getDeployment)
	mux.HandleFunc("GET /api/v1/deployments/{id}/log", s.deploymentLog)
	mux.HandleFunc("POST /api/v1/deployments/{id}/cancel", s.cancel)
	mux.HandleFunc("GET /api/v1/locks", s.listLocks)
	mux.HandleFunc("GET /api/v1/resources", s.listResources)
	mux.HandleFunc("GET /api/v1/controllers", s.listControllers)
	mux.HandleFunc("POST /api/v1/apps/{app}/lock/break", s.breakLock)
	mux.HandleFunc("GET /api/v1/audit", s.audit)
	for pattern, h := range s.Mounts {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, baton.Errorf(baton.ENOTFOUND, "no API route %s %s; see `baton --help` or the README for the routes", r.Method, r.URL.Path))
	})
	return mux
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, s.Logger, err)
}

// decode reads a bounded JSON body into v, refusing unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return baton.Errorf(baton.EINVALID, "request body is not the JSON this route takes: %v", err)
	}
	return nil
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Store.Ping(ctx); err != nil {
		s.fail(w, r, baton.Errorf(baton.EUNAVAILABLE, "the store does not answer: %v", err))
		return
	}
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			s.fail(w, r, baton.Errorf(baton.EUNAVAILABLE, "%v", err))
			return
		}
	}
	writeJSON(w, 200, map[string]string{"status": "ready"})
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	a, err := s.Coord.CreateApp(r.Context(), body.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/apps/"+a.Name)
	writeJSON(w, http.StatusCreated, a)
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	apps, err := s.Store.Apps(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if apps == nil {
		apps = []baton.App{}
	}
	writeJSON(w, 200, apps)
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request) {
	a, err := s.Store.App(r.Context(), r.PathValue("app"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, a)
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request) {
	if err := s.Coord.DeleteApp(r.Context(), r.PathValue("app")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deploy(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	policy, err := baton.ParsePolicy(q.Get("on_conflict"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	slot := r.PathValue("slot")
	if slot == "" {
		slot = baton.ProductionSlot
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !acceptedArtifactType(ct) {
		s.fail(w, r, baton.Errorf(baton.EINVALID, "Content-Type %q is not an artifact type; send application/zip or application/gzip (a tar.gz)", ct))
		return
	}
	var weightParams string
	if v := q.Get("weight"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			s.fail(w, r, baton.Errorf(baton.EINVALID, "weight %q must be a whole percent from 0 to 100", v))
			return
		}
		weightParams = fmt.Sprintf(`{"weight":%d}`, n)
	}
	d, existing, err := s.Coord.Submit(r.Context(), coordinator.SubmitRequest{
		Params: weightParams,
		App:    r.PathValue("app"), Slot: slot, Artifact: r.Body, MaxUpload: s.MaxUpload, Policy: policy,
		Message: q.Get("message"), Commit: q.Get("commit"), Author: q.Get("author"),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/deployments/"+d.ID)
	if existing {
		writeJSON(w, http.StatusOK, d)
		return
	}
	writeJSON(w, http.StatusAccepted, d)
}

func acceptedArtifactType(ct string) bool {
	ct = strings.TrimSpace(strings.SplitN(ct, ";", 2)[0])
	switch ct {
	case "application/zip", "application/x-zip-compressed", "application/gzip", "application/x-gzip",
		"application/x-tar+gzip", "application/x-compressed-tar", "application/octet-stream":
		return true
	}
	return false
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if _, err := s.Store.App(r.Context(), app); err != nil {
		s.fail(w, r, err)
		return
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.fail(w, r, baton.Errorf(baton.EINVALID, "limit %q must be a number from 1 to 1000", v))
			return
		}
		limit = n
	}
	ds, err := s.Store.Deployments(r.Context(), baton.DeploymentFilter{App: app, Limit: limit})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ds == nil {
		ds = []baton.Deployment{}
	}
	writeJSON(w, 200, ds)
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request) {
	d, err := s.Store.Deployment(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, d)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &body); err != nil && !errors.Is(err, io.EOF) {
			s.fail(w, r, err)
			return
		}
	}
	reason := "cancelled by request"
	if body.Reason != "" {
		reason = "cancelled: " + body.Reason
	}
	d, err := s.Coord.Cancel(r.Context(), r.PathValue("id"), reason)
	s.auditf(r, "deployment.cancel", r.PathValue("id"), reason, err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, d)
}

func (s *Server) listLocks(w http.ResponseWriter, r *http.Request) {
	ls, err := s.Store.Leases(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ls == nil {
		ls = []baton.Lease{}
	}
	writeJSON(w, 200, ls)
}

func (s *Server) breakLock(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &body); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	app := r.PathValue("app")
	l, err := s.Coord.BreakLock(r.Context(), app, body.Reason)
	s.auditf(r, "lock.break", app, body.Reason, err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, l)
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	es, err := s.Store.Audit(r.Context(), 200)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if es == nil {
		es = []baton.AuditEntry{}
	}
	writeJSON(w, 200, es)
}

// auditf records a privileged action and its outcome.
func (s *Server) auditf(r *http.Request, action, target, detail string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "refused: " + baton.ErrorMessage(err)
	}
	e := baton.AuditEntry{Actor: actor(r), Action: action, Target: target, Detail: detail, Outcome: outcome, Remote: r.RemoteAddr}
	if aerr := s.Store.AddAudit(context.WithoutCancel(r.Context()), e); aerr != nil {
		s.Logger.Error("write audit entry", "action", action, "err", aerr)
	}
}

// formatLogLine is the plain-text form of a log line.
func formatLogLine(l baton.LogLine) string {
	return fmt.Sprintf("%s %s\n", l.Time.Format("2006-01-02T15:04:05.000Z07:00"), l.Text)
}
