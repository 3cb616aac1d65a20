package api

import (
	"net/http"

	"github.com/batonhq/baton"
)

// Public marks a route that anyone may call: no token is checked. It is
// not a token scope.
const Public baton.Scope = "public"

// route is one API route and the scope a token needs to call it. For
// deploy routes the app is the path's {app}, or the app of the path's
// deployment {id}: a deploy token limited to some apps may call them for
// those apps only.
type route struct {
	pattern string
	scope   baton.Scope
	handler http.HandlerFunc
	// upload routes take an artifact body and count against MaxUploads.
	upload bool
}

// routes is the API: every route and the scope it needs, in one table.
func (s *Server) routes() []route {
	const read, deploy, admin = baton.ScopeRead, baton.ScopeDeploy, baton.ScopeAdmin
	return []route{
		{pattern: "GET /healthz", scope: Public, handler: s.healthz},
		{pattern: "GET /readyz", scope: Public, handler: s.ready},

		{pattern: "GET /api/v1/whoami", scope: read, handler: s.whoami},
		{pattern: "GET /api/v1/apps", scope: read, handler: s.listApps},
		{pattern: "GET /api/v1/apps/{app}", scope: read, handler: s.getApp},
		{pattern: "GET /api/v1/apps/{app}/deployments", scope: read, handler: s.listDeployments},
		{pattern: "GET /api/v1/apps/{app}/revisions", scope: read, handler: s.listRevisionViews},
		{pattern: "GET /api/v1/apps/{app}/revisions/{rev}", scope: read, handler: s.getRevision},
		{pattern: "GET /api/v1/apps/{app}/revisions/{rev}/log", scope: read, handler: s.revisionLog},
		{pattern: "GET /api/v1/apps/{app}/logs", scope: read, handler: s.appLogs},
		{pattern: "GET /api/v1/apps/{app}/traffic", scope: read, handler: s.appTraffic},
		{pattern: "GET /api/v1/apps/{app}/events", scope: read, handler: s.appEvents},
		{pattern: "GET /api/v1/events", scope: read, handler: s.allEvents},
		{pattern: "GET /api/v1/status", scope: read, handler: s.allStatus},
		{pattern: "GET /api/v1/apps/{app}/status", scope: read, handler: s.appStatus},
		{pattern: "GET /api/v1/apps/{app}/wait", scope: read, handler: s.waitIdle},
		{pattern: "GET /api/v1/apps/{app}/deployments/next", scope: read, handler: s.nextDeployment},
		{pattern: "GET /api/v1/apps/{app}/slots", scope: read, handler: s.listSlots},
		{pattern: "GET /api/v1/apps/{app}/slots/{slot}/settings", scope: read, handler: s.listSettings},
		{pattern: "GET /api/v1/swaps/{id}", scope: read, handler: s.getSwap},
		{pattern: "GET /api/v1/deployments/{id}", scope: read, handler: s.getDeployment},
		{pattern: "GET /api/v1/deployments/{id}/log", scope: read, handler: s.deploymentLog},
		{pattern: "GET /api/v1/locks", scope: read, handler: s.listLocks},
		{pattern: "GET /api/v1/resources", scope: read, handler: s.listResources},
		{pattern: "GET /api/v1/controllers", scope: read, handler: s.listControllers},
		{pattern: "GET /api/v1/hosts", scope: read, handler: s.listHosts},
		{pattern: "GET /api/v1/domains", scope: read, handler: s.listDomains},
		{pattern: "GET /api/v1/apps/{app}/domains", scope: read, handler: s.listDomains},

		{pattern: "POST /api/v1/apps/{app}/slots/{slot}/deployments", scope: deploy, handler: s.deploy, upload: true},
		{pattern: "POST /api/v1/apps/{app}/deployments", scope: deploy, handler: s.deploy, upload: true},
		{pattern: "POST /api/v1/deployments/{id}/cancel", scope: deploy, handler: s.cancel},
		{pattern: "PATCH /api/v1/apps/{app}", scope: deploy, handler: s.updateApp},
		{pattern: "POST /api/v1/apps/{app}/revisions/{rev}/activate", scope: deploy, handler: s.revisionOp(baton.KindActivate)},
		{pattern: "POST /api/v1/apps/{app}/revisions/{rev}/deactivate", scope: deploy, handler: s.revisionOp(baton.KindDeactivate)},
		{pattern: "POST /api/v1/apps/{app}/revisions/{rev}/restart", scope: deploy, handler: s.revisionOp(baton.KindRestart)},
		{pattern: "PUT /api/v1/apps/{app}/slots/{slot}/traffic", scope: deploy, handler: s.setTraffic},
		{pattern: "POST /api/v1/apps/{app}/stabilize", scope: deploy, handler: s.stabilize},
		{pattern: "POST /api/v1/apps/{app}/slots/{slot}/rollback", scope: deploy, handler: s.rollback},
		{pattern: "POST /api/v1/apps/{app}/scale", scope: deploy, handler: s.scale},
		{pattern: "POST /api/v1/apps/{app}/swaps", scope: deploy, handler: s.createSwap},
		{pattern: "POST /api/v1/swaps/{id}/complete", scope: deploy, handler: s.completeSwap},
		{pattern: "POST /api/v1/swaps/{id}/cancel", scope: deploy, handler: s.cancelSwap},
		{pattern: "POST /api/v1/apps/{app}/slots", scope: deploy, handler: s.createSlot},
		{pattern: "PATCH /api/v1/apps/{app}/slots/{slot}", scope: deploy, handler: s.updateSlot},
		{pattern: "PUT /api/v1/apps/{app}/slots/{slot}/settings", scope: deploy, handler: s.putSettings},
		{pattern: "PUT /api/v1/apps/{app}/slots/{slot}/settings/{key}", scope: deploy, handler: s.putSetting},
		{pattern: "DELETE /api/v1/apps/{app}/slots/{slot}/settings/{key}", scope: deploy, handler: s.deleteSetting},
		{pattern: "POST /api/v1/apps/{app}/domains", scope: deploy, handler: s.addDomain},
		{pattern: "DELETE /api/v1/apps/{app}/domains/{domain}", scope: deploy, handler: s.removeDomain},

		{pattern: "POST /api/v1/apps", scope: admin, handler: s.createApp},
		{pattern: "DELETE /api/v1/apps/{app}", scope: admin, handler: s.deleteApp},
		{pattern: "DELETE /api/v1/apps/{app}/slots/{slot}", scope: admin, handler: s.deleteSlot},
		{pattern: "POST /api/v1/apps/{app}/freeze", scope: admin, handler: s.freeze},
		{pattern: "POST /api/v1/apps/{app}/unfreeze", scope: admin, handler: s.unfreeze},
		{pattern: "POST /api/v1/apps/{app}/lock/break", scope: admin, handler: s.breakLock},
		{pattern: "GET /api/v1/audit", scope: admin, handler: s.audit},
		{pattern: "POST /api/v1/gc", scope: admin, handler: s.gc},
		{pattern: "POST /api/v1/hosts/{id}/drain", scope: admin, handler: s.drainHost(true)},
		{pattern: "POST /api/v1/hosts/{id}/undrain", scope: admin, handler: s.drainHost(false)},
		{pattern: "POST /api/v1/tokens", scope: admin, handler: s.createToken},
		{pattern: "GET /api/v1/tokens", scope: admin, handler: s.listTokens},
		{pattern: "DELETE /api/v1/tokens/{name}", scope: admin, handler: s.revokeToken},
		{pattern: "POST /api/v1/backup", scope: admin, handler: s.backup},
		{pattern: "POST /api/v1/hooks", scope: admin, handler: s.createHook},
		{pattern: "GET /api/v1/hooks", scope: admin, handler: s.listHooks},
		{pattern: "DELETE /api/v1/hooks/{id}", scope: admin, handler: s.removeHook},
		{pattern: "POST /api/v1/hooks/{id}/test", scope: admin, handler: s.testHook},
		{pattern: "GET /api/v1/hooks/deliveries", scope: admin, handler: s.listDeliveries},
		{pattern: "GET /api/v1/hooks/{id}/deliveries", scope: admin, handler: s.listDeliveries},

		// Unknown API paths answer 404 to token holders only, so that
		// nobody learns the routes without one.
		{pattern: "/api/", scope: read, handler: s.noRoute},
	}
}

// Version says which baton serves, in /healthz.
type Version struct {
	Version string `json:"version"`
	// SchemaVersion is the store schema this baton migrates to.
	SchemaVersion int `json:"schema_version"`
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]any{"status": "ok", "version": s.Version.Version, "schema_version": s.Version.SchemaVersion})
}

func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, baton.Errorf(baton.ENOTFOUND, "no API route %s %s; see `baton --help` or the README for the routes", r.Method, r.URL.Path))
}

// guard is the one place that checks a route's scope: 401 without a
// valid token, 403 naming the missing scope (and app), then the handler
// with the token in the request's context.
func (s *Server) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.scope == Public {
			rt.handler(w, r)
			return
		}
		tok, err := s.Auth.Authenticate(r)
		if err != nil {
			if baton.ErrorCode(err) == baton.EUNAUTHORIZED {
				challenge := `Bearer realm="baton"`
				if _, sent := Credential(r); sent {
					challenge += `, error="invalid_token"`
				}
				w.Header().Set("WWW-Authenticate", challenge)
			}
			s.fail(w, r, err)
			return
		}
		r = r.WithContext(withToken(r.Context(), tok))
		app := ""
		if rt.scope == baton.ScopeDeploy && len(tok.Apps) > 0 {
			if app, err = s.appOf(r); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if err := tok.Allows(rt.scope, app); err != nil {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				s.auditf(r, "denied", r.Method+" "+r.URL.Path, "needs scope "+string(rt.scope), err)
			}
			s.fail(w, r, err)
			return
		}
		if rt.upload {
			release, err := s.uploads.acquire(r.Context())
			if err != nil {
				s.fail(w, r, err)
				return
			}
			defer release()
			r.Body = idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w)}
		}
		rt.handler(w, r)
	})
}

// appOf is the app a deploy route acts on: the path's {app}, or the app
// of the path's deployment or swap {id}.
func (s *Server) appOf(r *http.Request) (string, error) {
	if app := r.PathValue("app"); app != "" {
		return app, nil
	}
	if id := r.PathValue("id"); id != "" {
		d, err := s.Store.Deployment(r.Context(), id)
		return d.App, err
	}
	return "", nil
}
