package gitdeploy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// serveGit runs the git endpoint over f on a test server and returns the
// server's base URL and the data dir.
func serveGit(t *testing.T, f *fakeBaton) (string, string) {
	t.Helper()
	data := t.TempDir()
	h := New(Config{Deployer: f, Store: f, DataDir: data, Domain: "example.test", ProxyAddr: "127.0.0.1:8080"})
	mux := http.NewServeMux()
	mux.Handle("/git/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, data
}

// git runs the git client in dir, isolated from the machine's git config.
func git(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := git(t, dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// workRepo makes a repository with an author configured.
func workRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mustGit(t, dir, "init", "-q", "-b", "main")
	mustGit(t, dir, "config", "user.name", "Alice Example")
	mustGit(t, dir, "config", "user.email", "alice@example.test")
	return dir
}

// commitFiles writes files and commits them; it returns the commit id.
func commitFiles(t *testing.T, dir, msg string, files map[string]string) string {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustGit(t, dir, "add", "-A")
	mustGit(t, dir, "commit", "-q", "-m", msg)
	return mustGit(t, dir, "rev-parse", "HEAD")
}

// serverBranch is the commit a branch names on the server, "" if none.
func serverBranch(t *testing.T, dir, remote, branch string) string {
	t.Helper()
	out := mustGit(t, dir, "ls-remote", remote, "refs/heads/"+branch)
	sha, _, _ := strings.Cut(out, "\t")
	return sha
}

// tarFiles lists a tar.gz artifact's regular files with their contents.
func tarFiles(t *testing.T, art []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(art))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[hdr.Name] = string(b)
		}
	}
}

func TestPushDeploysCommitAndMovesBranch(t *testing.T) {
	f := newFakeBaton(t, "web")
	base, data := serveGit(t, f)
	remote := RemoteURL(base, "web")
	dir := workRepo(t)
	// Over git's 1 MiB post buffer, so the push arrives chunked.
	big := make([]byte, 3<<20)
	rand.Read(big)
	sha := commitFiles(t, dir, "first version", map[string]string{"baton.toml": "[run]\ncommand = \"./web\"\n", "big.bin": string(big)})

	out, err := git(t, dir, "push", remote, "main")
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	for _, want := range []string{"remote: baton: deploying " + sha[:12] + ` "first version" by Alice Example to web (production)`,
		"phase extracting", "deployment succeeded", "is live: http://web.example.test:8080/", "main -> main"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if got := serverBranch(t, dir, remote, "main"); got != sha {
		t.Fatalf("server main = %q, want %s", got, sha)
	}
	reqs := f.submitted()
	if len(reqs) != 1 || reqs[0].Commit != sha || reqs[0].Author != "Alice Example" || reqs[0].Message != "first version" ||
		reqs[0].Policy != baton.PolicyQueue || reqs[0].Slot != baton.ProductionSlot || reqs[0].App != "web" {
		t.Fatalf("submitted %+v", reqs)
	}
	files := tarFiles(t, f.artifacts["d-1"])
	if files["baton.toml"] != "[run]\ncommand = \"./web\"\n" || len(files["big.bin"]) != len(big) {
		t.Fatalf("artifact files: %d, baton.toml %q", len(files), files["baton.toml"])
	}
	if _, err := os.Stat(filepath.Join(data, "apps", "web", "repo.git", "HEAD")); err != nil {
		t.Fatalf("repository not in the app's folder: %v", err)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	mustGit(t, dir, "clone", "-q", remote, clone)
	if b, err := os.ReadFile(filepath.Join(clone, "baton.toml")); err != nil || !strings.Contains(string(b), "./web") {
		t.Fatalf("clone: %v %q", err, b)
	}
}

func TestPushOfFailedDeploymentKeepsBranch(t *testing.T) {
	f := newFakeBaton(t, "web")
	base, _ := serveGit(t, f)
	remote := RemoteURL(base, "web")
	dir := workRepo(t)
	first := commitFiles(t, dir, "v1", map[string]string{"v": "1"})
	mustGit(t, dir, "push", "-q", remote, "main")

	f.setDecide(func(baton.SubmitRequest) (baton.State, string, error) {
		return baton.StateFailed, "instances of web--000002 did not become healthy", nil
	})
	commitFiles(t, dir, "v2", map[string]string{"v": "2"})
	out, err := git(t, dir, "push", remote, "main")
	if err == nil {
		t.Fatalf("push of a failing deployment succeeded:\n%s", out)
	}
	for _, want := range []string{"deployment d-2 failed: instances of web--000002 did not become healthy",
		"refs/heads/main was not updated; web--000001 still serves http://web.example.test:8080/", "pre-receive hook declined"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if got := serverBranch(t, dir, remote, "main"); got != first {
		t.Fatalf("server main = %q, want the first commit %s", got, first)
	}
}

func TestPushRefusedByConflictPolicyNamesHolder(t *testing.T) {
	f := newFakeBaton(t, "web")
	base, _ := serveGit(t, f)
	remote := RemoteURL(base, "web")
	dir := workRepo(t)
	first := commitFiles(t, dir, "v1", map[string]string{"v": "1"})
	mustGit(t, dir, "push", "-q", remote, "main")

	started := time.Now().Add(-42 * time.Second)
	holder := &baton.Deployment{ID: "d-holder", State: baton.StateRunning, Phase: baton.PhaseBuilding, Author: "bob",
		Commit: "abcdef0123456789", Message: "slow build", StartedAt: &started}
	f.setDecide(func(req baton.SubmitRequest) (baton.State, string, error) {
		if req.Policy != baton.PolicyFail {
			t.Errorf("policy %q, want fail", req.Policy)
		}
		return "", "", &baton.Error{Code: baton.ECONFLICT, Message: `app "web" is busy`, RetryAfterSeconds: 7,
			Conflict: &baton.ConflictDetail{App: "web", Holder: holder, QueueLength: 2}}
	})
	commitFiles(t, dir, "v2", map[string]string{"v": "2"})
	out, err := git(t, dir, "push", "-o", "on-conflict=fail", "-o", "shiny", remote, "main")
	if err == nil {
		t.Fatalf("push under on-conflict=fail succeeded:\n%s", out)
	}
	for _, want := range []string{`ignoring push option "shiny"`, `push refused: app "web" is busy`,
		"holder:  deployment d-holder (running, phase building)", "author:  bob", `commit:  abcdef012345 "slow build"`,
		"running since " + started.UTC().Format("2006-01-02 15:04:05 UTC"), "queued behind it: 2", "retry in about 7s, or push with -o on-conflict=queue"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if got := serverBranch(t, dir, remote, "main"); got != first {
		t.Fatalf("server main = %q, want %s", got, first)
	}

	out, err = git(t, dir, "push", "-o", "on-conflict=later", remote, "main")
	if err == nil || !strings.Contains(out, "on-conflict takes queue | fail | cancel | supersede | newer-only") {
		t.Fatalf("bad on-conflict value: %v\n%s", err, out)
	}
}

func TestPushOfOtherBranchesAndDeletingMain(t *testing.T) {
	f := newFakeBaton(t, "web")
	base, _ := serveGit(t, f)
	remote := RemoteURL(base, "web")
	dir := workRepo(t)
	sha := commitFiles(t, dir, "v1", map[string]string{"v": "1"})
	out, err := git(t, dir, "push", remote, "main:feature", "v1-tag")
	if err == nil {
		t.Fatalf("pushing a missing tag worked:\n%s", out)
	}
	mustGit(t, dir, "tag", "v1")
	out = mustGit(t, dir, "push", remote, "main:feature", "v1")
	if !strings.Contains(out, "refs/heads/feature is not a deploy branch (main deploys to production); stored without deploying") {
		t.Errorf("push output:\n%s", out)
	}
	if len(f.submitted()) != 0 || serverBranch(t, dir, remote, "feature") != sha {
		t.Fatalf("feature push: %d deployments, branch %q", len(f.submitted()), serverBranch(t, dir, remote, "feature"))
	}
	mustGit(t, dir, "push", "-q", remote, "main")
	out, err = git(t, dir, "push", remote, ":main")
	if err == nil || !strings.Contains(out, "refusing to delete refs/heads/main") {
		t.Fatalf("deleting main: %v\n%s", err, out)
	}
	if serverBranch(t, dir, remote, "main") != sha {
		t.Fatal("main was deleted")
	}
}

// TestBranchNamesNewestLiveCommit: when a later deployment went live
// before this push could record its own, the branch stays with the later one.
func TestBranchNamesNewestLiveCommit(t *testing.T) {
	f := newFakeBaton(t, "web")
	base, _ := serveGit(t, f)
	remote := RemoteURL(base, "web")
	dir := workRepo(t)
	first := commitFiles(t, dir, "v1", map[string]string{"v": "1"})
	mustGit(t, dir, "push", "-q", remote, "main")

	f.setAfterSuccess(func(d baton.Deployment) { f.succeeded("web", "fedcba9876543210") })
	commitFiles(t, dir, "v2", map[string]string{"v": "2"})
	out, err := git(t, dir, "push", remote, "main")
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	if !strings.Contains(out, "refs/heads/main stays at "+first[:12]+": deployment d-3 of commit fedcba987654 went live after this push's") {
		t.Errorf("push output:\n%s", out)
	}
	if got := serverBranch(t, dir, remote, "main"); got != first {
		t.Fatalf("server main = %q, want %s", got, first)
	}
}

// TestPushOfLiveCommit: a push of the commit that already serves (here
// deployed before the branch could move) deploys nothing, says so, and
// succeeds, moving the branch to it; -o force deploys anyway.
func TestPushOfLiveCommit(t *testing.T) {
	f := newFakeBaton(t, "web")
	f.sameCommitUnchanged = true
	base, _ := serveGit(t, f)
	remote := RemoteURL(base, "web")
	dir := workRepo(t)
	first := commitFiles(t, dir, "v1", map[string]string{"v": "1"})
	live := f.succeeded("web", first)

	out, err := git(t, dir, "push", remote, "main")
	if err != nil {
		t.Fatalf("push of the live commit: %v\n%s", err, out)
	}
	for _, want := range []string{"remote: baton: " + live.Revision + " is already live in web/production with this artifact and these settings; nothing to do",
		"remote: baton: " + live.Revision + " is live: http://web.example.test:8080/", "* [new branch]      main -> main"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if got := serverBranch(t, dir, remote, "main"); got != first {
		t.Fatalf("server main = %q, want %s", got, first)
	}
	if ds, _ := f.Deployments(context.Background(), baton.DeploymentFilter{App: "web"}); len(ds) != 1 {
		t.Fatalf("deployments %+v, want only the one that made it live", ds)
	}

	second := commitFiles(t, dir, "v2", map[string]string{"v": "2"})
	f.succeeded("web", second)
	out, err = git(t, dir, "push", "-o", "force", remote, "main")
	if err != nil || !strings.Contains(out, "deployment succeeded") {
		t.Fatalf("push -o force: %v\n%s", err, out)
	}
	reqs := f.submitted()
	if len(reqs) != 2 || reqs[0].Force || !reqs[1].Force {
		t.Fatalf("submitted %+v, want the second forced", reqs)
	}
	if got := serverBranch(t, dir, remote, "main"); got != second {
		t.Fatalf("server main = %q, want %s", got, second)
	}
}

func TestUnknownAppsAndRemoteClientsAreRefused(t *testing.T) {
	f := newFakeBaton(t, "web")
	base, data := serveGit(t, f)
	for path, want := range map[string]string{
		"/git/nope.git/info/refs?service=git-upload-pack": `app "nope" does not exist`,
		"/git/Bad_Name/info/refs":                         `app "Bad_Name" does not exist`,
		"/git/":                                           "the git URL of an app is /git/APP.git",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		var p api.Problem
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(p.Detail, want) {
			t.Errorf("GET %s: %d %+v %v, want 404 naming %q", path, resp.StatusCode, p, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "apps", "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a folder was made for an app that does not exist: %v", err)
	}

	h := New(Config{Deployer: f, Store: f, DataDir: data})
	r := httptest.NewRequest("GET", "/git/web.git/info/refs?service=git-receive-pack", nil)
	r.RemoteAddr = "192.0.2.7:40000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "this machine only") {
		t.Fatalf("remote client: %d %s", w.Code, w.Body)
	}
}

func TestHooksAreReinstalledWhenChanged(t *testing.T) {
	f := newFakeBaton(t, "web")
	base, data := serveGit(t, f)
	dir := workRepo(t)
	mustGit(t, dir, "ls-remote", RemoteURL(base, "web"))
	hook := filepath.Join(data, "apps", "web", "repo.git", "hooks", "pre-receive")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustGit(t, dir, "ls-remote", RemoteURL(base, "web"))
	if b, err := os.ReadFile(hook); err != nil || !bytes.Equal(b, hookScript) {
		t.Fatalf("hook not restored: %v", err)
	}
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		opts    []string
		policy  baton.Policy
		ignored int
		err     bool
	}{
		{nil, "", 0, false},
		{[]string{"on-conflict=fail"}, baton.PolicyFail, 0, false},
		{[]string{"on_conflict=supersede"}, baton.PolicySupersede, 0, false},
		{[]string{"ci.skip", "on-conflict=cancel"}, baton.PolicyCancel, 1, false},
		{[]string{"on-conflict="}, "", 0, true},
		{[]string{"on-conflict=wait"}, "", 0, true},
		{[]string{"force"}, "", 0, false},
		{[]string{"force=true", "on-conflict=fail"}, baton.PolicyFail, 0, false},
		{[]string{"force=false"}, "", 0, false},
		{[]string{"force=often"}, "", 0, true},
	} {
		po, err := parseOptions(tc.opts)
		wantForce := len(tc.opts) > 0 && (tc.opts[0] == "force" || tc.opts[0] == "force=true")
		if (err != nil) != tc.err || po.Policy != tc.policy || len(po.Ignored) != tc.ignored || (err == nil && po.Force != wantForce) {
			t.Errorf("parseOptions(%q) = %+v, %v", tc.opts, po, err)
		}
	}
}

func TestRemoteURL(t *testing.T) {
	if got := RemoteURL("http://127.0.0.1:7070/", "hello"); got != "http://127.0.0.1:7070/git/hello.git" {
		t.Fatal(got)
	}
}
