package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/pgtest"
)

// twoControllers starts two `baton serve` sharing one fresh PostgreSQL
// database, with short leases so failover happens within seconds (but not
// so short that a heartbeat delayed by a loaded test machine loses one).
func twoControllers(t *testing.T) (a, b *batonProc) {
	dsn := pgtest.NewDatabase(t)
	a = startBaton(t, "--store", dsn, "--controller-id", "ctl-a", "--lease-ttl", "5s")
	b = startBaton(t, "--store", dsn, "--controller-id", "ctl-b", "--lease-ttl", "5s")
	return a, b
}

// TestTwoControllersSerialize: 100 concurrent deploy requests to one app,
// sent to both controllers: all end, never two running at once (from the
// recorded history and fencing tokens), all run by the app's controller.
func TestTwoControllersSerialize(t *testing.T) {
	t.Parallel()
	a, b := twoControllers(t)
	ctx := context.Background()
	if _, err := a.client().CreateApp(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, b, "controllers")
	if code != 0 || !strings.Contains(out, "ctl-a") || !strings.Contains(out, "ctl-b") {
		t.Fatalf("controllers: %d\n%s", code, out)
	}
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		via := a
		if i%2 == 1 {
			via = b
		}
		dir := appDir(t, fmt.Sprint("v", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := deployErr(via.client(), "shared", dir, api.DeployOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("deploy refused: %v", err)
	}
	var ds []baton.Deployment
	eventually(t, 5*time.Minute, "all 100 final", func() bool {
		var err error
		if ds, err = b.client().Deployments(ctx, "shared", 200); err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if !d.State.Final() {
				return false
			}
		}
		return len(ds) == n
	})
	for _, d := range ds {
		if d.State != baton.StateSucceeded {
			t.Errorf("%s: %s %s", d.ID, d.State, d.Error)
		}
	}
	assertSerial(t, ds)
	// The app's controller serves it.
	st, err := b.client().Status(ctx, "shared")
	if err != nil || st.Controller != "ctl-a" {
		t.Fatalf("status: %+v %v", st, err)
	}
	if body := ask(t, newProxyClient(a.proxyAddr), "shared.localhost"); body.Version == "" {
		t.Fatalf("controller a does not serve the app: %+v", body)
	}
}

// TestControllerFailover: kill -9 the controller that holds an app's lease
// mid-deployment: after the lease expires the deployment reads failed
// (interrupted), the other controller adopts the app, serves its live
// revision and runs the next queued deployment, with no human action.
func TestControllerFailover(t *testing.T) {
	t.Parallel()
	a, b := twoControllers(t)
	ctx := context.Background()
	if _, err := a.client().CreateApp(ctx, "fo"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, a.client(), "fo", appDir(t, "v1"))
	g := newGate(t)
	defer g.open(t)
	held := deploy(t, a.client(), "fo", appDir(t, "v2", buildWaitsFor(g)), api.DeployOptions{})
	waitPhase(t, b.client(), held.ID, baton.PhaseBuilding)
	next := deploy(t, b.client(), "fo", appDir(t, "v3"), api.DeployOptions{})

	a.stop(syscall.SIGKILL)
	c := b.client()
	got := waitFinal(t, c, held.ID)
	if got.State != baton.StateFailed || !strings.HasPrefix(got.Error, baton.ReasonInterrupted) {
		t.Fatalf("held deployment after its controller died: %s %q", got.State, got.Error)
	}
	if d := waitFinal(t, c, next.ID); d.State != baton.StateSucceeded {
		t.Fatalf("queued deployment after failover: %s %s", d.State, d.Error)
	}
	st, err := c.Status(ctx, "fo")
	if err != nil || st.Controller != "ctl-b" {
		t.Fatalf("after failover the app is run by %q (%v), want ctl-b", st.Controller, err)
	}
	if v := ask(t, newProxyClient(b.proxyAddr), "fo.localhost"); v.Version != "v3" {
		t.Fatalf("controller b serves %+v", v)
	}
	noLocks(t, c)
	// Restarting a reaps the instances it left behind and does not take
	// the app back.
	a.start()
	if st, _ := a.client().Status(ctx, "fo"); st.Controller != "ctl-b" {
		t.Fatalf("restarted controller took the app back: %q", st.Controller)
	}
	eventually(t, 20*time.Second, "a's orphaned v1 instances stopped", func() bool {
		for _, pid := range a.processesOf("fo--000001") {
			if pid > 0 {
				return false
			}
		}
		return true
	})
}
