package kudu

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// Kudu's defaults for push deployments.
const (
	defaultMessage  = "Created via a push deployment"
	zipDeployer     = "ZipDeploy"
	oneDeployer     = "OneDeploy"
	pollAfterSecond = 2 // Retry-After on 202: how soon a poll is worth it
)

// pushRequest is a zip deployment as a Kudu client asks for it.
type pushRequest struct {
	endpoint string // "zipdeploy" or "publish", for the log
	async    bool
	deployer string
	message  string
	author   string // name <email>
	commit   string
	policy   string // on_conflict, "" when absent
	force    string // force: deploy even what is already live
	orderKey string // order_key, for on_conflict=newer-only
}

// zipDeploy is POST /api/zipdeploy: the body is the zip; isAsync=true
// answers 202 at once, otherwise the answer waits for the deployment's end.
func (h *Handler) zipDeploy(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	async, err := boolParam(q.Get("isAsync"), "isAsync")
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.push(w, r, pushRequest{
		endpoint: "zipdeploy", async: async,
		deployer: orDefault(q.Get("deployer"), zipDeployer),
		message:  orDefault(q.Get("message"), defaultMessage),
		author:   author(orDefault(q.Get("author"), basicUser(r)), q.Get("authorEmail")),
		commit:   q.Get("commit"),
		policy:   q.Get("on_conflict"),
		force:    q.Get("force"),
		orderKey: q.Get("order_key"),
	})
}

// publish is OneDeploy, POST /api/publish?type=zip: the same as zip deploy
// with OneDeploy's parameter names (async instead of isAsync). Other types
// (war, jar, ear, lib, startup, static) put single files into an App
// Service site; baton deploys whole apps, so it refuses them.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if t := q.Get("type"); !strings.EqualFold(t, "zip") {
		kuduError(w, http.StatusBadRequest, fmt.Sprintf("type='%s' not supported: baton deploys whole apps from a zip; use type=zip", t), nil)
		return
	}
	for _, p := range []string{"path", "target-path"} {
		if q.Get(p) != "" {
			kuduError(w, http.StatusBadRequest, fmt.Sprintf("%s is not supported: baton deploys the zip as the whole app, not into a folder of it", p), nil)
			return
		}
	}
	async, err := boolParam(orDefault(q.Get("async"), q.Get("isAsync")), "async")
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.push(w, r, pushRequest{
		endpoint: "publish", async: async,
		deployer: orDefault(q.Get("deployer"), oneDeployer),
		message:  orDefault(q.Get("message"), oneDeployer),
		author:   author(orDefault(q.Get("author"), basicUser(r)), q.Get("authorEmail")),
		commit:   q.Get("commit"),
		policy:   q.Get("on_conflict"),
		force:    q.Get("force"),
		orderKey: q.Get("order_key"),
	})
}

// push stores the artifact and queues the deployment, then answers 202
// with Location (async) or waits for the end (sync).
func (h *Handler) push(w http.ResponseWriter, r *http.Request, pr pushRequest) {
	s := siteOf(r)
	ctx := r.Context()
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		kuduError(w, http.StatusBadRequest, "deploying from a packageUri is not supported: upload the zip as the request body", nil)
		return
	}
	policy, fromApp, err := h.policy(ctx, s.app, pr.policy)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	force, err := boolParam(pr.force, "force")
	if err != nil {
		h.problem(w, r, err)
		return
	}
	orderKey, err := baton.ParseOrderKey(pr.orderKey)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	res, err := h.cfg.Deployer.Submit(ctx, baton.SubmitRequest{
		App: s.app, Slot: baton.ProductionSlot, Artifact: r.Body, MaxUpload: h.cfg.MaxUpload, Policy: policy,
		Message: pr.message, Commit: pr.commit, Author: pr.author,
		IdempotencyKey: r.Header.Get("Idempotency-Key"), OrderKey: orderKey, Force: force,
	})
	if err != nil {
		h.submitError(w, r, err, s.app, fromApp)
		return
	}
	d := res.Deployment
	if !res.Existing && !res.Unchanged {
		if err := h.cfg.Store.AppendLog(context.WithoutCancel(ctx), d.ID, deployerLine(pr.endpoint, pr.deployer)); err != nil {
			h.log.Warn("kudu api: record deployer", "deployment", d.ID, "err", err)
		}
	}
	url := s.base + "/api/deployments/" + d.ID
	w.Header().Set("SCM-DEPLOYMENT-ID", d.ID)
	if res.Unchanged {
		// A success for Kudu clients: what they push already runs. They
		// get the deployment that created the live revision, as if it had
		// just finished; an asynchronous one polls it and reads status 4.
		kres, err := h.resultOf(ctx, s, d)
		if err != nil {
			h.problem(w, r, err)
			return
		}
		kres.StatusText = "Nothing to deploy: " + baton.UnchangedSentence(s.app, baton.ProductionSlot, d.Revision) + " (force=true deploys it again)"
		status := http.StatusOK
		if pr.async {
			w.Header().Set("Location", url)
			status = http.StatusAccepted
		}
		writeJSON(w, status, kres)
		return
	}
	if pr.async {
		// Kudu points at /api/deployments/latest; baton queues, so "latest"
		// may be someone else's deployment: point at this one.
		w.Header().Set("Location", url)
		w.Header().Set("Retry-After", strconv.Itoa(pollAfterSecond))
		h.answer(w, r, http.StatusAccepted, d)
		return
	}
	final, err := h.waitFinal(ctx, d.ID)
	if err != nil {
		// The client left (the deployment goes on) or baton is stopping.
		w.Header().Set("Location", url)
		h.problem(w, r, baton.Errorf(baton.EUNAVAILABLE, "stopped waiting for deployment %s (%v); poll %s for its outcome", d.ID, err, url))
		return
	}
	d = final
	switch d.State {
	case baton.StateSucceeded:
		h.answer(w, r, http.StatusOK, d)
	default:
		res, rerr := h.resultOf(ctx, s, d)
		if rerr != nil {
			h.problem(w, r, rerr)
			return
		}
		// Failed: 400, as Kudu answers a failed deployment through ARM.
		// Cancelled or superseded by another deployment: 409.
		status := http.StatusBadRequest
		if d.State != baton.StateFailed {
			status = http.StatusConflict
		}
		kuduError(w, status, fmt.Sprintf("Deployment %s %s: %s. The log is at %s", d.ID, d.State, d.Error, res.LogURL),
			map[string]any{"deployment": res})
	}
}

// policy is the request's on_conflict, else the app's option (the hook,
// fromApp), else queue.
func (h *Handler) policy(ctx context.Context, app, param string) (p baton.Policy, fromApp bool, err error) {
	if param != "" || h.cfg.Policy == nil {
		p, err = baton.ParsePolicy(param)
		return p, false, err
	}
	p, err = h.cfg.Policy(ctx, app)
	return p, true, err
}

// submitError answers a refused deployment. A conflict keeps Kudu's 409
// sentence and names what holds the app.
// The way out it suggests depends on where policy fail came from: the
// request's on_conflict, or the app's option (fromApp).
func (h *Handler) submitError(w http.ResponseWriter, r *http.Request, err error, app string, fromApp bool) {
	var e *baton.Error
	if !errors.As(err, &e) || e.Code != baton.ECONFLICT || e.Conflict == nil || e.Conflict.Holder == nil {
		h.problem(w, r, err)
		return
	}
	hd := e.Conflict.Holder
	since := hd.CreatedAt
	if hd.StartedAt != nil {
		since = *hd.StartedAt
	}
	by := hd.Author
	if by == "" {
		by = "an unknown author"
	}
	phase := string(hd.Phase)
	if phase == "" {
		phase = string(hd.State)
	}
	what := hd.ID
	if hd.Kind != "" && hd.Kind != baton.KindDeploy {
		what += " (a " + string(hd.Kind) + " operation)"
	}
	way := "deploy without on_conflict=fail to wait in line"
	if fromApp {
		way = fmt.Sprintf("deploy with on_conflict=queue to wait in line (this app's Kudu deploys refuse while it is busy: app option %s=fail, changed with `baton apps set %s --kudu-on-conflict queue`)", PolicyOption, app)
	}
	msg := fmt.Sprintf("There is a deployment currently in progress: %s by %s, phase %s, running since %s (%s); %d more queued. "+
		"Please try again when it completes, or %s.",
		what, by, phase, since.UTC().Format(time.RFC3339), h.cfg.Now().Sub(since).Round(time.Second), e.Conflict.QueueLength, way)
	if e.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfterSeconds))
	}
	kuduError(w, http.StatusConflict, msg, map[string]any{
		"holder": map[string]any{
			"id": hd.ID, "kind": hd.Kind, "author": hd.Author, "state": hd.State, "phase": hd.Phase,
			"running_since": since, "commit": hd.Commit, "message": hd.Message,
		},
		"queue_length": e.Conflict.QueueLength,
		"retry_after":  e.RetryAfterSeconds,
	})
}

// waitFinal waits for a deployment to finish, waking on the coordinator's
// changes rather than polling.
func (h *Handler) waitFinal(ctx context.Context, id string) (baton.Deployment, error) {
	for {
		changed := h.cfg.Deployer.Changes()
		d, err := h.cfg.Store.Deployment(ctx, id)
		if err != nil || d.State.Final() {
			return d, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return d, context.Cause(ctx)
		}
	}
}

// answer writes d as a Kudu Result.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, status int, d baton.Deployment) {
	res, err := h.resultOf(r.Context(), siteOf(r), d)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	writeJSON(w, status, res)
}

// deployerLine is the log line that records who pushed a deployment
// through the Kudu API; deployerOf reads it back (baton's deployment
// record has no deployer field).
func deployerLine(endpoint, deployer string) string {
	return "received via Kudu " + endpoint + ", deployer " + strconv.Quote(deployer)
}

// deployerOf returns the deployer recorded in a deployment's log, or
// "baton" for deployments that did not come through the Kudu API.
func deployerOf(lines []baton.LogLine) string {
	for _, l := range lines {
		rest, ok := strings.CutPrefix(l.Text, "received via Kudu ")
		if !ok {
			continue
		}
		if _, quoted, ok := strings.Cut(rest, ", deployer "); ok {
			if d, err := strconv.Unquote(quoted); err == nil {
				return d
			}
		}
	}
	return "baton"
}

func basicUser(r *http.Request) string {
	u, _, _ := r.BasicAuth()
	return u
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// boolParam parses a boolean query parameter the way ASP.NET does
// (case-insensitive true/false); absent is false.
func boolParam(v, name string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		return false, baton.Errorf(baton.EINVALID, "%s=%q is not true or false", name, v)
	}
	return b, nil
}
