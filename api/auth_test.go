package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/internal/poll"
	"github.com/batonhq/baton/server"
)

// callers are the credentials every route is tried with, in this order:
// refusals first, so that nothing an allowed call changed can hide a
// change a refused one made.
var callers = []string{"none", "read", "other", "deploy", "admin"}

// want is the expected status of a route for each caller: no token, a
// read token, a deploy token for another app, a deploy token for every
// app, the admin token.
type want struct{ none, read, other, deploy, admin int }

func (w want) of(caller string) int {
	return map[string]int{"none": w.none, "read": w.read, "other": w.other, "deploy": w.deploy, "admin": w.admin}[caller]
}

// Shorthands for the usual rows: everyone, read, deploy or admin may call.
func public(s int) want       { return want{s, s, s, s, s} }
func reader(s int) want       { return want{401, s, s, s, s} }
func deployer(s, s2 int) want { return want{401, 403, 403, s, s2} }
func admin(s int) want        { return want{401, 403, 403, 403, s} }

// authEnv is an in-process baton with apps hello (slots production and
// staging, one failed deployment) and other, and a token per caller.
type authEnv struct {
	t      *testing.T
	srv    *server.Server
	base   string
	tokens map[string]string
	// dep is hello's deployment, for the {id} routes.
	dep string
}

// newAuthEnv opens an in-process baton with cfg on a copy of the template
// data directory (authTemplate), closed at the test's end.
func newAuthEnv(t *testing.T, cfg server.Config) *authEnv {
	t.Helper()
	authTemplate.once.Do(func() { authTemplate.snap, authTemplate.err = makeAuthSnapshot() })
	snap := authTemplate.snap
	if authTemplate.err != nil {
		t.Fatalf("make the data directory authEnvs start from: %v", authTemplate.err)
	}
	cfg.DataDir, cfg.APIAddr, cfg.ProxyAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	if err := copyTree(snap.dir, cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	srv, err := server.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &authEnv{t: t, srv: srv, base: "http://" + srv.APIAddr(), tokens: maps.Clone(snap.tokens), dep: snap.dep}
}

// authSnapshot is a data directory in the state an authEnv starts from,
// left by a baton that made it and closed, with that state's tokens and
// deployment.
type authSnapshot struct {
	dir    string
	tokens map[string]string
	dep    string
}

// authTemplate is the snapshot every authEnv opens a copy of, made once
// (TestMain removes it): opening an empty directory migrates the store,
// which under the race detector is most of an env's cost, and
// TestRouteScopes makes one env per route.
var authTemplate struct {
	once sync.Once
	snap authSnapshot
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if authTemplate.snap.dir != "" {
		os.RemoveAll(authTemplate.snap.dir)
	}
	os.Exit(code)
}

// makeAuthSnapshot opens a baton on a new directory, makes the apps, slot,
// tokens and failed deployment an authEnv has, and closes it.
func makeAuthSnapshot() (snap authSnapshot, err error) {
	if snap.dir, err = os.MkdirTemp("", "baton-api-authenv-"); err != nil {
		return snap, err
	}
	srv, err := server.Open(context.Background(), server.Config{DataDir: snap.dir, APIAddr: "127.0.0.1:0", ProxyAddr: "127.0.0.1:0"})
	if err != nil {
		return snap, err
	}
	defer func() {
		if cerr := srv.Close(); err == nil {
			err = cerr
		}
	}()
	secret, err := os.ReadFile(filepath.Join(snap.dir, "admin.token"))
	if err != nil {
		return snap, err
	}
	snap.tokens = map[string]string{"admin": strings.TrimSpace(string(secret))}
	ctx := context.Background()
	c := api.NewClient("http://" + srv.APIAddr())
	c.Token = snap.tokens["admin"]
	for _, app := range []string{"hello", "other"} {
		if _, err := c.CreateApp(ctx, app); err != nil {
			return snap, err
		}
	}
	if _, err := c.CreateSlot(ctx, "hello", "staging"); err != nil {
		return snap, err
	}
	for name, req := range map[string]api.TokenRequest{
		"read":   {Name: "reader", Scope: baton.ScopeRead},
		"deploy": {Name: "deployer", Scope: baton.ScopeDeploy},
		"other":  {Name: "other-deployer", Scope: baton.ScopeDeploy, Apps: []string{"other"}},
	} {
		tok, err := c.CreateToken(ctx, req)
		if err != nil {
			return snap, err
		}
		snap.tokens[name] = tok.Secret
	}
	d, err := c.Deploy(ctx, "hello", strings.NewReader(zipBody), api.DeployOptions{ContentType: "application/zip"})
	if err != nil {
		return snap, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := c.Follow(wctx, d.ID, func(api.Event) {}); err != nil {
		return snap, err
	}
	snap.dep = d.ID
	// The lease goes just after the final state: wait for it, so the
	// state refusals are compared with is settled.
	for deadline := time.Now().Add(time.Minute); ; {
		ls, err := c.Locks(ctx)
		if err != nil {
			return snap, err
		}
		if len(ls) == 0 {
			return snap, nil
		}
		if time.Now().After(deadline) {
			return snap, fmt.Errorf("the failed deployment still holds %+v", ls)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// copyTree copies the files and folders under src into dst, with their
// permissions (baton refuses a secret key others can read).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(to, info.Mode().Perm())
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(to, data, info.Mode().Perm())
		}
		return fmt.Errorf("copy %s: not a file or folder", path)
	})
}

func (e *authEnv) client(caller string) *api.Client {
	c := api.NewClient(e.base)
	c.Token = e.tokens[caller]
	return c
}

// call sends one request as caller and returns the answer's status and
// headers.
func (e *authEnv) call(caller, method, path, body string) (int, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+strings.ReplaceAll(path, "{dep}", e.dep), rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	} else if body != "" {
		req.Header.Set("Content-Type", "application/zip")
	}
	if tok := e.tokens[caller]; tok != "" {
		if strings.HasPrefix(path, "/git/") || strings.HasPrefix(path, "/kudu/") {
			req.SetBasicAuth("$hello", tok)
		} else {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// state is what a refused request must not change.
type state struct {
	Apps        []baton.App
	Deployments map[string][]string
	Settings    map[string][]baton.Setting
	Tokens      []string
	Locks       []baton.Lease
}

func (e *authEnv) state() state {
	e.t.Helper()
	ctx := context.Background()
	c := e.client("admin")
	var st state
	var err error
	if st.Apps, err = c.Apps(ctx); err != nil {
		e.t.Fatal(err)
	}
	st.Deployments, st.Settings = map[string][]string{}, map[string][]baton.Setting{}
	for _, a := range st.Apps {
		ds, err := c.Deployments(ctx, a.Name, 1000)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, d := range ds {
			st.Deployments[a.Name] = append(st.Deployments[a.Name], d.ID+" "+string(d.State))
		}
		for _, sl := range a.Slots {
			if st.Settings[a.Name+"/"+sl.Name], err = c.Settings(ctx, a.Name, sl.Name); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	ts, err := c.Tokens(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, t := range ts {
		st.Tokens = append(st.Tokens, t.Name+" "+string(t.Scope))
	}
	if st.Locks, err = c.Locks(ctx); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// zipBody is an artifact whose deployment fails fast: its manifest does
// not parse.
var zipBody = func() string {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("baton.toml")
	w.Write([]byte("[run\n"))
	zw.Close()
	return buf.String()
}()

// routeTable is every route of the API listener with a request to it and
// the status each caller gets.
var routeTable = []struct {
	pattern, method, path, body string
	want                        want
}{
	{"GET /healthz", "GET", "/healthz", "", public(200)},
	{"GET /readyz", "GET", "/readyz", "", public(200)},
	{"GET /{$}", "GET", "/", "", public(200)},
	{"GET /ui/", "GET", "/ui/app.css", "", public(200)},
	{"GET /metrics", "GET", "/metrics", "", reader(200)},

	{"GET /api/v1/whoami", "GET", "/api/v1/whoami", "", reader(200)},
	{"GET /api/v1/apps", "GET", "/api/v1/apps", "", reader(200)},
	{"GET /api/v1/apps/{app}", "GET", "/api/v1/apps/hello", "", reader(200)},
	{"GET /api/v1/apps/{app}/deployments", "GET", "/api/v1/apps/hello/deployments", "", reader(200)},
	{"GET /api/v1/apps/{app}/revisions", "GET", "/api/v1/apps/hello/revisions", "", reader(200)},
	{"GET /api/v1/apps/{app}/revisions/{rev}", "GET", "/api/v1/apps/hello/revisions/hello--000001", "", reader(404)},
	{"GET /api/v1/apps/{app}/revisions/{rev}/log", "GET", "/api/v1/apps/hello/revisions/hello--000001/log", "", reader(404)},
	{"GET /api/v1/apps/{app}/logs", "GET", "/api/v1/apps/hello/logs?since=10m", "", reader(200)},
	{"GET /api/v1/apps/{app}/traffic", "GET", "/api/v1/apps/hello/traffic?window=1m", "", reader(200)},
	{"GET /api/v1/apps/{app}/events", "GET", "/api/v1/apps/hello/events", "", reader(200)},
	{"GET /api/v1/events", "GET", "/api/v1/events?after=0", "", reader(200)},
	{"GET /api/v1/status", "GET", "/api/v1/status", "", reader(200)},
	{"GET /api/v1/apps/{app}/status", "GET", "/api/v1/apps/hello/status", "", reader(200)},
	{"GET /api/v1/apps/{app}/wait", "GET", "/api/v1/apps/hello/wait?timeout=1s", "", reader(200)},
	{"GET /api/v1/apps/{app}/deployments/next", "GET", "/api/v1/apps/hello/deployments/next?after=0", "", reader(200)},
	{"GET /api/v1/apps/{app}/slots", "GET", "/api/v1/apps/hello/slots", "", reader(200)},
	{"GET /api/v1/apps/{app}/slots/{slot}/settings", "GET", "/api/v1/apps/hello/slots/production/settings", "", reader(200)},
	{"GET /api/v1/swaps/{id}", "GET", "/api/v1/swaps/{dep}", "", reader(404)},
	{"GET /api/v1/deployments/{id}", "GET", "/api/v1/deployments/{dep}", "", reader(200)},
	{"GET /api/v1/deployments/{id}/log", "GET", "/api/v1/deployments/{dep}/log", "", reader(200)},
	{"GET /api/v1/locks", "GET", "/api/v1/locks", "", reader(200)},
	{"GET /api/v1/resources", "GET", "/api/v1/resources", "", reader(200)},
	{"GET /api/v1/controllers", "GET", "/api/v1/controllers", "", reader(200)},
	{"GET /api/v1/hosts", "GET", "/api/v1/hosts", "", reader(200)},
	{"GET /api/v1/domains", "GET", "/api/v1/domains", "", reader(200)},
	{"GET /api/v1/apps/{app}/domains", "GET", "/api/v1/apps/hello/domains", "", reader(200)},
	{"/api/", "GET", "/api/v1/nothing-here", "", reader(404)},

	{"POST /api/v1/apps/{app}/slots/{slot}/deployments", "POST", "/api/v1/apps/hello/slots/production/deployments", zipBody, deployer(202, 202)},
	{"POST /api/v1/apps/{app}/deployments", "POST", "/api/v1/apps/hello/deployments", zipBody, deployer(202, 202)},
	{"POST /api/v1/deployments/{id}/cancel", "POST", "/api/v1/deployments/{dep}/cancel", "", deployer(409, 409)},
	{"PATCH /api/v1/apps/{app}", "PATCH", "/api/v1/apps/hello", `{"revision_mode":"multiple"}`, deployer(200, 200)},
	{"POST /api/v1/apps/{app}/revisions/{rev}/activate", "POST", "/api/v1/apps/hello/revisions/hello--000001/activate", "", deployer(404, 404)},
	{"POST /api/v1/apps/{app}/revisions/{rev}/deactivate", "POST", "/api/v1/apps/hello/revisions/hello--000001/deactivate", "", deployer(404, 404)},
	{"POST /api/v1/apps/{app}/revisions/{rev}/restart", "POST", "/api/v1/apps/hello/revisions/hello--000001/restart", "", deployer(404, 404)},
	{"PUT /api/v1/apps/{app}/slots/{slot}/traffic", "PUT", "/api/v1/apps/hello/slots/production/traffic", `{"weights":{"hello--000001":100}}`, deployer(409, 409)},
	{"POST /api/v1/apps/{app}/stabilize", "POST", "/api/v1/apps/hello/stabilize", `{}`, deployer(409, 409)},
	{"POST /api/v1/apps/{app}/slots/{slot}/rollback", "POST", "/api/v1/apps/hello/slots/production/rollback", `{}`, deployer(422, 422)},
	{"POST /api/v1/apps/{app}/scale", "POST", "/api/v1/apps/hello/scale", `{"instances":2}`, deployer(202, 202)},
	{"POST /api/v1/apps/{app}/swaps", "POST", "/api/v1/apps/hello/swaps", `{"source":"staging","target":"production"}`, deployer(202, 202)},
	{"POST /api/v1/swaps/{id}/complete", "POST", "/api/v1/swaps/{dep}/complete", "", deployer(404, 404)},
	{"POST /api/v1/swaps/{id}/cancel", "POST", "/api/v1/swaps/{dep}/cancel", "", deployer(404, 404)},
	{"POST /api/v1/apps/{app}/slots", "POST", "/api/v1/apps/hello/slots", `{"name":"qa"}`, deployer(201, 409)},
	{"PATCH /api/v1/apps/{app}/slots/{slot}", "PATCH", "/api/v1/apps/hello/slots/staging", `{"auto_swap_to":"production"}`, deployer(200, 200)},
	{"PUT /api/v1/apps/{app}/slots/{slot}/settings", "PUT", "/api/v1/apps/hello/slots/production/settings", `{"settings":[{"key":"A","value":"1"}]}`, deployer(202, 202)},
	{"PUT /api/v1/apps/{app}/slots/{slot}/settings/{key}", "PUT", "/api/v1/apps/hello/slots/production/settings/B", `{"value":"2","secret":true}`, deployer(202, 202)},
	{"DELETE /api/v1/apps/{app}/slots/{slot}/settings/{key}", "DELETE", "/api/v1/apps/hello/slots/production/settings/A", "", deployer(202, 202)},
	{"POST /api/v1/apps/{app}/domains", "POST", "/api/v1/apps/hello/domains", `{"name":"shop.example.com","slot":"staging"}`, deployer(201, 409)},
	{"DELETE /api/v1/apps/{app}/domains/{domain}", "DELETE", "/api/v1/apps/hello/domains/shop.example.com", "", deployer(404, 404)},

	{"POST /api/v1/apps", "POST", "/api/v1/apps", `{"name":"fresh"}`, admin(201)},
	{"DELETE /api/v1/apps/{app}", "DELETE", "/api/v1/apps/hello", "", admin(204)},
	{"DELETE /api/v1/apps/{app}/slots/{slot}", "DELETE", "/api/v1/apps/hello/slots/staging", "", admin(204)},
	{"POST /api/v1/apps/{app}/freeze", "POST", "/api/v1/apps/hello/freeze", `{"reason":"incident"}`, admin(200)},
	{"POST /api/v1/apps/{app}/unfreeze", "POST", "/api/v1/apps/hello/unfreeze", "", admin(200)},
	{"POST /api/v1/apps/{app}/lock/break", "POST", "/api/v1/apps/hello/lock/break", `{"reason":"test"}`, admin(404)},
	{"GET /api/v1/audit", "GET", "/api/v1/audit", "", admin(200)},
	{"POST /api/v1/gc", "POST", "/api/v1/gc?dry_run=true", "", admin(200)},
	{"POST /api/v1/hosts/{id}/drain", "POST", "/api/v1/hosts/h-none/drain", "", admin(404)},
	{"POST /api/v1/hosts/{id}/undrain", "POST", "/api/v1/hosts/h-none/undrain", "", admin(404)},
	{"POST /api/v1/tokens", "POST", "/api/v1/tokens", `{"name":"fresh","scope":"read"}`, admin(201)},
	{"GET /api/v1/tokens", "GET", "/api/v1/tokens", "", admin(200)},
	{"DELETE /api/v1/tokens/{name}", "DELETE", "/api/v1/tokens/reader", "", admin(204)},
	{"POST /api/v1/backup", "POST", "/api/v1/backup", `{}`, admin(200)},
	{"POST /api/v1/hooks", "POST", "/api/v1/hooks", `{"url":"http://127.0.0.1:9/hook"}`, admin(201)},
	{"GET /api/v1/hooks", "GET", "/api/v1/hooks", "", admin(200)},
	{"DELETE /api/v1/hooks/{id}", "DELETE", "/api/v1/hooks/h-none", "", admin(404)},
	{"POST /api/v1/hooks/{id}/test", "POST", "/api/v1/hooks/h-none/test", "", admin(404)},
	{"GET /api/v1/hooks/deliveries", "GET", "/api/v1/hooks/deliveries", "", admin(200)},
	{"GET /api/v1/hooks/{id}/deliveries", "GET", "/api/v1/hooks/h-none/deliveries", "", admin(404)},

	// Kudu and git check the token themselves (HTTP Basic password).
	{"/kudu/{app}/", "GET", "/kudu/hello/api/deployments", "", reader(200)},
	{"/kudu/{app}/", "POST", "/kudu/hello/api/zipdeploy?isAsync=true", zipBody, deployer(202, 202)},
	{"/git/", "GET", "/git/hello.git/info/refs?service=git-upload-pack", "", reader(200)},
	{"/git/", "GET", "/git/hello.git/info/refs?service=git-receive-pack", "", deployer(200, 200)},
}

// TestRouteScopes calls every route as every caller: the status each
// gets, a challenge with each 401, and a refusal changes nothing.
func TestRouteScopes(t *testing.T) {
	covered := map[string]bool{}
	for _, rt := range routeTable {
		covered[rt.pattern] = true
	}
	for _, p := range api.RoutePatterns() {
		if !covered[p] {
			t.Errorf("route %s is not in the table", p)
		}
	}
	for _, rt := range routeTable {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			t.Parallel()
			e := newAuthEnv(t, server.Config{})
			before := e.state()
			for _, caller := range callers {
				status, h := e.call(caller, rt.method, rt.path, rt.body)
				if want := rt.want.of(caller); status != want {
					t.Errorf("%s: status %d, want %d", caller, status, want)
				}
				switch status {
				case http.StatusUnauthorized:
					if !strings.Contains(h.Get("WWW-Authenticate"), "realm=") {
						t.Errorf("%s: 401 without a challenge: %v", caller, h)
					}
				case http.StatusForbidden:
				default:
					continue
				}
				if after := e.state(); !reflect.DeepEqual(before, after) {
					t.Errorf("%s: a refused %s %s changed state:\nbefore %+v\nafter  %+v", caller, rt.method, rt.path, before, after)
				}
			}
		})
	}
}

// TestForbiddenNamesScopeAndApp: a 403 names the scope missing, and the
// app for a deploy token limited to other apps.
func TestForbiddenNamesScopeAndApp(t *testing.T) {
	e := newAuthEnv(t, server.Config{})
	ctx := context.Background()
	_, err := e.client("read").CreateApp(ctx, "x")
	if baton.ErrorCode(err) != baton.EFORBIDDEN || !strings.Contains(baton.ErrorMessage(err), "needs scope admin") {
		t.Fatalf("read token creating an app: %v", err)
	}
	_, err = e.client("other").Cancel(ctx, e.dep, "")
	if baton.ErrorCode(err) != baton.EFORBIDDEN || !strings.Contains(baton.ErrorMessage(err), "deploy for app hello") {
		t.Fatalf("deploy token of another app cancelling: %v", err)
	}
	// The refusal is in the audit log, under the token's name.
	es, err := e.client("admin").Audit(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(es, func(a baton.AuditEntry) bool {
		return a.Actor == "other-deployer" && a.Action == "denied" && strings.HasPrefix(a.Outcome, "refused")
	}) {
		t.Fatalf("audit log lacks the refusal: %+v", es)
	}
}

// TestBadTokens: a token that is not one, a revoked one and an expired one
// all get 401 with an invalid_token challenge.
func TestBadTokens(t *testing.T) {
	e := newAuthEnv(t, server.Config{})
	ctx := context.Background()
	admin := e.client("admin")
	short, err := admin.CreateToken(ctx, api.TokenRequest{Name: "short", Scope: baton.ScopeRead, ExpiresIn: "1ms"})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := admin.CreateToken(ctx, api.TokenRequest{Name: "gone", Scope: baton.ScopeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.RevokeToken(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	random, _ := baton.NewTokenSecret()
	for name, tok := range map[string]string{"garbage": "hunter2", "unknown": random, "expired": short.Secret, "revoked": gone.Secret} {
		e.tokens[name] = tok
		status, h := e.call(name, "GET", "/api/v1/apps", "")
		if status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s token: %d %v", name, status, h)
		}
	}
	// The last admin token cannot be revoked: nobody could manage tokens.
	if err := admin.RevokeToken(ctx, "admin"); baton.ErrorCode(err) != baton.ECONFLICT {
		t.Fatalf("revoking the last admin token: %v", err)
	}
	// Listing shows no secret or hash.
	ts, err := admin.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ts)
	for _, secret := range []string{e.tokens["admin"], baton.HashToken(e.tokens["admin"])} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("token list shows a secret or hash: %s", b)
		}
	}
}

// TestFailedAuthRateLimit: after FailLimit bad tokens an address gets 429
// with Retry-After, also with a good token, until the bucket refills.
func TestFailedAuthRateLimit(t *testing.T) {
	e := newAuthEnv(t, server.Config{AuthFailLimit: 3})
	random, _ := baton.NewTokenSecret()
	e.tokens["bad"] = random
	for i := 0; i < 3; i++ {
		if status, _ := e.call("bad", "GET", "/api/v1/apps", ""); status != 401 {
			t.Fatalf("bad token %d: %d", i+1, status)
		}
	}
	status, h := e.call("bad", "GET", "/api/v1/apps", "")
	if status != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("4th bad token: %d %v", status, h)
	}
	if status, _ := e.call("admin", "GET", "/api/v1/apps", ""); status != 429 {
		t.Fatalf("good token from a blocked address: %d", status)
	}
	// Requests without credentials are not attempts (git sends one before
	// every authenticated request): they count nothing and still get 401.
	if status, _ := e.call("none", "GET", "/api/v1/apps", ""); status != 401 {
		t.Fatalf("no token from a blocked address: %d", status)
	}
	if status, _ := e.call("none", "GET", "/healthz", ""); status != 200 {
		t.Fatalf("/healthz from a blocked address: %d", status)
	}
}

// TestRefusedUploadAnsweredAtOnce: an upload refused before its body is
// read gets its answer while the client is still sending the body. (Before,
// net/http read up to 256 KiB more of an unread streamed body before it
// answered: a client that waits for the answer, as TestConcurrentUploadLimit's
// first upload does when it loses the race for the slot, waited forever.)
func TestRefusedUploadAnsweredAtOnce(t *testing.T) {
	e := newAuthEnv(t, server.Config{})
	for _, caller := range []string{"read", "none"} { // 403, 401
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := e.client(caller).Deploy(context.Background(), "hello", pr, api.DeployOptions{ContentType: "application/zip"})
			done <- err
		}()
		if _, err := pw.Write([]byte("PK")); err != nil { // then nothing more, and no end
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if code := baton.ErrorCode(err); code != baton.EFORBIDDEN && code != baton.EUNAUTHORIZED {
				t.Errorf("%s: upload answered %v, want it refused", caller, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s: no answer to a refused upload within 30s while its body stays open", caller)
			pw.Close()
			<-done // the body ended: the upload returns
		}
		pw.Close()
	}
}

// TestConcurrentUploadLimit: with every upload slot taken, another upload
// waits for one, then gets 429; reads go on.
func TestConcurrentUploadLimit(t *testing.T) {
	e := newAuthEnv(t, server.Config{MaxUploads: 1, UploadWait: 50 * time.Millisecond})
	// The first upload holds its slot while its body streams. It must
	// reach the server first: on a loaded machine a second request can
	// take the slot before the first's handler runs, and the first is then
	// the one refused (it ends); it starts again then.
	var (
		pw   *io.PipeWriter
		done chan error
	)
	startFirst := func() {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		done = make(chan error, 1)
		go func() {
			_, err := e.client("deploy").Deploy(context.Background(), "hello", pr, api.DeployOptions{ContentType: "application/zip"})
			done <- err
		}()
		if _, err := pw.Write([]byte("PK")); err != nil {
			t.Fatal(err)
		}
	}
	startFirst()
	defer func() { pw.Close() }()
	defer func() {
		if !t.Failed() {
			return
		}
		// Where is the first upload? (Seen in whole-suite runs under
		// load, never alone: the goroutines of the API's connections and
		// handlers, and of the clients' connections, say where it waits.)
		buf := make([]byte, 8<<20)
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "baton/api.") || strings.Contains(g, "net/http.(*conn).serve") || strings.Contains(g, "net/http.(*persistConn)") {
				t.Log(g)
			}
		}
	}()
	// Not back to back (poll.Until waits between tries): each second
	// upload that gets the slot holds it while it is stored, and a first
	// upload still on its way to the handler needs a gap to take it.
	poll.Until(t, 30*time.Second, "a second upload refused with 429 while the first streams", func() bool {
		status, h := e.call("deploy", "POST", "/api/v1/apps/hello/deployments", zipBody)
		if status == 429 {
			if h.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			return true
		}
		select {
		case err := <-done:
			t.Logf("the first upload lost the race for the slot (%v); again", err)
			startFirst()
		default:
		}
		return false
	})
	if status, _ := e.call("read", "GET", "/api/v1/apps", ""); status != 200 {
		t.Fatalf("read during uploads: %d", status)
	}
	pw.CloseWithError(fmt.Errorf("client gave up"))
	<-done
	// The slot is free again, once the server has seen the first body end
	// (the client returns before that; a loaded run's server saw it more
	// than UploadWait later, and answered 429 to an upload right after).
	poll.Until(t, 30*time.Second, "an upload after the first ended to be accepted", func() bool {
		status, _ := e.call("deploy", "POST", "/api/v1/apps/hello/deployments", zipBody)
		if status != 202 && status != 429 {
			t.Fatalf("upload after the first ended: %d, want 202 (or 429 until the server sees it end)", status)
		}
		return status == 202
	})
}
