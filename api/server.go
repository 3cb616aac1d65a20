package api

import (
	"bytes"
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
	"github.com/batonhq/baton/manifest"
)

// Server is the HTTP API in front of a coordinator.
type Server struct {
	Coord  Coordinator
	Store  baton.Store
	Logger *slog.Logger
	// MaxUpload bounds artifact uploads (bytes); default 1 GiB.
	MaxUpload int64
	// Ready reports extra readiness (e.g. the proxy is listening).
	Ready func() error
	// Mounts are more handlers on the same listener, by ServeMux pattern
	// (the git endpoint, the Kudu-compatible API).
	Mounts map[string]http.Handler
	// MountScopes is the scope each mount needs, by the same pattern:
	// Public for those that are open or check tokens themselves (through
	// Auth). A mount without an entry needs an admin token.
	MountScopes map[string]baton.Scope
	// Auth authenticates requests; default an Auth on Store.
	Auth *Auth
	// MaxUploads bounds the artifact uploads in progress at once; default 8.
	MaxUploads int
	// UploadWait is how long an upload waits for a slot before 429; default 30s.
	UploadWait time.Duration
	// Backup writes a backup archive for POST /api/v1/backup; nil answers
	// that this baton cannot.
	Backup BackupFunc
	// Version is what /healthz says of this baton.
	Version Version
	// Hooks lists and tests webhooks; nil: only those in the store.
	Hooks Hooks
	// Traffic answers an app's per-revision traffic over a window; nil
	// when request metrics are off.
	Traffic func(app string, window time.Duration) []baton.RevisionTraffic
	// TrafficSeries answers the same per sampling interval (charts).
	TrafficSeries func(app string, window time.Duration) []baton.TrafficPoint

	uploads uploadSlots
	events  *eventHub
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
	if s.Auth == nil {
		s.Auth = &Auth{Tokens: s.Store, Audit: s.Store, Logger: s.Logger}
	}
	if s.MaxUploads <= 0 {
		s.MaxUploads = 8
	}
	if s.UploadWait <= 0 {
		s.UploadWait = 30 * time.Second
	}
	s.uploads = uploadSlots{ch: make(chan struct{}, s.MaxUploads), wait: s.UploadWait}
	s.events = newEventHub(time.Now())
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.guard(rt))
	}
	for pattern, h := range s.Mounts {
		scope, ok := s.MountScopes[pattern]
		if !ok {
			// A mount nobody classified is for admins until someone does.
			scope = baton.ScopeAdmin
			s.Logger.Warn("API mount has no scope; it needs an admin token", "pattern", pattern)
		}
		mux.Handle(pattern, s.guard(route{pattern: pattern, scope: scope, handler: h.ServeHTTP}))
	}
	return mux
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, s.Logger, err)
}

// decode reads a bounded JSON body into v, refusing unknown fields.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return baton.Errorf(baton.EINVALID, "reading the request body: %v", err)
	}
	if len(body) > maxJSONBody {
		return baton.Errorf(baton.ETOOLARGE, "request body is over %d KiB, the most a JSON request may have", maxJSONBody>>10)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return baton.Errorf(baton.EINVALID, "request body is not the JSON this route takes: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return baton.Errorf(baton.EINVALID, "request body has more after its JSON value")
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
	s.auditf(r, "app.create", body.Name, "", err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/apps/"+a.Name)
	writeJSON(w, http.StatusCreated, a)
}

// listApps answers every app, or a page of them (see appsPage).
func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	apps, err := s.appsPage(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if apps == nil {
		apps = []baton.App{}
	}
	writeList(w, apps)
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
	err := s.Coord.DeleteApp(r.Context(), r.PathValue("app"))
	s.auditf(r, "app.delete", r.PathValue("app"), "", err)
	if err != nil {
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
	var (
		body  io.Reader = r.Body
		image *baton.ImagePull
	)
	switch ct := r.Header.Get("Content-Type"); {
	case isJSON(ct):
		var req ImageDeploy
		if err := decode(r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		if req.Image.Ref == "" {
			s.fail(w, r, baton.Errorf(baton.EINVALID, `a JSON deploy names a container image: {"image": {"ref": "registry.example.com/app:v1"}}; upload an archive as application/zip, application/gzip or application/x-tar instead`))
			return
		}
		image, body = &req.Image, nil
	case ct != "" && !acceptedArtifactType(ct):
		s.fail(w, r, baton.Errorf(baton.EINVALID, "Content-Type %q is not an artifact type; send application/zip, application/gzip (a tar.gz), application/x-tar (an image archive) or application/json naming an image", ct))
		return
	}
	var params baton.DeployParams
	if v := q.Get("manifest"); v != "" {
		if _, err := manifest.ParseImage([]byte(v)); err != nil {
			s.fail(w, r, err)
			return
		}
		params.Manifest = v
	}
	if v := q.Get("weight"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			s.fail(w, r, baton.Errorf(baton.EINVALID, "weight %q must be a whole percent from 0 to 100", v))
			return
		}
		params.Weight = &n
	}
	orderKey, err := baton.ParseOrderKey(q.Get("order_key"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	force := false
	if v := q.Get("force"); v != "" {
		if force, err = strconv.ParseBool(v); err != nil {
			s.fail(w, r, baton.Errorf(baton.EINVALID, "force %q is not true or false", v))
			return
		}
	}
	res, err := s.Coord.Submit(r.Context(), baton.SubmitRequest{
		Params: params,
		App:    r.PathValue("app"), Slot: slot, Artifact: body, Image: image, MaxUpload: s.MaxUpload, Policy: policy,
		Message: q.Get("message"), Commit: q.Get("commit"), Author: q.Get("author"),
		IdempotencyKey: r.Header.Get("Idempotency-Key"), OrderKey: orderKey, Force: force,
	})
	d := res.Deployment
	detail := d.ID
	if res.Unchanged {
		detail = "unchanged: " + d.Revision + " already live (created by " + d.ID + ")"
	}
	if res.Existing {
		detail += " (repeated Idempotency-Key: the earlier answer)"
	}
	s.auditf(r, "deploy", r.PathValue("app")+"/"+slot, detail, err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/deployments/"+d.ID)
	switch {
	case res.Unchanged:
		writeJSON(w, http.StatusOK, DeployResult{Deployment: d, Unchanged: true,
			Detail: baton.UnchangedSentence(d.App, slot, d.Revision) + "; nothing to do (force=true deploys it again)"})
	case res.Existing:
		writeJSON(w, http.StatusOK, DeployResult{Deployment: d})
	default:
		writeJSON(w, http.StatusAccepted, DeployResult{Deployment: d})
	}
}

// ImageDeploy is the JSON body of a deploy of a container image pulled
// from a registry.
type ImageDeploy struct {
	Image baton.ImagePull `json:"image"`
}

func isJSON(ct string) bool {
	return strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]) == "application/json"
}

func acceptedArtifactType(ct string) bool {
	ct = strings.TrimSpace(strings.SplitN(ct, ";", 2)[0])
	switch ct {
	case "application/zip", "application/x-zip-compressed", "application/gzip", "application/x-gzip",
		"application/x-tar+gzip", "application/x-compressed-tar", "application/octet-stream", "application/x-tar":
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
	limit, err := QueryLimit(r, 50, 1000)
	if err != nil {
		s.fail(w, r, err)
		return
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
	limit, err := QueryLimit(r, 200, 10000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	es, err := s.Store.Audit(r.Context(), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if es == nil {
		es = []baton.AuditEntry{}
	}
	writeJSON(w, 200, es)
}

// gc runs a collection (dry_run=true: reports what one would remove).
func (s *Server) gc(w http.ResponseWriter, r *http.Request) {
	dry := false
	if v := r.URL.Query().Get("dry_run"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.fail(w, r, baton.Errorf(baton.EINVALID, "dry_run %q must be true or false", v))
			return
		}
		dry = b
	}
	rep, err := s.Coord.Collect(r.Context(), dry)
	if !dry {
		s.auditf(r, "gc", "", fmt.Sprintf("reclaimed %d bytes", rep.Reclaimed), err)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, rep)
}

// auditf records a privileged action and its outcome.
func (s *Server) auditf(r *http.Request, action, target, detail string, err error) {
	t, _ := TokenOf(r.Context())
	s.Auth.Record(r, t, action, target, detail, err)
}

// formatLogLine is the plain-text form of a log line.
func formatLogLine(l baton.LogLine) string {
	return fmt.Sprintf("%s %s\n", l.Time.Format("2006-01-02T15:04:05.000Z07:00"), l.Text)
}
