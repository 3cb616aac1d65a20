// Package kudu serves the part of Kudu's REST API (App Service's deployment
// engine) that deployment pipelines use — zip deploy, OneDeploy, the
// deployment list, status and log — on top of baton's coordinator, so
// existing pipelines deploy to baton unchanged. Where Kudu answers 409 to a
// second deployment, baton queues it and the client simply polls longer.
//
// Each app is one Kudu "site", reached at /kudu/APP on the API listener or
// by Host APP.scm.DOMAIN (see docs/kudu.md).
package kudu

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/batonhq/baton"
)

// Store is the part of baton.Store the Kudu API reads (and the one log
// line it writes per deployment).
type Store interface {
	App(ctx context.Context, name string) (baton.App, error)
	Deployment(ctx context.Context, id string) (baton.Deployment, error)
	Deployments(ctx context.Context, f baton.DeploymentFilter) ([]baton.Deployment, error)
	Log(ctx context.Context, id string, after int64) ([]baton.LogLine, error)
	AppendLog(ctx context.Context, id string, lines ...string) error
	Revision(ctx context.Context, name string) (baton.Revision, error)
}

var _ Store = (baton.Store)(nil)

// Credentials are what a request authenticated with: HTTP Basic (any user
// name, by convention $APP, and a password) or a Bearer token.
type Credentials struct {
	Scheme string // "Basic" or "Bearer"
	User   string // Basic only
	Secret string // the password or the token
}

// Config is what a Handler needs. Deployer and Store are required.
type Config struct {
	Deployer baton.Deployer
	Store    Store
	Logger   *slog.Logger
	// MaxUpload bounds artifact uploads (bytes); default 1 GiB.
	MaxUpload int64
	// Authorize decides whether credentials may use app's Kudu API; baton
	// serve checks the Basic password or bearer token as a baton token,
	// like the rest of the API. nil accepts any (tests of this package).
	Authorize func(r *http.Request, app string, c Credentials) error
	// Policy is the conflict policy of a deployment whose request has no
	// on_conflict parameter: the hook for the app option kudu_on_conflict.
	// nil means queue, which is what Kudu clients expect: they poll longer.
	Policy func(ctx context.Context, app string) (baton.Policy, error)
	// Settings returns the app's non-secret settings for GET /api/settings.
	// nil answers {}: settings are not wired into the Kudu API yet.
	Settings func(ctx context.Context, app string) (map[string]string, error)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Handler serves the Kudu-compatible API of every app.
type Handler struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// New returns a Handler; it starts nothing.
func New(cfg Config) *Handler {
	if cfg.MaxUpload == 0 {
		cfg.MaxUpload = 1 << 30
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	h.routes()
	return h
}

// PathPattern is the ServeMux pattern PathHandler is mounted at.
const PathPattern = "/kudu/{app}/"

// PathHandler serves the API under /kudu/APP/ (mounted at PathPattern), so a
// pipeline's SCM URI can be http://HOST:7070/kudu/APP.
func (h *Handler) PathHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app := r.PathValue("app")
		prefix := "/kudu/" + app
		h.serveSite(w, r, app, scheme(r)+"://"+r.Host+prefix, prefix)
	})
}

// HostHandler serves the API to requests for Host APP.scm.DOMAIN (any
// port), so a pipeline's SCM URI can be http://APP.scm.DOMAIN:7070 as on App
// Service; every other request goes to next.
func (h *Handler) HostHandler(domain string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app, ok := AppOfHost(r.Host, domain)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		h.serveSite(w, r, app, scheme(r)+"://"+r.Host, "")
	})
}

// siteKey carries the site of a request through its context.
type siteKey struct{}

// site is the app a request is for and the absolute URL of its SCM root,
// from which every URL in an answer is built.
type site struct {
	app  string
	base string
}

func siteOf(r *http.Request) site { s, _ := r.Context().Value(siteKey{}).(site); return s }

// serveSite authenticates, checks the app exists, strips prefix and routes.
func (h *Handler) serveSite(w http.ResponseWriter, r *http.Request, app, base, prefix string) {
	creds, ok := credentialsOf(r)
	if !ok {
		w.Header().Add("WWW-Authenticate", `Basic realm="baton", charset="UTF-8"`)
		w.Header().Add("WWW-Authenticate", `Bearer realm="baton"`)
		h.problem(w, r, baton.Errorf(baton.EUNAUTHORIZED,
			"the Kudu API needs credentials: HTTP Basic (user $%s and a password, e.g. curl -u '$%s:PASSWORD') or Authorization: Bearer TOKEN", app, app))
		return
	}
	if h.cfg.Authorize != nil {
		if err := h.cfg.Authorize(r, app, creds); err != nil {
			h.problem(w, r, err)
			return
		}
	}
	if _, err := h.cfg.Store.App(r.Context(), app); err != nil {
		h.problem(w, r, err)
		return
	}
	r2 := r.WithContext(context.WithValue(r.Context(), siteKey{}, site{app: app, base: base}))
	if prefix != "" {
		u := *r.URL
		u.Path = r.URL.Path[len(prefix):]
		u.RawPath = ""
		if u.Path == "" {
			u.Path = "/"
		}
		r2.URL = &u
	}
	h.mux.ServeHTTP(w, r2)
}

func (h *Handler) routes() {
	for _, m := range []string{"POST", "PUT"} {
		h.mux.HandleFunc(m+" /api/zipdeploy", h.zipDeploy)
		h.mux.HandleFunc(m+" /api/publish", h.publish)
	}
	h.mux.HandleFunc("GET /api/deployments", h.listDeployments)
	h.mux.HandleFunc("GET /api/deployments/{id}", h.getDeployment)
	h.mux.HandleFunc("GET /api/deployments/{id}/log", h.deploymentLog)
	h.mux.HandleFunc("DELETE /api/deployments/{id}", h.deleteDeployment)
	h.mux.HandleFunc("GET /api/isdeploying", h.isDeploying)
	h.mux.HandleFunc("GET /api/settings", h.settings)
	h.mux.HandleFunc("POST /api/settings", h.changeSettings)
	h.mux.HandleFunc("DELETE /api/settings/{key}", h.changeSettings)
	h.mux.HandleFunc("/", h.notFound)
}

// scheme is the scheme the client used; a TLS terminator in front of
// baton says so in X-Forwarded-Proto.
func scheme(r *http.Request) string {
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		return "https"
	}
	return "http"
}
