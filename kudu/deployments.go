package kudu

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// Kudu's log entry types.
const (
	logMessage = 0
	logWarning = 1
	logError   = 2
)

// LogEntry is one line of a deployment's log as Kudu shows it.
type LogEntry struct {
	LogTime    string  `json:"log_time"`
	ID         string  `json:"id"`
	Message    string  `json:"message"`
	Type       int     `json:"type"`
	DetailsURL *string `json:"details_url"`
}

// latestID is the id Kudu clients poll for "the deployment in progress, or
// else the last one to finish".
const latestID = "latest"

// listLimit bounds GET /api/deployments unless ?limit= says otherwise.
const listLimit = 100

// appState is what rendering an app's deployments needs besides them.
type appState struct {
	queued []string // queued deployment ids, next to run first
	// active is the deployment whose artifact serves the production slot.
	active string
}

func (h *Handler) appState(ctx context.Context, app string) (appState, error) {
	var st appState
	qs, err := h.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, States: []baton.State{baton.StateQueued}, Oldest: true})
	if err != nil {
		return st, err
	}
	for _, q := range qs {
		st.queued = append(st.queued, q.ID)
	}
	st.active, err = h.activeDeployment(ctx, app)
	return st, err
}

// activeDeployment finds the deployment whose artifact serves the
// production slot: the one that created the live revision, or, when a
// settings change restarted it as a new revision, the newest successful
// deployment of the same artifact.
func (h *Handler) activeDeployment(ctx context.Context, app string) (string, error) {
	a, err := h.cfg.Store.App(ctx, app)
	if err != nil {
		return "", err
	}
	live := ""
	for _, sl := range a.Slots {
		if sl.Name == baton.ProductionSlot {
			live = sl.LiveRevision
		}
	}
	if live == "" {
		return "", nil
	}
	rev, err := h.cfg.Store.Revision(ctx, live)
	if err != nil {
		return "", err
	}
	if rev.Deployment != "" {
		if d, err := h.cfg.Store.Deployment(ctx, rev.Deployment); err == nil && isSiteDeployment(d) {
			return d.ID, nil
		}
	}
	done, err := h.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, States: []baton.State{baton.StateSucceeded}})
	if err != nil {
		return "", err
	}
	for _, d := range done {
		if isSiteDeployment(d) && d.ArtifactDigest == rev.ArtifactDigest {
			return d.ID, nil
		}
	}
	return "", nil
}

// isSiteDeployment reports whether d is what Kudu calls a deployment of
// the site: a new artifact for the production slot. Settings changes,
// swaps, traffic changes and deployments to other slots are baton
// operations that Kudu's history does not have.
func isSiteDeployment(d baton.Deployment) bool {
	return (d.Kind == baton.KindDeploy || d.Kind == "") && d.Slot == baton.ProductionSlot
}

// siteDeployments returns the app's site deployments in states (all when
// none), newest first, at most limit (0: all).
func (h *Handler) siteDeployments(ctx context.Context, app string, limit int, states ...baton.State) ([]baton.Deployment, error) {
	// The store cannot filter by kind: read all and keep the site's.
	all, err := h.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, States: states})
	if err != nil {
		return nil, err
	}
	var out []baton.Deployment
	for _, d := range all {
		if isSiteDeployment(d) {
			out = append(out, d)
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// render makes d's Result; the deployer is read from its log.
func (h *Handler) render(ctx context.Context, s site, st appState, d baton.Deployment) (Result, error) {
	lines, err := h.cfg.Store.Log(ctx, d.ID, 0)
	if err != nil {
		return Result{}, err
	}
	v := view{base: s.base, deployer: deployerOf(lines), now: h.cfg.Now(), live: d.ID == st.active}
	for i, id := range st.queued {
		if id == d.ID {
			v.queuePos = i + 1
		}
	}
	return result(d, v), nil
}

func (h *Handler) resultOf(ctx context.Context, s site, d baton.Deployment) (Result, error) {
	st, err := h.appState(ctx, s.app)
	if err != nil {
		return Result{}, err
	}
	return h.render(ctx, s, st, d)
}

// listDeployments is GET /api/deployments: the site's deployments (see
// isSiteDeployment), newest first.
func (h *Handler) listDeployments(w http.ResponseWriter, r *http.Request) {
	s, ctx := siteOf(r), r.Context()
	limit, err := api.QueryLimit(r, listLimit, 1000)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	st, err := h.appState(ctx, s.app)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	ds, err := h.siteDeployments(ctx, s.app, limit)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := make([]Result, 0, len(ds))
	for _, d := range ds {
		res, err := h.render(ctx, s, st, d)
		if err != nil {
			h.problem(w, r, err)
			return
		}
		out = append(out, res)
	}
	writeJSON(w, http.StatusOK, out)
}

// getDeployment is GET /api/deployments/{id}, and /latest: 202 with the
// newest unfinished deployment while there is one (Location: this URL, so
// pollers keep polling), else 200 with the one that finished last.
func (h *Handler) getDeployment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id != latestID {
		d, ok := h.deployment(w, r, id)
		if ok {
			h.answer(w, r, http.StatusOK, d)
		}
		return
	}
	s, ctx := siteOf(r), r.Context()
	active, err := h.siteDeployments(ctx, s.app, 1, baton.StateQueued, baton.StateRunning)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	if len(active) > 0 {
		// The newest, not the running one: a client that polls "latest"
		// after its own push must not stop at an older deployment's end.
		w.Header().Set("Location", s.base+"/api/deployments/"+latestID)
		w.Header().Set("Retry-After", strconv.Itoa(pollAfterSecond))
		h.answer(w, r, http.StatusAccepted, active[0])
		return
	}
	recent, err := h.siteDeployments(ctx, s.app, 50)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	var last *baton.Deployment
	for i, d := range recent {
		if d.FinishedAt != nil && (last == nil || d.FinishedAt.After(*last.FinishedAt)) {
			last = &recent[i]
		}
	}
	if last == nil {
		kuduError(w, http.StatusNotFound, fmt.Sprintf("Deployment '%s' not found.", id), nil)
		return
	}
	h.answer(w, r, http.StatusOK, *last)
}

// deployment reads one of the site's deployments, answering 404 when it
// is unknown or another app's.
func (h *Handler) deployment(w http.ResponseWriter, r *http.Request, id string) (baton.Deployment, bool) {
	d, err := h.cfg.Store.Deployment(r.Context(), id)
	if err == nil && d.App != siteOf(r).app {
		err = baton.Errorf(baton.ENOTFOUND, "not this app's")
	}
	if baton.ErrorCode(err) == baton.ENOTFOUND {
		kuduError(w, http.StatusNotFound, fmt.Sprintf("Deployment '%s' not found.", id), nil)
		return d, false
	}
	if err != nil {
		h.problem(w, r, err)
		return d, false
	}
	return d, true
}

// deploymentLog is GET /api/deployments/{id}/log: baton's log lines as
// Kudu log entries; the line that ends a deployment unsuccessfully is an
// error entry.
func (h *Handler) deploymentLog(w http.ResponseWriter, r *http.Request) {
	d, ok := h.deployment(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	lines, err := h.cfg.Store.Log(r.Context(), d.ID, 0)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := make([]LogEntry, 0, len(lines))
	for _, l := range lines {
		typ := logMessage
		for _, p := range []string{"deployment failed", "deployment cancelled", "deployment superseded"} {
			if strings.HasPrefix(l.Text, p) {
				typ = logError
			}
		}
		out = append(out, LogEntry{
			LogTime: l.Time.UTC().Format("2006-01-02T15:04:05.0000000Z"),
			ID:      strconv.FormatInt(l.ID, 10), Message: l.Text, Type: typ,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteDeployment is DELETE /api/deployments/{id}. baton keeps every
// deployment as history (the audit trail of what served when), so a
// finished one is not deleted: 405. One that is queued or running is a
// 409, as in Kudu; cancelling it is `baton deployments cancel`.
func (h *Handler) deleteDeployment(w http.ResponseWriter, r *http.Request) {
	d, ok := h.deployment(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	if !d.State.Final() {
		what := string(d.State)
		if d.Phase != baton.PhaseNone {
			what += ", phase " + string(d.Phase)
		}
		kuduError(w, http.StatusConflict, fmt.Sprintf(
			"Deployment %s is in progress (%s) and cannot be deleted; cancel it with `baton deployments cancel %s` or wait for it to finish.",
			d.ID, what, d.ID), nil)
		return
	}
	w.Header().Set("Allow", "GET")
	kuduError(w, http.StatusMethodNotAllowed, fmt.Sprintf(
		"Deployment %s is part of the app's history, which baton keeps; finished deployments are not deleted.", d.ID), nil)
}

// isDeploying is GET /api/isdeploying: True while any operation of the app
// (a deployment to any slot, a swap, a settings change) holds or waits for
// its lock, since a new deployment would wait for it.
func (h *Handler) isDeploying(w http.ResponseWriter, r *http.Request) {
	active, err := h.cfg.Store.Deployments(r.Context(), baton.DeploymentFilter{
		App: siteOf(r).app, States: []baton.State{baton.StateQueued, baton.StateRunning}, Limit: 1})
	if err != nil {
		h.problem(w, r, err)
		return
	}
	v := "False"
	if len(active) > 0 {
		v = "True"
	}
	writeJSON(w, http.StatusOK, map[string]string{"value": v})
}

// settings is GET /api/settings: the app's non-secret settings.
func (h *Handler) settings(w http.ResponseWriter, r *http.Request) {
	out := map[string]string{}
	if h.cfg.Settings != nil {
		s, err := h.cfg.Settings(r.Context(), siteOf(r).app)
		if err != nil {
			h.problem(w, r, err)
			return
		}
		if s != nil {
			out = s
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// changeSettings answers the settings writes Kudu has: settings change
// through baton (they create revisions), not through the Kudu API.
func (h *Handler) changeSettings(w http.ResponseWriter, r *http.Request) {
	kuduError(w, http.StatusNotImplemented,
		"app settings cannot be changed through baton's Kudu API; change them with `baton config set APP KEY=VALUE`", nil)
}

// notFound answers a Kudu route baton does not implement.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	kuduError(w, http.StatusNotFound, fmt.Sprintf(
		"baton does not implement %s %s of the Kudu API; it implements POST /api/zipdeploy, POST /api/publish?type=zip, "+
			"GET /api/deployments[/{id}|/latest][/log], DELETE /api/deployments/{id}, GET /api/isdeploying and GET /api/settings (see docs/kudu.md)",
		r.Method, r.URL.Path), nil)
}
