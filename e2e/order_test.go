package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// TestNewerOnlyOrderKeys: with on_conflict=newer-only, deploys go live in
// the order of their order keys, not of arrival, through every way in. A
// key lower than the live deploy's is refused naming it (CLI, with the key
// given and read from the CI's run number; Kudu); a queued older deploy is
// superseded by a newer arrival (Kudu queued, git push arriving), and the
// newest one serves.
func TestNewerOnlyOrderKeys(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "ord"); err != nil {
		t.Fatal(err)
	}

	out, code := runCLI(t, b, "deploy", "ord", appDir(t, "v1"), "--on-conflict", "newer-only", "--order-key", "7", "--wait")
	if code != 0 {
		t.Fatalf("deploy with order key 7: exit %d\n%s", code, out)
	}
	ds, err := c.Deployments(ctx, "ord", 1)
	if err != nil || len(ds) != 1 || ds[0].OrderKey != 7 {
		t.Fatalf("deployments after key 7: %+v %v, want one with order key 7", ds, err)
	}
	live := ds[0]

	out, code = runCLI(t, b, "deploy", "ord", appDir(t, "v0"), "--on-conflict", "newer-only", "--order-key", "5")
	if code != 5 || !strings.Contains(out, live.ID) || !strings.Contains(out, "order key 7") {
		t.Fatalf("deploy with key 5 after 7: exit %d, want 5 naming %s\n%s", code, live.ID, out)
	}
	out, code = runCLIEnv(t, b, []string{"BATON_TOKEN=" + b.token, "GITHUB_RUN_NUMBER=6"},
		"deploy", "ord", appDir(t, "v0"), "--on-conflict", "newer-only")
	if code != 5 || !strings.Contains(out, live.ID) {
		t.Fatalf("deploy with the CI run number 6 after 7: exit %d, want 5 naming %s\n%s", code, live.ID, out)
	}
	out, code = runCLI(t, b, "deploy", "ord", appDir(t, "v0"), "--on-conflict", "newer-only", "--order-key", "-3")
	if code != 1 && code != 5 || !strings.Contains(out, "order-key") {
		t.Fatalf("a negative order key: exit %d\n%s", code, out)
	}

	// Hold the app: key 8 waits in its build until the gate opens.
	g := newGate(t)
	held := deploy(t, c, "ord", appDir(t, "v8", buildWaitsFor(g)), api.DeployOptions{Policy: baton.PolicyNewerOnly, OrderKey: 8})
	waitPhase(t, c, held.ID, baton.PhaseBuilding)

	// Key 9 through Kudu queues behind it.
	k := newKuduClient("http://"+b.apiAddr+"/kudu/ord", b.apiAddr, "ord")
	zip9 := kuduZip(t, kuduAppDir(t, "v9"))
	loc, err := k.zipDeployAsync(zip9, "&on_conflict=newer-only&order_key=9")
	if err != nil {
		t.Fatalf("kudu deploy with key 9: %v", err)
	}
	queued := latestDeployment(t, c, "ord")
	if queued.OrderKey != 9 || queued.State != baton.StateQueued {
		t.Fatalf("kudu's deploy is %+v, want queued with order key 9 (%s)", queued, loc)
	}
	// A Kudu request with a non-numeric key is a 400.
	resp, body, err := k.do("POST", "http://"+b.apiAddr+"/kudu/ord/api/zipdeploy?isAsync=true&on_conflict=newer-only&order_key=ten", zip9)
	if err != nil || resp.StatusCode != 400 || !strings.Contains(string(body), "order key") {
		t.Fatalf("kudu order_key=ten: %v %v %s, want 400", resp, err, body)
	}

	// Key 10 by git push supersedes the queued 9.
	remote := gitRemote(b, "ord")
	w := newGitWork(t, "Alice")
	w.commitApp("v10")
	push := w.start("push", "-o", "on-conflict=newer-only", "-o", "order-key=10", remote, "main")
	eventually(t, 30*time.Second, "kudu's key 9 superseded by the push's key 10", func() bool {
		d, err := c.Deployment(ctx, queued.ID)
		return err == nil && d.State == baton.StateSuperseded
	})
	g.open(t)
	if out, err := push.wait(t); err != nil {
		t.Fatalf("git push with key 10: %v\n%s", err, out)
	}
	if d := waitFinal(t, c, held.ID); d.State != baton.StateSucceeded {
		t.Fatalf("key 8: %s %s", d.State, d.Error)
	}
	if v := ask(t, newProxyClient(b.proxyAddr), "ord.localhost"); v.Version != "v10" {
		t.Fatalf("serving %+v, want v10 (the newest key)", v)
	}
	// And Kudu's key 9 is now older than what serves.
	resp, body, err = k.do("POST", "http://"+b.apiAddr+"/kudu/ord/api/zipdeploy?isAsync=true&on_conflict=newer-only&order_key=9", zip9)
	if err != nil || resp.StatusCode != 409 {
		t.Fatalf("kudu key 9 after key 10 went live: %v %v %s, want 409", resp, err, body)
	}
}

// latestDeployment is app's newest deployment.
func latestDeployment(t testing.TB, c *api.Client, app string) baton.Deployment {
	t.Helper()
	ds, err := c.Deployments(context.Background(), app, 1)
	if err != nil || len(ds) == 0 {
		t.Fatalf("deployments of %s: %v %v", app, ds, err)
	}
	return ds[0]
}
