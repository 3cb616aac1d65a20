package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/ociimage"
)

// registry builds baton's OCI registry at /v2/: pushing HOST/APP:TAG
// deploys the image to APP's production slot, HOST/APP/SLOT:TAG to SLOT.
// Clients log in with a baton token as the password (podman login, skopeo
// --creds); pulling needs scope read, pushing scope deploy for the app.
func (s *Server) registry() http.Handler {
	return s.images.Registry(ociimage.RegistryHooks{
		Authorize:      s.authorizeRegistry,
		ManifestPushed: s.imagePushed,
	})
}

// registryTarget splits a repository name into app and slot.
func registryTarget(repo string) (app, slot string, err error) {
	app, slot, _ = strings.Cut(repo, "/")
	if slot == "" {
		slot = baton.ProductionSlot
	}
	if strings.Contains(slot, "/") || app == "" {
		return "", "", baton.Errorf(baton.EINVALID, "repository %q is not APP or APP/SLOT: push to HOST/APP:TAG for production or HOST/APP/SLOT:TAG for a slot", repo)
	}
	return app, slot, nil
}

func (s *Server) authorizeRegistry(r *http.Request, repo string, push bool) error {
	secret, ok := api.Credential(r)
	if !ok {
		return baton.Errorf(baton.EUNAUTHORIZED, "baton's registry needs a baton token as the password: podman login %s -u baton -p TOKEN (or skopeo --creds baton:TOKEN)", r.Host)
	}
	need, action := baton.ScopeRead, "registry.pull"
	if push {
		need, action = baton.ScopeDeploy, "registry.push"
	}
	app := ""
	if repo != "" {
		var err error
		if app, _, err = registryTarget(repo); err != nil {
			return err
		}
	}
	t, err := s.auth.Authorize(r, secret, need, app)
	if push || err != nil {
		s.auth.Record(r, t, action, repo, r.Method+" "+r.URL.Path, err)
	}
	return err
}

// imagePushed deploys an image whose manifest was pushed, under the
// app's queue and its option registry_on_conflict (default queue); the
// push answers with the deployment, or fails with the refusal's sentence.
func (s *Server) imagePushed(ctx context.Context, repo, reference string, img ociimage.Image) (http.Header, error) {
	app, slot, err := registryTarget(repo)
	if err != nil {
		return nil, err
	}
	a, err := s.store.App(ctx, app)
	if err != nil {
		return nil, err
	}
	policy, err := baton.ParsePolicy(string(a.Options.RegistryOnConflict))
	if err != nil {
		return nil, err
	}
	res, err := s.coord.Submit(ctx, baton.SubmitRequest{
		App: app, Slot: slot, ImageDigest: img.Digest, Policy: policy,
		Params:  baton.DeployParams{Image: "push " + repo + ":" + reference},
		Message: "image " + repo + ":" + reference,
	})
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Baton-Deployment", res.Deployment.ID)
	h.Set("Location", "/api/v1/deployments/"+res.Deployment.ID)
	if res.Unchanged {
		h.Set("Baton-Unchanged", baton.UnchangedSentence(app, slot, res.Deployment.Revision))
	}
	return h, nil
}
