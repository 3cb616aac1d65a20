package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/sqlite"
)

// TestDashboardOverviewLive: the overview lists an app with its live
// revision, then shows a deployment's running phase and its success as
// they happen, without a reload.
func TestDashboardOverviewLive(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	first := mustSucceed(t, c, "web", appDir(t, "v1"))
	br := newBrowser(t, b)
	br.signIn(b)

	br.open("/")
	br.present(`[data-app="web"] [data-slot="production"] [data-revision="` + first.Revision + `"][data-traffic="100"]`)
	br.present(`[data-app="web"] [data-conflicts="0"]`)
	br.present(`[data-app="web"] .health-ok`)
	br.screenshot("overview")
	br.markLoad()

	g := newGate(t)
	d := deploy(t, c, "web", appDir(t, "v2", buildWaitsFor(g)), api.DeployOptions{Commit: "a1b2c3d4e5f6a7b8", Author: "dana", Message: "faster index"})
	br.present(`[data-app="web"] [data-running="` + d.ID + `"][data-phase="building"]`)
	br.screenshot("overview-running")
	g.open(t)
	next := baton.RevisionName("web", 2)
	br.present(`[data-app="web"] [data-revision="` + next + `"][data-traffic="100"]`)
	br.gone(`[data-app="web"] [data-running]`)
	br.present(`[data-app="web"] .op.idle [data-state="succeeded"]`)
	br.sameLoad("a deployment")
	if got := waitFinal(t, c, d.ID); got.State != baton.StateSucceeded || got.Revision != next {
		t.Fatalf("the deployment the page showed as done: %s %s", got.State, got.Revision)
	}
}

// TestDashboardDeploymentLive: from the overview to a running deployment's
// page; its phases and log lines arrive live, then its final state.
func TestDashboardDeploymentLive(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "live"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "live", appDir(t, "v1"))
	g := newGate(t)
	d := deploy(t, c, "live", appDir(t, "v2", buildWaitsFor(g)), api.DeployOptions{Commit: "0123456789abcdef", Author: "erin", Message: "new header"})
	br := newBrowser(t, b)
	br.signIn(b)

	br.open("/")
	br.click(`[data-running="` + d.ID + `"] a[href="#/deployments/` + d.ID + `"]`)
	br.present(`.dep-state [data-state="running"]`)
	br.present(`.timeline [data-phase="queued"][data-state="done"]`)
	br.present(`.timeline [data-phase="extracting"][data-state="done"]`)
	br.present(`.timeline [data-phase="building"][data-state="current"]`)
	br.contains(`pre.log`, "phase building")
	br.present(`[data-stream="live"]`)
	br.present(`button[data-key="cancel-` + d.ID + `"]`)
	br.contains(`.facts`, "new header")
	br.screenshot("deployment-running")
	br.markLoad()

	g.open(t)
	br.present(`.dep-state [data-state="succeeded"]`)
	for _, ph := range []baton.Phase{baton.PhaseBuilding, baton.PhaseStarting, baton.PhaseHealthChecking, baton.PhaseSwitching, baton.PhaseDraining} {
		br.present(`.timeline [data-phase="` + string(ph) + `"][data-state="done"]`)
	}
	br.gone(`.timeline [data-state="current"]`)
	br.contains(`pre.log`, "deployment succeeded")
	br.present(`[data-stream="ended"]`)
	br.gone(`button[data-key="cancel-` + d.ID + `"]`)
	// Every phase has a duration, measured from the log's timestamps.
	br.until("a duration for every phase", `[...document.querySelectorAll('.timeline .phase-dur')].every((e) => /^\d/.test(e.textContent))`)
	br.sameLoad("the deployment")
	br.screenshot("deployment")

	// The app page, reached by its link: history and the new revision.
	br.click(`.facts a[href="#/apps/live"]`)
	br.present(`[data-slot="production"] tr[data-revision="` + baton.RevisionName("live", 2) + `"][data-traffic="100"]`)
	br.present(`#deployments tr[data-deployment="` + d.ID + `"][data-state="succeeded"]`)
	br.count(`#deployments tbody tr`, 2)
	br.contains(`#deployments tr[data-deployment="`+d.ID+`"]`, "0123456789ab")
	br.screenshot("app")
}

// TestDashboardCancel: the cancel button stops a running deployment; the
// page shows it cancelled and the old revision keeps serving.
func TestDashboardCancel(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "cx"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "cx", appDir(t, "v1"))
	g := newGate(t) // never opened: only a cancel ends the build
	d := deploy(t, c, "cx", appDir(t, "v2", buildWaitsFor(g)), api.DeployOptions{Message: "never finishes"})
	br := newBrowser(t, b)
	br.signIn(b)

	br.open("/deployments/" + d.ID)
	br.present(`.timeline [data-phase="building"][data-state="current"]`)
	br.click(`button[data-key="cancel-` + d.ID + `"]`)
	br.present(`.dep-state [data-state="cancelled"]`)
	br.present(`.timeline [data-phase="building"][data-state="stopped"]`)
	br.gone(`button[data-key="cancel-` + d.ID + `"]`)
	br.present(`[data-stream="ended"]`)
	br.screenshot("deployment-cancelled")

	got, err := c.Deployment(context.Background(), d.ID)
	if err != nil || got.State != baton.StateCancelled {
		t.Fatalf("after the click: %s %v", got.State, err)
	}
	if a := ask(t, newProxyClient(b.proxyAddr), "cx.localhost"); a.Version != "v1" {
		t.Fatalf("after the cancel the proxy serves %+v, want v1", a)
	}
	if audit := auditEntries(t, b); !strings.Contains(audit, `"deployment.cancel"`) || !strings.Contains(audit, d.ID) {
		t.Fatalf("the cancel is not in the audit log:\n%s", audit)
	}
}

// TestDashboardStabilize: two active revisions in single mode show as a
// conflict on the overview and the app page; the stabilize button fixes
// it, also while the app is frozen.
// The app page also shows the slot's settings with their marks.
func TestDashboardStabilize(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetRevisionMode(ctx, "shop", baton.RevisionsMultiple); err != nil {
		t.Fatal(err)
	}
	op, err := c.SetSettings(ctx, "shop", baton.ProductionSlot, []baton.Setting{
		{Key: "DB_URL", Value: "postgres://db-prod/shop", Sticky: true},
		{Key: "API_KEY", Value: "s3cr3t-value", Secret: true},
		{Key: "FEATURE_CART", Value: "on"},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := waitFinal(t, c, op.ID); d.State != baton.StateSucceeded {
		t.Fatalf("settings: %s %s", d.State, d.Error)
	}
	var revs []string
	for _, o := range []api.DeployOptions{
		{Commit: "9f2c4e1a7b3d5e6f", Author: "ana", Message: "checkout: retry a payment once"},
		{Commit: "4b8d0e6f2a1c3d5e", Author: "ben", Message: "cart: faster totals"},
	} {
		d := waitFinal(t, c, deploy(t, c, "shop", appDir(t, o.Message), o).ID)
		if d.State != baton.StateSucceeded {
			t.Fatalf("deploy %q: %s %s", o.Message, d.State, d.Error)
		}
		revs = append(revs, d.Revision)
	}
	// Multiple mode keeps both active; single mode calls that a conflict.
	// No command switches to single mode with two active revisions any
	// more (it is refused, naming stabilize), but a store from an older
	// baton can hold that state: write it with baton stopped, as such a
	// store would come.
	b.stop(syscall.SIGTERM)
	db, err := sqlite.Open(ctx, filepath.Join(b.data, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = db.SetRevisionMode(ctx, "shop", baton.RevisionsSingle)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	b.start()
	c = b.client()
	br := newBrowser(t, b)
	br.signIn(b)

	br.open("/")
	br.click(`[data-app="shop"] a[data-conflicts="1"]`)
	fix := `#conflicts li[data-code="` + baton.ConflictMultipleActive + `"] button[data-fix]`
	br.present(fix)
	br.contains(`#conflicts code.cmd`, "baton stabilize shop")
	br.count(`[data-slot="production"] tr[data-revision]`, 2)
	br.contains(`tr[data-setting="DB_URL"]`, "sticky")
	br.contains(`tr[data-setting="API_KEY"]`, "secret")
	br.contains(`tr[data-setting="API_KEY"]`, "********")
	br.contains(`#deployments tbody`, "cart: faster totals")
	if eval[bool](br, `document.body.textContent.includes("s3cr3t-value")`) {
		t.Fatal("the page shows a secret's value")
	}
	png := br.screenshot("conflicts")
	if os.Getenv("BATON_UPDATE_DOCS") != "" {
		if err := os.WriteFile(filepath.Join("..", "docs", "dashboard.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	br.markLoad()

	// A freeze stops new code, not recovery: while the app is frozen the
	// stabilize button works; unfreezing is a click.
	if _, err := c.Freeze(ctx, "shop", "incident 42", false); err != nil {
		t.Fatal(err)
	}
	unfreeze := `#conflicts li[data-code="` + baton.ConflictFrozen + `"] button[data-fix]`
	br.present(unfreeze)
	br.click(fix)
	br.contains(`[role="status"]`, "Stabilized shop")
	br.gone(`#conflicts li[data-code="` + baton.ConflictMultipleActive + `"]`)
	br.click(unfreeze)
	br.present(`#conflicts [data-conflicts="0"]`)
	br.gone(`#conflicts li[data-code]`)
	br.contains(`[role="status"]`, "no longer frozen")
	br.count(`[data-slot="production"] tr[data-revision]`, 1)
	// Without --revision, stabilize keeps the newest healthy revision.
	br.present(`[data-slot="production"] tr[data-revision="` + revs[1] + `"][data-traffic="100"]`)
	br.present(`#deployments tr[data-state="succeeded"] td`)
	br.contains(`#deployments tbody tr:first-child`, "stabilize")
	br.sameLoad("the fix")
	if got := routingOf(t, c, "shop"); len(got) != 1 || got[revs[1]] != 100 {
		t.Fatalf("after the stabilize button: %v", got)
	}
	st, err := c.Status(ctx, "shop")
	if err != nil || len(st.Conflicts) != 0 {
		t.Fatalf("conflicts after the fix: %+v %v", st.Conflicts, err)
	}
	br.screenshot("app-stabilized")

	// A narrow screen scrolls tables, not the page.
	br.viewport(390, 844)
	br.until("no sideways scrolling at 390px", `document.documentElement.scrollWidth <= document.documentElement.clientWidth`)
	br.screenshot("app-narrow")
	br.viewport(0, 0)
}

// TestDashboardShowsProblems: API problems reach the page as their RFC
// 9457 detail, not as a blank page; without a token the page asks for
// one, and a refused one is forgotten.
func TestDashboardShowsProblems(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	_, err := b.client().Status(context.Background(), "nope")
	if baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("status of a missing app: %v", err)
	}
	br := newBrowser(t, b)

	br.open("/")
	br.present(`#login:not([hidden]) #token`)
	br.contains(`#login-why`, "needs an access token")
	br.typeToken(baton.TokenPrefix + strings.Repeat("A", 43)) // well-formed, unknown
	br.contains(`#login-why`, "not valid")
	br.until("the refused token forgotten", `!sessionStorage.getItem("baton.token")`)
	br.screenshot("sign-in")
	br.signIn(b)

	br.open("/apps/nope")
	br.contains(`[role="alert"]`, baton.ErrorMessage(err))
	br.contains(`[role="alert"]`, "404")
	br.open("/deployments/d-000000000000")
	br.contains(`[role="alert"]`, "d-000000000000")
	br.present(`[data-stream="closed"]`)
	br.open("/no/such/page")
	br.contains(`h1`, "Not found")
	br.open("/")
	br.contains(`.empty`, "No apps yet")

	br.click(`#who button`)
	br.present(`#login:not([hidden]) #token`)
	br.until("the token forgotten", `!sessionStorage.getItem("baton.token")`)
}
