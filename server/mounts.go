package server

import (
	"context"
	"net/http"

	"github.com/batonhq/baton"

	"github.com/batonhq/baton/gitdeploy"
	"github.com/batonhq/baton/kudu"
	"github.com/batonhq/baton/web"
)

// mounts returns handlers served on the API listener beside the REST API,
// keyed by http.ServeMux pattern (for example "/git/").
func (s *Server) mounts() map[string]http.Handler {
	dashboard := web.New()
	return map[string]http.Handler{
		// The dashboard: the page at /, its embedded assets under /ui/.
		"GET /{$}":          dashboard,
		"GET " + web.Prefix: dashboard,
		// The Kudu-compatible API: SCM URI http://HOST:PORT/kudu/APP.
		kudu.PathPattern: s.kudu().PathHandler(),
		// git push deploy: remote http://HOST:PORT/git/APP.git.
		"/git/": s.gitDeploy(),
		// The OCI registry: podman push HOST:PORT/APP:TAG deploys.
		"/v2/": s.registry(),
	}
}

// wrapAPI lets a handler take requests by Host before the API's routes (for
// example APP.scm.DOMAIN); it returns h unchanged when nothing needs to.
func (s *Server) wrapAPI(h http.Handler) http.Handler {
	// The Kudu-compatible API by Host, as App Service names it:
	// SCM URI http://APP.scm.DOMAIN:PORT.
	return s.kudu().HostHandler(s.cfg.Domain, h)
}

// kudu builds the Kudu-compatible API. It holds no state of its own, so
// the path and Host routes may each have one.
func (s *Server) kudu() *kudu.Handler {
	return kudu.New(kudu.Config{
		Deployer:  s.coord,
		Store:     s.store,
		Logger:    s.log,
		MaxUpload: s.cfg.MaxUpload,
		// The production slot's settings: GET /api/settings lists the
		// non-secret ones. The app's option kudu_on_conflict sets the
		// default policy.
		Settings: kudu.SettingsOf(s.store),
		Policy:   kudu.PolicyOf(s.store),
		// A baton token as the Basic password or Bearer token.
		Authorize: s.authorizeKudu,
	})
}

// gitDeploy builds the git endpoint (smart HTTP; a push to main deploys).
func (s *Server) gitDeploy() *gitdeploy.Handler {
	return gitdeploy.New(gitdeploy.Config{
		Deployer:  s.coord,
		Store:     s.store,
		DataDir:   s.cfg.DataDir,
		Domain:    s.cfg.Domain,
		ProxyAddr: s.ProxyAddr(),
		MaxUpload: s.cfg.MaxUpload,
		Logger:    s.log,
		// Targets stays nil until slots have deploy_branch: main →
		// production. A push without -o on-conflict takes the app's
		// option git_on_conflict (default queue).
		Policy: gitPolicyOf(s.store),
		// A baton token as the Basic password.
		Authorize: s.authorizeGit,
	})
}

// gitPolicyOf is the policy of a push without -o on-conflict: the app's
// option git_on_conflict, queue when unset.
func gitPolicyOf(st baton.Store) func(ctx context.Context, app string) (baton.Policy, error) {
	return func(ctx context.Context, app string) (baton.Policy, error) {
		a, err := st.App(ctx, app)
		if err != nil {
			return "", err
		}
		return baton.ParsePolicy(string(a.Options.GitOnConflict))
	}
}
