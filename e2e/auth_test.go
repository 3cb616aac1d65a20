package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/gitdeploy"
)

// TestAuthAdminTokenBootstrap: a fresh baton writes its admin token to
// DATA/admin.token (0600) and logs where, never what; the CLI on the same
// machine finds it; without a token the CLI says how to get one; a
// restart keeps the token.
func TestAuthAdminTokenBootstrap(t *testing.T) {
	t.Parallel()
	b := startBatonFresh(t)
	path := filepath.Join(b.data, "admin.token")
	for _, f := range []string{path, filepath.Join(b.data, "secret.key")} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}
	if !baton.WellFormedToken(b.token) || b.token == adminToken {
		t.Fatalf("admin token %q: not a fresh baton token", b.token)
	}
	if out := b.output(); !strings.Contains(out, path) || strings.Contains(out, b.token) {
		t.Fatalf("the log must name the token file and not hold the token:\n%s", out)
	}

	out, code := runCLIEnv(t, b, []string{"BATON_TOKEN=", "BATON_DATA=" + b.data}, "tokens", "whoami")
	if code != 0 || !strings.Contains(out, "token admin (scope admin), from "+path) {
		t.Fatalf("CLI with the local token file: %d\n%s", code, out)
	}
	out, code = runCLIEnv(t, b, []string{"BATON_TOKEN=", "BATON_DATA=" + t.TempDir()}, "apps", "list")
	if code != 1 || !strings.Contains(out, "needs an access token") || !strings.Contains(out, "hint: no token was sent") {
		t.Fatalf("CLI without a token: %d\n%s", code, out)
	}

	b.restart(syscall.SIGTERM)
	if got, err := os.ReadFile(path); err != nil || strings.TrimSpace(string(got)) != b.token {
		t.Fatalf("admin token file after a restart: %q, %v", got, err)
	}
	if out, code := runCLI(t, b, "tokens", "list"); code != 0 || strings.Count(out, "scope admin") != 1 {
		t.Fatalf("tokens after a restart: %d\n%s", code, out)
	}
}

// TestAuthCLITokens: an admin creates a deploy token for one app; it
// deploys that app, is refused (403, naming scope and app) for another
// app and for admin work; the audit log names it; once revoked it is
// refused (401).
func TestAuthCLITokens(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	for _, app := range []string{"hello", "other"} {
		if out, code := runCLI(t, b, "apps", "create", app); code != 0 {
			t.Fatalf("apps create %s: %d\n%s", app, code, out)
		}
	}
	out, code := runCLI(t, b, "tokens", "create", "ci", "--scope", "deploy", "--app", "hello", "--expires", "720h")
	ci := tokenIn(out)
	if code != 0 || ci == "" || !strings.Contains(out, "scope deploy for hello, expires") {
		t.Fatalf("tokens create: %d\n%s", code, out)
	}
	if out, code := runCLI(t, b, "tokens", "list"); code != 0 || !strings.Contains(out, "ci") || strings.Contains(out, ci) {
		t.Fatalf("tokens list: %d\n%s", code, out)
	}
	asCI := []string{"BATON_TOKEN=" + ci}
	if out, code := runCLIEnv(t, b, asCI, "deploy", "hello", appDir(t, "v1"), "--wait"); code != 0 {
		t.Fatalf("deploy with the ci token: %d\n%s", code, out)
	}
	out, code = runCLIEnv(t, b, asCI, "deploy", "other", appDir(t, "v1"), "--wait")
	if code != 1 || !strings.Contains(out, "needs scope deploy for app other") {
		t.Fatalf("deploy of another app: %d\n%s", code, out)
	}
	if ds, _ := b.client().Deployments(context.Background(), "other", 10); len(ds) != 0 {
		t.Fatalf("the refused deploy was recorded: %+v", ds)
	}
	out, code = runCLIEnv(t, b, asCI, "freeze", "hello", "--reason", "mine now")
	if code != 1 || !strings.Contains(out, "needs scope admin") {
		t.Fatalf("freeze with a deploy token: %d\n%s", code, out)
	}

	out, code = runCLI(t, b, "audit", "--json")
	var es []baton.AuditEntry
	if code != 0 || json.Unmarshal([]byte(out), &es) != nil {
		t.Fatalf("audit --json: %d\n%s", code, out)
	}
	for _, want := range []baton.AuditEntry{
		{Actor: "admin", Action: "token.create", Target: "ci"},
		{Actor: "ci", Action: "deploy", Target: "hello/production"},
		{Actor: "ci", Action: "denied", Target: "POST /api/v1/apps/other/slots/production/deployments"},
		{Actor: "ci", Action: "denied", Target: "POST /api/v1/apps/hello/freeze"},
	} {
		if !slices.ContainsFunc(es, func(e baton.AuditEntry) bool {
			return e.Actor == want.Actor && e.Action == want.Action && strings.HasPrefix(e.Target, want.Target) && strings.HasPrefix(e.Remote, "127.0.0.1:")
		}) {
			t.Errorf("audit log lacks %s %s %s:\n%s", want.Actor, want.Action, want.Target, out)
		}
	}
	if out, code := runCLI(t, b, "audit"); code != 0 || !strings.Contains(out, "token.create") {
		t.Fatalf("audit: %d\n%s", code, out)
	}

	if out, code := runCLI(t, b, "tokens", "revoke", "ci"); code != 0 {
		t.Fatalf("tokens revoke: %d\n%s", code, out)
	}
	out, code = runCLIEnv(t, b, asCI, "apps", "list")
	if code != 1 || !strings.Contains(out, "not valid") || !strings.Contains(out, "the token from BATON_TOKEN was refused") {
		t.Fatalf("revoked token: %d\n%s", code, out)
	}
}

// tokenIn returns the token secret printed in out.
func tokenIn(out string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if baton.WellFormedToken(strings.TrimSpace(line)) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// createToken makes a token through the API with b's admin token.
func createToken(t testing.TB, b *batonProc, name string, scope baton.Scope, apps ...string) string {
	t.Helper()
	tok, err := b.client().CreateToken(context.Background(), api.TokenRequest{Name: name, Scope: scope, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Secret
}

// TestAuthKudu: the Kudu API takes a token as the Basic password (any
// user) or as a Bearer token; reading needs scope read, deploying scope
// deploy for the app.
func TestAuthKudu(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	if _, err := b.client().CreateApp(context.Background(), "kd"); err != nil {
		t.Fatal(err)
	}
	deployer := createToken(t, b, "pipeline", baton.ScopeDeploy, "kd")
	reader := createToken(t, b, "viewer", baton.ScopeRead)
	scm := "http://" + b.apiAddr + "/kudu/kd"
	zipFile := func(v string) string {
		f := filepath.Join(t.TempDir(), "app.zip")
		if err := os.WriteFile(f, kuduZip(t, kuduAppDir(t, v)), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if res := kuduCurl(t, "-X", "POST", "-u", "$kd:"+deployer, "--data-binary", "@"+zipFile("v1"), scm+"/api/zipdeploy"); res.status != 200 {
		t.Fatalf("zipdeploy with the token as password: %d %s", res.status, res.body)
	}
	if res := kuduCurl(t, "-X", "POST", "-H", "Authorization: Bearer "+deployer, "--data-binary", "@"+zipFile("v2"), scm+"/api/zipdeploy"); res.status != 200 {
		t.Fatalf("zipdeploy with the token as Bearer: %d %s", res.status, res.body)
	}
	if res := kuduCurl(t, "-u", "$kd:"+reader, scm+"/api/deployments"); res.status != 200 {
		t.Fatalf("deployments with a read token: %d %s", res.status, res.body)
	}
	if res := kuduCurl(t, "-X", "POST", "-u", "$kd:"+reader, "--data-binary", "@"+zipFile("v3"), scm+"/api/zipdeploy"); res.status != 403 || !strings.Contains(res.body, "needs scope deploy") {
		t.Fatalf("zipdeploy with a read token: %d %s", res.status, res.body)
	}
	if res := kuduCurl(t, "-X", "POST", "-u", "$kd:publishing-password", "--data-binary", "@"+zipFile("v3"), scm+"/api/zipdeploy"); res.status != 401 {
		t.Fatalf("zipdeploy with a password that is no token: %d %s", res.status, res.body)
	}
	if ds, _ := b.client().Deployments(context.Background(), "kd", 10); len(ds) != 2 {
		t.Fatalf("deployments after two accepted and two refused pushes: %d", len(ds))
	}
}

// TestAuthGit: git authenticates with the token as password; without one
// it is asked for credentials and fails, a read token may fetch but not
// push, a deploy token pushes.
func TestAuthGit(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "ga"); err != nil {
		t.Fatal(err)
	}
	deployer := createToken(t, b, "pusher", baton.ScopeDeploy, "ga")
	reader := createToken(t, b, "fetcher", baton.ScopeRead)
	withToken := func(tok string) string { return "http://baton:" + tok + "@" + b.apiAddr + "/git/ga.git" }
	w := newGitWork(t, "Alice")
	sha := w.commitApp("v1")

	if _, out, err := w.run("push", gitdeploy.RemoteURL("http://"+b.apiAddr, "ga"), "main"); err == nil || !strings.Contains(out, "terminal prompts disabled") {
		t.Fatalf("push without credentials: %v\n%s", err, out)
	}
	if _, out, err := w.run("push", withToken(reader), "main"); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("push with a read token: %v\n%s", err, out)
	}
	if ds, _ := c.Deployments(context.Background(), "ga", 10); len(ds) != 0 {
		t.Fatalf("refused pushes deployed: %+v", ds)
	}
	if _, out, err := w.run("push", withToken(deployer), "main"); err != nil || !strings.Contains(out, "deployment succeeded") {
		t.Fatalf("push with a deploy token: %v\n%s", err, out)
	}
	if out, _, err := w.run("ls-remote", withToken(reader), "refs/heads/main"); err != nil || !strings.HasPrefix(out, sha) {
		t.Fatalf("ls-remote with a read token: %v\n%s", err, out)
	}
	es, err := c.Audit(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(es, func(e baton.AuditEntry) bool {
		return e.Actor == "pusher" && e.Action == "git.push" && e.Outcome == "ok"
	}) {
		t.Fatalf("audit log lacks the push: %+v", es)
	}
}

// TestAuthSecretsNeverShown sets a secret setting and then looks for its
// value everywhere but in the app that owns it: API reads, the Kudu API,
// the event stream, the CLI, baton's log and every file of the data
// directory (the database with its WAL included). It also checks that
// another app does not get it.
func TestAuthSecretsNeverShown(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	for _, app := range []string{"sec", "plain"} {
		if _, err := c.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		mustSucceed(t, c, app, appDir(t, "v1"))
	}
	var rnd [12]byte
	rand.Read(rnd[:])
	secret := "s3cret-" + hex.EncodeToString(rnd[:])
	d, err := c.SetSettings(ctx, "sec", baton.ProductionSlot, []baton.Setting{{Key: "DB_PASSWORD", Value: secret, Secret: true}, {Key: "GREETING", Value: "hi"}}, baton.PolicyQueue)
	if err != nil {
		t.Fatal(err)
	}
	events := readSSE(t, b, d.ID, "")
	if final := waitFinal(t, c, d.ID); final.State != baton.StateSucceeded {
		t.Fatalf("settings change: %s %s", final.State, final.Error)
	}
	p := newProxyClient(b.proxyAddr)
	if _, body, err := p.get("sec.localhost", "/"); err != nil || !strings.Contains(body, secret) || !strings.Contains(body, `"GREETING":"hi"`) {
		t.Fatalf("the app does not get its secret: %s %v", body, err)
	}
	if _, body, err := p.get("plain.localhost", "/"); err != nil || strings.Contains(body, secret) {
		t.Fatalf("another app got the secret: %s %v", body, err)
	}
	// A redeploy carries the secret into a new revision (sealed there too).
	mustSucceed(t, c, "sec", appDir(t, "v2"))
	if _, body, err := p.get("sec.localhost", "/"); err != nil || !strings.Contains(body, secret) || version(body) != "v2" {
		t.Fatalf("the redeployed app lost its secret: %s %v", body, err)
	}

	var seen []string
	for _, ev := range events {
		seen = append(seen, "SSE "+ev.name+": "+ev.data)
	}
	a, err := c.App(ctx, "sec")
	if err != nil {
		t.Fatal(err)
	}
	rev := a.Slots[0].LiveRevision
	for _, path := range []string{
		"/api/v1/apps", "/api/v1/apps/sec", "/api/v1/apps/sec/deployments", "/api/v1/deployments/" + d.ID,
		"/api/v1/deployments/" + d.ID + "/log", "/api/v1/apps/sec/status", "/api/v1/status", "/api/v1/apps/sec/revisions",
		"/api/v1/apps/sec/revisions/" + rev, "/api/v1/apps/sec/revisions/" + rev + "/log", "/api/v1/apps/sec/slots/production/settings",
		"/api/v1/audit", "/metrics", "/kudu/sec/api/settings", "/kudu/sec/api/deployments",
	} {
		req, _ := http.NewRequest("GET", "http://"+b.apiAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+b.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		seen = append(seen, "GET "+path+": "+string(body))
	}
	for _, args := range [][]string{{"config", "list", "sec"}, {"deployments", "show", d.ID, "--json"}, {"logs", d.ID}, {"status", "sec", "--json"}} {
		out, _ := runCLI(t, b, args...)
		seen = append(seen, "baton "+strings.Join(args, " ")+": "+out)
	}
	seen = append(seen, "baton serve output: "+b.output())
	for _, s := range seen {
		if strings.Contains(s, secret) {
			t.Errorf("the secret is shown in %s", s)
		}
	}
	if !strings.Contains(strings.Join(seen, "\n"), `"secret": true`) {
		t.Error("the settings listing lacks the secret setting (masked)")
	}
	err = filepath.WalkDir(b.data, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s holds the secret in clear text", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAuthInstancesGetNoToken: baton runs with BATON_TOKEN (and the rest
// of this test process's environment) set; its app instances get none of
// it, only their own variables and settings.
func TestAuthInstancesGetNoToken(t *testing.T) {
	t.Parallel()
	if os.Getenv("BATON_TOKEN") == "" {
		t.Fatal("the harness sets BATON_TOKEN for every baton it starts")
	}
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "env"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "env", appDir(t, "v1"))
	_, body, err := newProxyClient(b.proxyAddr).get("env.localhost", "/")
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(body), &answer); err != nil || answer.PID == 0 {
		t.Fatalf("app answer: %s %v", body, err)
	}
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(answer.PID) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"PATH": true, "LANG": true, "HOME": true, "PORT": true, "BATON_APP": true, "BATON_SLOT": true, "BATON_REVISION": true,
		// /bin/sh -c, which runs the command, sets these itself.
		"PWD": true, "OLDPWD": true, "SHLVL": true, "_": true}
	for kv := range strings.SplitSeq(strings.TrimRight(string(environ), "\x00"), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		if !allowed[k] || strings.Contains(v, adminToken) {
			t.Errorf("the instance got %s from baton's environment", k)
		}
	}
}
