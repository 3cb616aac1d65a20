package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// Client calls a baton server's API. Errors come back as *baton.Error with
// the server's code and sentence.
type Client struct {
	BaseURL   string
	HTTP      *http.Client
	UserAgent string
	// Token is the access token sent as a Bearer credential ("": none).
	Token string
}

// NewClient returns a client for the server at baseURL. Requests have no
// overall timeout (uploads and log streams can be long) but connecting and
// waiting for response headers are bounded.
func NewClient(baseURL string) *Client {
	return &Client{
		BaseURL: strings.TrimRight(baseURL, "/"),
		HTTP: &http.Client{Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			ResponseHeaderTimeout: 10 * time.Minute, // a synchronous upload answers after the body is stored
			MaxIdleConnsPerHost:   4,
		}},
		UserAgent: "baton-cli",
	}
}

// newRequest returns a request to the API with the client's User-Agent
// and token.
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.UserAgent)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// do sends a request and decodes a JSON answer into out (if non-nil).
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, header http.Header, out any) (*http.Response, error) {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" && body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, baton.Errorf(baton.EUNAVAILABLE, "cannot reach the baton server at %s: %v; is `baton serve` running there? (set BATON_URL to point elsewhere)", c.BaseURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return resp, decodeProblem(resp)
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp, fmt.Errorf("decode %s %s answer: %w", method, path, err)
		}
	}
	return resp, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeProblem turns an error answer into a *baton.Error.
func decodeProblem(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var p Problem
	if json.Unmarshal(body, &p) != nil || p.Detail == "" {
		return &baton.Error{Code: codeOf(resp.StatusCode), Message: fmt.Sprintf("server answered %s: %s", resp.Status, strings.TrimSpace(string(body)))}
	}
	code := p.Code
	if _, known := statusOf[code]; !known {
		code = codeOf(resp.StatusCode)
	}
	e := &baton.Error{Code: code, Message: p.Detail, Conflict: p.Conflict, RetryAfterSeconds: p.RetryAfter}
	if e.RetryAfterSeconds == 0 {
		e.RetryAfterSeconds, _ = strconv.Atoi(resp.Header.Get("Retry-After"))
	}
	return e
}

// CreateApp creates an app.
func (c *Client) CreateApp(ctx context.Context, name string) (baton.App, error) {
	var a baton.App
	b, _ := json.Marshal(map[string]string{"name": name})
	_, err := c.do(ctx, "POST", "/api/v1/apps", strings.NewReader(string(b)), nil, &a)
	return a, err
}

// Apps lists every app, read a page at a time.
func (c *Client) Apps(ctx context.Context) ([]baton.App, error) {
	return allPages[baton.App](ctx, c, "/api/v1/apps")
}

// App returns one app.
func (c *Client) App(ctx context.Context, name string) (baton.App, error) {
	var a baton.App
	_, err := c.do(ctx, "GET", "/api/v1/apps/"+url.PathEscape(name), nil, nil, &a)
	return a, err
}

// DeleteApp deletes an app with its instances and files.
func (c *Client) DeleteApp(ctx context.Context, name string) error {
	_, err := c.do(ctx, "DELETE", "/api/v1/apps/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// DeployOptions are the optional parts of a deployment request.
type DeployOptions struct {
	Slot           string
	Policy         baton.Policy
	Message        string
	Commit         string
	Author         string
	IdempotencyKey string
	// OrderKey orders deploys by their source for policy newer-only (a CI
	// run number); 0 sends none.
	OrderKey int64
	// Weight asks for a share of the slot's traffic (multiple revision mode);
	// nil leaves the default.
	Weight *int
	// Force deploys even when the artifact and the slot's settings are
	// already live (otherwise the answer is Unchanged).
	Force bool
	// ContentType is application/zip, application/gzip or
	// application/x-tar (an image archive).
	ContentType string
	// Image deploys a container image pulled from a registry; the
	// artifact is then nil.
	Image *baton.ImagePull
	// Manifest is a baton.toml for a container image; it wins over the
	// image's own.
	Manifest string
}

// DeployResult is the answer to a deploy request: the deployment it
// queued (202 Accepted); or the one a repeated Idempotency-Key names (200);
// or, when the artifact and the settings a new revision would carry
// already serve the slot and nothing queued or running would change that,
// the deployment that created the revision that serves, Revision (200,
// Unchanged): no deployment was recorded.
type DeployResult struct {
	baton.Deployment
	// Unchanged: nothing was deployed; Detail says why in a sentence.
	Unchanged bool   `json:"unchanged,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

// Deploy uploads an artifact and returns the queued deployment, or says
// that the artifact and settings are already live (DeployResult.Unchanged).
func (c *Client) Deploy(ctx context.Context, app string, artifact io.Reader, o DeployOptions) (DeployResult, error) {
	slot := o.Slot
	if slot == "" {
		slot = baton.ProductionSlot
	}
	q := url.Values{}
	for k, v := range map[string]string{"on_conflict": string(o.Policy), "message": o.Message, "commit": o.Commit, "author": o.Author} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.Weight != nil {
		q.Set("weight", strconv.Itoa(*o.Weight))
	}
	if o.Force {
		q.Set("force", "true")
	}
	if o.OrderKey > 0 {
		q.Set("order_key", strconv.FormatInt(o.OrderKey, 10))
	}
	if o.Manifest != "" {
		q.Set("manifest", o.Manifest)
	}
	h := http.Header{}
	h.Set("Content-Type", o.ContentType)
	if o.Image != nil {
		b, err := json.Marshal(ImageDeploy{Image: *o.Image})
		if err != nil {
			return DeployResult{}, err
		}
		artifact = bytes.NewReader(b)
		h.Set("Content-Type", "application/json")
	}
	if o.IdempotencyKey != "" {
		h.Set("Idempotency-Key", o.IdempotencyKey)
	}
	var res DeployResult
	path := fmt.Sprintf("/api/v1/apps/%s/slots/%s/deployments?%s", url.PathEscape(app), url.PathEscape(slot), q.Encode())
	_, err := c.do(ctx, "POST", path, artifact, h, &res)
	return res, err
}

// Deployment returns one deployment.
func (c *Client) Deployment(ctx context.Context, id string) (baton.Deployment, error) {
	var d baton.Deployment
	_, err := c.do(ctx, "GET", "/api/v1/deployments/"+url.PathEscape(id), nil, nil, &d)
	return d, err
}

// Deployments returns an app's deployments, newest first.
func (c *Client) Deployments(ctx context.Context, app string, limit int) ([]baton.Deployment, error) {
	var out []baton.Deployment
	_, err := c.do(ctx, "GET", fmt.Sprintf("/api/v1/apps/%s/deployments?limit=%d", url.PathEscape(app), limit), nil, nil, &out)
	return out, err
}

// Revisions returns an app's revisions with their runtime state, newest first.
func (c *Client) Revisions(ctx context.Context, app string) ([]RevisionView, error) {
	var out []RevisionView
	_, err := c.do(ctx, "GET", "/api/v1/apps/"+url.PathEscape(app)+"/revisions", nil, nil, &out)
	return out, err
}

// Revision returns one revision.
func (c *Client) Revision(ctx context.Context, app, rev string) (RevisionView, error) {
	var out RevisionView
	_, err := c.do(ctx, "GET", "/api/v1/apps/"+url.PathEscape(app)+"/revisions/"+url.PathEscape(rev), nil, nil, &out)
	return out, err
}

// RevisionOp activates, deactivates or restarts a revision and waits for it.
func (c *Client) RevisionOp(ctx context.Context, app, rev, op, slot string, policy baton.Policy) (baton.Deployment, error) {
	q := url.Values{}
	if slot != "" {
		q.Set("slot", slot)
	}
	if policy != "" {
		q.Set("on_conflict", string(policy))
	}
	return c.op(ctx, "POST", "/api/v1/apps/"+url.PathEscape(app)+"/revisions/"+url.PathEscape(rev)+"/"+op+"?"+q.Encode(), nil)
}

// SetTraffic sets a slot's weights and waits for the change.
func (c *Client) SetTraffic(ctx context.Context, app, slot string, weights map[string]int, policy baton.Policy) (baton.Deployment, error) {
	b, _ := json.Marshal(map[string]any{"weights": weights})
	return c.op(ctx, "PUT", "/api/v1/apps/"+url.PathEscape(app)+"/slots/"+url.PathEscape(slot)+"/traffic?on_conflict="+string(policy), strings.NewReader(string(b)))
}

// Rollback queues a rollback of app's slot (rp.To empty: to the revision
// that served before the current one) and returns the queued operation.
func (c *Client) Rollback(ctx context.Context, app, slot string, rp baton.RollbackParams, policy baton.Policy, author string) (baton.Deployment, error) {
	if slot == "" {
		slot = baton.ProductionSlot
	}
	b, _ := json.Marshal(rp)
	q := url.Values{}
	if policy != "" {
		q.Set("on_conflict", string(policy))
	}
	if author != "" {
		q.Set("author", author)
	}
	var d baton.Deployment
	_, err := c.do(ctx, "POST", "/api/v1/apps/"+url.PathEscape(app)+"/slots/"+url.PathEscape(slot)+"/rollback?"+q.Encode(), strings.NewReader(string(b)), nil, &d)
	return d, err
}

// Stabilize gives one revision 100 % and deactivates the others.
func (c *Client) Stabilize(ctx context.Context, app, slot, rev string, policy baton.Policy) (baton.Deployment, error) {
	b, _ := json.Marshal(map[string]string{"slot": slot, "revision": rev})
	return c.op(ctx, "POST", "/api/v1/apps/"+url.PathEscape(app)+"/stabilize?on_conflict="+string(policy), strings.NewReader(string(b)))
}

// op sends the request of an operation the server runs before it answers
// (traffic, stabilize, revision operations) and returns the operation. One
// that ran and failed is answered with a problem and the operation's
// Location: op then returns the finished operation along with the error,
// so a caller can tell an operation that failed (d final, not succeeded)
// from one that was refused (d empty). A 202 returns the operation still
// running.
func (c *Client) op(ctx context.Context, method, path string, body io.Reader) (baton.Deployment, error) {
	var d baton.Deployment
	resp, err := c.do(ctx, method, path, body, nil, &d)
	if err != nil && resp != nil {
		if id, ok := strings.CutPrefix(resp.Header.Get("Location"), "/api/v1/deployments/"); ok && id != "" {
			if got, gerr := c.Deployment(ctx, id); gerr == nil && got.State.Final() {
				d = got
			}
		}
	}
	return d, err
}

// SetRevisionMode sets an app's revision mode (single or multiple).
func (c *Client) SetRevisionMode(ctx context.Context, app, mode string) (baton.App, error) {
	var a baton.App
	b, _ := json.Marshal(map[string]string{"revision_mode": mode})
	_, err := c.do(ctx, "PATCH", "/api/v1/apps/"+url.PathEscape(app), strings.NewReader(string(b)), nil, &a)
	return a, err
}

// AppChange is what UpdateApp changes; nil fields stay as they are.
type AppChange struct {
	RevisionMode   *string `json:"revision_mode,omitempty"`
	KuduOnConflict *string `json:"kudu_on_conflict,omitempty"`
	GitOnConflict  *string `json:"git_on_conflict,omitempty"`
	// RegistryOnConflict is the policy of images pushed to baton's registry.
	RegistryOnConflict *string `json:"registry_on_conflict,omitempty"`
}

// UpdateApp changes an app's revision mode and baton's options for it.
func (c *Client) UpdateApp(ctx context.Context, app string, ch AppChange) (baton.App, error) {
	var a baton.App
	b, _ := json.Marshal(ch)
	_, err := c.do(ctx, "PATCH", "/api/v1/apps/"+url.PathEscape(app), strings.NewReader(string(b)), nil, &a)
	return a, err
}

// Status returns an app's status with its conflicts.
func (c *Client) Status(ctx context.Context, app string) (baton.AppStatus, error) {
	var st baton.AppStatus
	_, err := c.do(ctx, "GET", "/api/v1/apps/"+url.PathEscape(app)+"/status", nil, nil, &st)
	return st, err
}

// AllStatus returns the status of every app, read a page at a time.
func (c *Client) AllStatus(ctx context.Context) ([]baton.AppStatus, error) {
	return allPages[baton.AppStatus](ctx, c, "/api/v1/status")
}

// StatusOf returns the status of the named apps, in one call.
func (c *Client) StatusOf(ctx context.Context, apps ...string) ([]baton.AppStatus, error) {
	var out []baton.AppStatus
	_, err := c.do(ctx, "GET", "/api/v1/status?"+url.Values{"app": apps}.Encode(), nil, nil, &out)
	return out, err
}

// listPage is how many apps a client asks for in one call of a list.
const listPage = 200

// allPages reads every page of a paginated list at path, following the
// Link rel="next" header the server sets while more follow.
func allPages[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	out := []T{}
	next := path + "?limit=" + strconv.Itoa(listPage)
	for next != "" {
		var page []T
		resp, err := c.do(ctx, "GET", next, nil, nil, &page)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		next = nextLink(resp.Header.Get("Link"))
	}
	return out, nil
}

// nextLink is the target of a Link header's rel="next", or "".
func nextLink(h string) string {
	for _, l := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(l), ";")
		if ok && strings.Contains(params, `rel="next"`) && strings.HasPrefix(target, "<") && strings.HasSuffix(target, ">") {
			return target[1 : len(target)-1]
		}
	}
	return ""
}

// Freeze stops new deployments of an app.
func (c *Client) Freeze(ctx context.Context, app, reason string, cancelRunning bool) (baton.App, error) {
	var a baton.App
	b, _ := json.Marshal(map[string]any{"reason": reason, "cancel_running": cancelRunning})
	_, err := c.do(ctx, "POST", "/api/v1/apps/"+url.PathEscape(app)+"/freeze", strings.NewReader(string(b)), nil, &a)
	return a, err
}

// Unfreeze lets an app deploy again.
func (c *Client) Unfreeze(ctx context.Context, app string) (baton.App, error) {
	var a baton.App
	_, err := c.do(ctx, "POST", "/api/v1/apps/"+url.PathEscape(app)+"/unfreeze", nil, nil, &a)
	return a, err
}

// WaitIdle blocks until the app has nothing running or queued, or ctx ends.
func (c *Client) WaitIdle(ctx context.Context, app string) error {
	for {
		var res struct {
			Idle bool `json:"idle"`
		}
		if _, err := c.do(ctx, "GET", "/api/v1/apps/"+url.PathEscape(app)+"/wait?timeout=60s", nil, nil, &res); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if res.Idle {
			return nil
		}
	}
}

// NextDeployment waits up to a minute for a deployment of app accepted
// after seq; ok is false when none came.
func (c *Client) NextDeployment(ctx context.Context, app string, seq int64) (d baton.Deployment, ok bool, err error) {
	resp, err := c.do(ctx, "GET", fmt.Sprintf("/api/v1/apps/%s/deployments/next?after=%d", url.PathEscape(app), seq), nil, nil, &d)
	if err != nil {
		return d, false, err
	}
	return d, resp.StatusCode == http.StatusOK, nil
}

// RevisionLog returns the tail of a revision's instance output.
func (c *Client) RevisionLog(ctx context.Context, app, rev string) (string, error) {
	return c.text(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/revisions/"+url.PathEscape(rev)+"/log")
}

// Swap queues a swap of two slots.
func (c *Client) Swap(ctx context.Context, app, source, target string, preview bool, policy baton.Policy) (baton.Deployment, error) {
	return c.SwapWith(ctx, app, baton.SwapParams{Source: source, Target: target, Preview: preview}, policy)
}

// SwapWith queues a swap described in full (a preview's timeout, say).
func (c *Client) SwapWith(ctx context.Context, app string, sp baton.SwapParams, policy baton.Policy) (baton.Deployment, error) {
	var d baton.Deployment
	b, _ := json.Marshal(sp)
	_, err := c.do(ctx, "POST", "/api/v1/apps/"+url.PathEscape(app)+"/swaps?on_conflict="+string(policy), strings.NewReader(string(b)), nil, &d)
	return d, err
}

// CompleteSwap continues a swap awaiting completion and returns it finished.
func (c *Client) CompleteSwap(ctx context.Context, id string) (baton.Deployment, error) {
	var d baton.Deployment
	_, err := c.do(ctx, "POST", "/api/v1/swaps/"+url.PathEscape(id)+"/complete", nil, nil, &d)
	return d, err
}

// CreateSlot adds a slot to an app.
func (c *Client) CreateSlot(ctx context.Context, app, slot string) (baton.Slot, error) {
	var s baton.Slot
	b, _ := json.Marshal(map[string]string{"name": slot})
	_, err := c.do(ctx, "POST", "/api/v1/apps/"+url.PathEscape(app)+"/slots", strings.NewReader(string(b)), nil, &s)
	return s, err
}

// Slots lists an app's slots.
func (c *Client) Slots(ctx context.Context, app string) ([]baton.Slot, error) {
	var out []baton.Slot
	_, err := c.do(ctx, "GET", "/api/v1/apps/"+url.PathEscape(app)+"/slots", nil, nil, &out)
	return out, err
}

// DeleteSlot removes a slot.
func (c *Client) DeleteSlot(ctx context.Context, app, slot string) error {
	_, err := c.do(ctx, "DELETE", "/api/v1/apps/"+url.PathEscape(app)+"/slots/"+url.PathEscape(slot), nil, nil, nil)
	return err
}

// SetAutoSwap sets the slot a slot swaps into after each deployment ("" for none).
func (c *Client) SetAutoSwap(ctx context.Context, app, slot, target string) (baton.Slot, error) {
	var s baton.Slot
	b, _ := json.Marshal(map[string]string{"auto_swap_to": target})
	_, err := c.do(ctx, "PATCH", "/api/v1/apps/"+url.PathEscape(app)+"/slots/"+url.PathEscape(slot), strings.NewReader(string(b)), nil, &s)
	return s, err
}

// Settings lists a slot's settings (secrets masked).
func (c *Client) Settings(ctx context.Context, app, slot string) ([]baton.Setting, error) {
	var out []baton.Setting
	_, err := c.do(ctx, "GET", "/api/v1/apps/"+url.PathEscape(app)+"/slots/"+url.PathEscape(slot)+"/settings", nil, nil, &out)
	return out, err
}

// SetSettings queues a settings change and returns the operation applying it.
func (c *Client) SetSettings(ctx context.Context, app, slot string, settings []baton.Setting, policy baton.Policy) (baton.Deployment, error) {
	var d baton.Deployment
	b, _ := json.Marshal(map[string]any{"settings": settings})
	_, err := c.do(ctx, "PUT", "/api/v1/apps/"+url.PathEscape(app)+"/slots/"+url.PathEscape(slot)+"/settings?on_conflict="+string(policy), strings.NewReader(string(b)), nil, &d)
	return d, err
}

// UnsetSetting queues the removal of a setting.
func (c *Client) UnsetSetting(ctx context.Context, app, slot, key string, policy baton.Policy) (baton.Deployment, error) {
	var d baton.Deployment
	_, err := c.do(ctx, "DELETE", "/api/v1/apps/"+url.PathEscape(app)+"/slots/"+url.PathEscape(slot)+"/settings/"+url.PathEscape(key)+"?on_conflict="+string(policy), nil, nil, &d)
	return d, err
}

// Cancel cancels a deployment and returns it in its final state.
func (c *Client) Cancel(ctx context.Context, id, reason string) (baton.Deployment, error) {
	var d baton.Deployment
	b, _ := json.Marshal(map[string]string{"reason": reason})
	_, err := c.do(ctx, "POST", "/api/v1/deployments/"+url.PathEscape(id)+"/cancel", strings.NewReader(string(b)), nil, &d)
	return d, err
}

// Resources lists shared resources with their holders and waiters.
func (c *Client) Resources(ctx context.Context) ([]baton.ResourceStatus, error) {
	var out []baton.ResourceStatus
	_, err := c.do(ctx, "GET", "/api/v1/resources", nil, nil, &out)
	return out, err
}

// Hosts lists the hosts sharing the store, with state, apps and instances.
func (c *Client) Hosts(ctx context.Context) ([]baton.Host, error) {
	var out []baton.Host
	_, err := c.do(ctx, "GET", "/api/v1/hosts", nil, nil, &out)
	return out, err
}

// Controllers lists the controllers sharing the store.
func (c *Client) Controllers(ctx context.Context) ([]baton.Controller, error) {
	var out []baton.Controller
	_, err := c.do(ctx, "GET", "/api/v1/controllers", nil, nil, &out)
	return out, err
}

// Locks lists the recorded leases.
func (c *Client) Locks(ctx context.Context) ([]baton.Lease, error) {
	var out []baton.Lease
	_, err := c.do(ctx, "GET", "/api/v1/locks", nil, nil, &out)
	return out, err
}

// BreakLock breaks an app's lock by hand.
func (c *Client) BreakLock(ctx context.Context, app, reason string) (baton.Lease, error) {
	var l baton.Lease
	b, _ := json.Marshal(map[string]string{"reason": reason})
	_, err := c.do(ctx, "POST", "/api/v1/apps/"+url.PathEscape(app)+"/lock/break", strings.NewReader(string(b)), nil, &l)
	return l, err
}

// Log returns a deployment's log as plain text.
func (c *Client) Log(ctx context.Context, id string) (string, error) {
	return c.text(ctx, "/api/v1/deployments/"+url.PathEscape(id)+"/log")
}

// text GETs a plain-text resource.
func (c *Client) text(ctx context.Context, path string) (string, error) {
	req, err := c.newRequest(ctx, "GET", path, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", baton.Errorf(baton.EUNAVAILABLE, "cannot reach the baton server at %s: %v", c.BaseURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return "", decodeProblem(resp)
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Event is one Server-Sent Event of a deployment's log stream.
type Event struct {
	ID         string
	Name       string // "log", "deployment" or "end"
	Data       string
	Deployment *baton.Deployment // for "deployment" and "end"
}

// Follow streams a deployment's log events to fn until the deployment ends
// (returning it) or ctx is done. It reconnects with Last-Event-ID if the
// stream breaks.
func (c *Client) Follow(ctx context.Context, id string, fn func(Event)) (baton.Deployment, error) {
	lastID := ""
	var d baton.Deployment
	err := reconnect(ctx, func() (bool, error) {
		var done bool
		var err error
		d, done, err = c.followOnce(ctx, id, &lastID, fn)
		return done, err
	})
	return d, err
}

// maxReconnects bounds how often a stream is resumed in a row.
const maxReconnects = 30

// reconnect runs one connection of a stream (once) until it reports done
// or fails with an error a retry cannot mend (anything but unavailable
// or internal), resuming after a second, at most maxReconnects times;
// once resumes where the last connection stopped (Last-Event-ID). When
// ctx ends it returns ctx's error.
func reconnect(ctx context.Context, once func() (done bool, err error)) error {
	for attempt := 0; ; attempt++ {
		done, err := once()
		if done || ctx.Err() != nil {
			return err
		}
		if code := baton.ErrorCode(err); err != nil && code != baton.EUNAVAILABLE && code != baton.EINTERNAL {
			return err
		}
		if attempt >= maxReconnects {
			return err
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (c *Client) followOnce(ctx context.Context, id string, lastID *string, fn func(Event)) (baton.Deployment, bool, error) {
	var d baton.Deployment
	req, err := c.newRequest(ctx, "GET", "/api/v1/deployments/"+url.PathEscape(id)+"/log", nil)
	if err != nil {
		return d, true, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return d, false, baton.Errorf(baton.EUNAVAILABLE, "cannot reach the baton server at %s: %v", c.BaseURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return d, true, decodeProblem(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var ev Event
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Name == "" && ev.Data == "" {
				continue
			}
			if ev.ID != "" {
				*lastID = ev.ID
			}
			if ev.Name == "deployment" || ev.Name == "end" {
				var dd baton.Deployment
				if json.Unmarshal([]byte(ev.Data), &dd) == nil {
					ev.Deployment = &dd
					d = dd
				}
			}
			fn(ev)
			if ev.Name == "end" {
				return d, true, nil
			}
			ev = Event{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			ev.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.Name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.Data = line[6:]
		}
	}
	return d, false, baton.Errorf(baton.EUNAVAILABLE, "log stream of %s ended early", id)
}
