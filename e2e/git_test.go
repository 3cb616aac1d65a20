package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

// TestGitPushDeploys: git push of a repository holding the example app
// deploys the pushed commit, shows the phases as remote: lines, ends with
// the URL that serves it, and moves the server's main to the commit.
func TestGitPushDeploys(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "gitapp"); err != nil {
		t.Fatal(err)
	}
	remote := gitRemote(b, "gitapp")
	w := newGitWork(t, "Alice")
	sha := w.commitApp("v1")
	_, out, err := w.run("push", remote, "main")
	if err != nil {
		t.Fatalf("git push: %v\n%s", err, out)
	}
	for _, want := range []string{
		"remote: baton: deploying " + sha[:12] + ` "version v1" by Alice to gitapp (production)`,
		"phase extracting", "phase starting", "phase health-checking", "phase switching", "deployment succeeded",
		"is live: http://gitapp.localhost:" + proxyPort(b) + "/", "* [new branch]      main -> main",
	} {
		if !strings.Contains(out, "remote: ") || !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	p := newProxyClient(b.proxyAddr)
	if status, body, err := p.get("gitapp.localhost", "/"); err != nil || status != 200 || version(body) != "v1" {
		t.Fatalf("proxy after the push: %d %q %v", status, body, err)
	}
	ds, err := c.Deployments(ctx, "gitapp", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].State != baton.StateSucceeded || ds[0].Commit != sha || ds[0].Author != "Alice" || ds[0].Message != "version v1" {
		t.Fatalf("recorded deployments: %+v", ds)
	}
	if got := serverMain(t, remote); got != sha {
		t.Fatalf("server main = %q, want %s", got, sha)
	}

	// The next commit is an ordinary fast-forward push.
	sha2 := w.commitApp("v2")
	if _, out, err := w.run("push", remote, "main"); err != nil || !strings.Contains(out, "main -> main") {
		t.Fatalf("second push: %v\n%s", err, out)
	}
	if status, body, err := p.get("gitapp.localhost", "/"); err != nil || status != 200 || version(body) != "v2" {
		t.Fatalf("proxy after the second push: %d %q %v", status, body, err)
	}
	if got := serverMain(t, remote); got != sha2 {
		t.Fatalf("server main = %q, want %s", got, sha2)
	}

	// An app that does not exist has no repository; deleting an app
	// deletes its repository.
	if _, out, err := w.run("push", gitRemote(b, "nope"), "main"); err == nil || !strings.Contains(out, "not found") {
		t.Fatalf("push to a missing app: %v\n%s", err, out)
	}
	repo := filepath.Join(b.data, "apps", "gitapp", "repo.git")
	if _, err := os.Stat(repo); err != nil {
		t.Fatalf("repository not in the app's folder: %v", err)
	}
	if err := c.DeleteApp(ctx, "gitapp"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(repo); !os.IsNotExist(err) {
		t.Fatalf("repository left after the app was deleted: %v", err)
	}
}

// TestGitPushQueue: two clones push different commits to main at once
// under the queue policy; both deploy, in push order, and both pushes
// succeed. The second clone's commit is a sibling of the first's (both
// start from the same main), pushed without force: git's own
// compare-and-swap would refuse the second ref update after it went live,
// so baton moves main itself, to the commit that serves last.
func TestGitPushQueue(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "gitq"); err != nil {
		t.Fatal(err)
	}
	remote := gitRemote(b, "gitq")
	alice := newGitWork(t, "Alice")
	alice.commitApp("v1")
	alice.must("push", "-q", remote, "main")
	bob := cloneGitWork(t, remote, "Bob")

	g := newGate(t)
	shaA := alice.commitApp("v2", buildWaitsFor(g))
	pushA := alice.start("push", remote, "main")
	dA := waitPhase(t, c, deploymentOf(t, c, "gitq", shaA).ID, baton.PhaseBuilding)

	shaB := bob.commitApp("v3")
	pushB := bob.start("push", remote, "main")
	dB := deploymentOf(t, c, "gitq", shaB)
	if dB.State != baton.StateQueued {
		t.Fatalf("second push's deployment is %s, want queued behind %s", dB.State, dA.ID)
	}
	g.open(t)

	outA, errA := pushA.wait(t)
	outB, errB := pushB.wait(t)
	t.Logf("first push:\n%s\nsecond push:\n%s", outA, outB)
	if errA != nil || errB != nil {
		t.Fatalf("pushes: %v, %v", errA, errB)
	}
	if !strings.Contains(outB, "waiting behind deployment "+dA.ID) || !strings.Contains(outB, "is live: http://gitq.localhost:") {
		t.Errorf("second push's output does not show it waiting behind %s and going live", dA.ID)
	}
	ds, err := c.Deployments(ctx, "gitq", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.State != baton.StateSucceeded {
			t.Errorf("deployment %s (%s): %s %s", d.ID, d.Commit[:12], d.State, d.Error)
		}
	}
	assertSerial(t, ds)
	if len(ds) != 3 || ds[0].Commit != shaB || ds[1].Commit != shaA {
		t.Fatalf("deployments, newest first: %+v; want bob's after alice's", ds)
	}
	if got := serverMain(t, remote); got != shaB {
		t.Fatalf("server main = %q, want the commit that serves last, %s", got, shaB)
	}
	if status, body, err := newProxyClient(b.proxyAddr).get("gitq.localhost", "/"); err != nil || status != 200 || version(body) != "v3" {
		t.Fatalf("proxy: %d %q %v", status, body, err)
	}
}

// TestGitPushFailPolicy: while a push's deployment runs, a second push with
// -o on-conflict=fail is refused at once: it exits non-zero, its stderr
// names the running deployment, and main is not moved by it.
func TestGitPushFailPolicy(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "gitf"); err != nil {
		t.Fatal(err)
	}
	remote := gitRemote(b, "gitf")
	alice := newGitWork(t, "Alice")
	base := alice.commitApp("v1")
	alice.must("push", "-q", remote, "main")
	bob := cloneGitWork(t, remote, "Bob")

	g := newGate(t)
	shaA := alice.commitApp("v2", buildWaitsFor(g))
	pushA := alice.start("push", remote, "main")
	dA := waitPhase(t, c, deploymentOf(t, c, "gitf", shaA).ID, baton.PhaseBuilding)

	shaB := bob.commitApp("v3")
	_, stderr, err := bob.run("push", "-o", "on-conflict=fail", remote, "main")
	if exitCode(err) == 0 {
		t.Fatalf("push under on-conflict=fail while %s runs succeeded:\n%s", dA.ID, stderr)
	}
	for _, want := range []string{"push refused", "holder:  deployment " + dA.ID + " (running, phase building)",
		"author:  Alice", "commit:  " + shaA[:12] + ` "version v2"`, "running since",
		"refs/heads/main was not updated; retry in about", "-o on-conflict=queue", "[remote rejected] main -> main"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("refused push's stderr lacks %q:\n%s", want, stderr)
		}
	}
	if got := serverMain(t, remote); got != base {
		t.Fatalf("server main = %q while the first push runs, want %s", got, base)
	}

	g.open(t)
	if out, err := pushA.wait(t); err != nil {
		t.Fatalf("first push: %v\n%s", err, out)
	}
	if got := serverMain(t, remote); got != shaA {
		t.Fatalf("server main = %q, want the first push's commit %s", got, shaA)
	}
	ds, err := c.Deployments(ctx, "gitf", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Commit == shaB {
			t.Fatalf("the refused push was recorded as deployment %s", d.ID)
		}
	}
	if len(ds) != 2 {
		t.Fatalf("%d deployments, want 2", len(ds))
	}
}

// TestGitPushUnhealthy: a push of a commit whose app never passes its
// health check fails; its output ends with the failure and what still
// serves, the old revision keeps serving and main stays where it was.
func TestGitPushUnhealthy(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "gitu"); err != nil {
		t.Fatal(err)
	}
	remote := gitRemote(b, "gitu")
	w := newGitWork(t, "Alice")
	good := w.commitApp("v1")
	w.must("push", "-q", remote, "main")

	w.commitApp("v2", unhealthy, withManifest(`[run]
command = "`+helloBin+`"
[health]
path = "/healthz"
interval = "100ms"
start_timeout = "2s"
`))
	_, out, err := w.run("push", remote, "main")
	if exitCode(err) == 0 {
		t.Fatalf("push of an unhealthy app succeeded:\n%s", out)
	}
	var remoteLines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "remote: ") {
			remoteLines = append(remoteLines, strings.TrimSpace(l))
		}
	}
	n := len(remoteLines)
	if n < 2 || !strings.Contains(remoteLines[n-2], "failed: instances of gitu--000002 did not become healthy") ||
		!strings.Contains(remoteLines[n-1], "refs/heads/main was not updated; gitu--000001 still serves http://gitu.localhost:") {
		t.Fatalf("push output does not end with the failure and what still serves:\n%s", out)
	}
	if status, body, err := newProxyClient(b.proxyAddr).get("gitu.localhost", "/"); err != nil || status != 200 || version(body) != "v1" {
		t.Fatalf("proxy after the failed push: %d %q %v", status, body, err)
	}
	if got := serverMain(t, remote); got != good {
		t.Fatalf("server main = %q, want %s", got, good)
	}
}
