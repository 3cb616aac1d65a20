package e2e

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// confirm accepts the page's confirmation dialog.
func (br *browser) confirm() {
	br.t.Helper()
	br.click(`dialog[open] button.danger`)
	br.gone(`dialog[open]`)
}

// setValue sets a form control's value as a user would (input and change
// events).
func (br *browser) setValue(sel, value string) {
	br.t.Helper()
	eval[chromedp.Void](br, `(() => { const el = document.querySelector(`+js(sel)+`); el.value = `+js(value)+`;
		el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); })()`)
}

// press clicks the element matching sel in the page's script, for
// buttons in parts the event stream may re-render between finding a node
// and clicking it.
func (br *browser) press(sel string) {
	br.t.Helper()
	br.present(sel)
	eval[chromedp.Void](br, `document.querySelector(`+js(sel)+`).click()`)
}

// typeInto replaces an input's text by typing.
func (br *browser) typeInto(sel, text string) {
	br.t.Helper()
	br.setValue(sel, "")
	br.do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text))
}

// slotRouting is the active revisions of app's slot and their weights.
func slotRouting(t testing.TB, c *api.Client, app, slot string) map[string]int {
	t.Helper()
	revs, err := c.Revisions(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range revs {
		if r.Active && r.Slot == slot {
			out[r.Name] = r.Weight
		}
	}
	return out
}

// uploadArtifact is a zip of dir with a file of size random bytes: an upload
// slow enough for its progress to be seen.
func uploadArtifact(t testing.TB, dir string, size int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "site.zip")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := zw.Create(e.Name())
		w.Write(b)
	}
	blob := make([]byte, size)
	rand.Read(blob)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "assets/blob.bin", Method: zip.Store})
	w.Write(blob)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// steadyTraffic sends a request to host every interval (every fifth
// answered 500) until the test ends: the charts' data.
func steadyTraffic(t testing.TB, p *proxyClient, host string, every time.Duration) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			path := "/"
			if i%5 == 0 {
				path = "/status/500"
			}
			p.get(host, path)
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// saveDoc writes a screenshot under docs/ when BATON_UPDATE_DOCS is set.
func saveDoc(t testing.TB, name string, png []byte) {
	t.Helper()
	if os.Getenv("BATON_UPDATE_DOCS") == "" {
		return
	}
	if err := os.WriteFile(filepath.Join("..", "docs", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDashboardActions drives every action of the app page in one browser
// session: a refused freeze shows the problem's sentence; freeze and
// unfreeze; traffic sliders that sum to 100, then stabilize; settings set
// (sticky, secret) and removed; rollback; a swap with preview, completed;
// a multi-megabyte upload with a moving progress bar, then its live page.
// After each, the API has the new state and the page showed it from its
// event stream, without a reload and without polling status. Then a
// read-only token sees no action, and the API refuses one anyway.
func TestDashboardActions(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	const app = "ops"
	if _, err := c.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSlot(ctx, app, "staging"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetRevisionMode(ctx, app, baton.RevisionsMultiple); err != nil {
		t.Fatal(err)
	}
	r1 := mustSucceed(t, c, app, appDir(t, "v1")).Revision
	r2 := mustSucceed(t, c, app, appDir(t, "v2")).Revision
	staged := waitFinal(t, c, deploy(t, c, app, appDir(t, "s1"), api.DeployOptions{Slot: "staging"}).ID)
	if staged.State != baton.StateSucceeded {
		t.Fatalf("staging deploy: %s %s", staged.State, staged.Error)
	}
	if got := slotRouting(t, c, app, "production"); len(got) != 2 {
		t.Fatalf("production routing before the page: %v, want two active revisions", got)
	}
	steadyTraffic(t, newProxyClient(b.proxyAddr), app+".localhost", 40*time.Millisecond)
	viewer, err := c.CreateToken(ctx, api.TokenRequest{Name: "viewer", Scope: baton.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}

	br := newBrowser(t, b)
	br.signIn(b)
	br.open("/apps/" + app)
	br.present(`main[data-events="open"]`)
	br.present(`#deploy`)
	br.markLoad()

	// A refused action: its problem's sentence, in place.
	br.click(`#freeze button[data-key="freeze"]`)
	br.contains(`#freeze .problems`, "a freeze needs a reason")

	// Freeze and unfreeze.
	br.typeInto(`#freeze-reason`, "incident 7")
	br.click(`#freeze button[data-key="freeze"]`)
	br.present(`[data-frozen="incident 7"]`)
	if a, err := c.App(ctx, app); err != nil || a.Frozen == nil || a.Frozen.Reason != "incident 7" {
		t.Fatalf("after Freeze: %+v %v", a.Frozen, err)
	}
	br.click(`#freeze button[data-key="unfreeze"]`)
	br.gone(`[data-frozen]`)
	if a, err := c.App(ctx, app); err != nil || a.Frozen != nil {
		t.Fatalf("after Unfreeze: %+v %v", a.Frozen, err)
	}

	// Traffic: moving one slider moves the other; the sum stays 100.
	slider := func(rev string) string { return `#weights input[data-weight="` + rev + `"]` }
	br.present(slider(r1))
	br.setValue(slider(r1), "30")
	if got := eval[string](br, `document.querySelector(`+js(slider(r2))+`).value`); got != "70" {
		t.Fatalf("after moving %s to 30, %s's slider is at %s, want 70", r1, r2, got)
	}
	// The keyboard moves a slider too: one step right.
	eval[chromedp.Void](br, `document.querySelector(`+js(slider(r1))+`).focus()`)
	br.do("press the right arrow", chromedp.KeyEvent(kb.ArrowRight))
	br.until("31/69 after the arrow key", `document.querySelector(`+js(slider(r2))+`).value === "69"`)
	br.click(`button[data-key="weights-production"]`)
	br.confirm()
	br.present(`[data-slot="production"] tr[data-revision="` + r1 + `"][data-traffic="31"]`)
	br.present(`[data-slot="production"] tr[data-revision="` + r2 + `"][data-traffic="69"]`)
	if got := slotRouting(t, c, app, "production"); got[r1] != 31 || got[r2] != 69 {
		t.Fatalf("routing after the sliders: %v", got)
	}

	// The charts fill from the proxy's samples: two intervals of both
	// revisions, then the screenshot of the split.
	// For the docs' picture, a few more points (25 s more).
	points := 3
	if os.Getenv("BATON_UPDATE_DOCS") != "" {
		points = 8
	}
	br.until("points per revision in the charts",
		`[...document.querySelectorAll('#charts [data-metric="requests_per_second"] path[data-series]')].filter((p) => (p.getAttribute('d').match(/L/g) || []).length >= `+strconv.Itoa(points-1)+`).length === 2`)
	saveDoc(t, "dashboard-traffic.png", br.screenshot("actions-traffic"))

	// Settings on staging: a sticky one and a secret, then a removal.
	br.setValue(`#setting-slot`, "staging")
	br.typeInto(`#setting-key`, "GREETING")
	br.typeInto(`#setting-value`, "hello")
	br.click(`#setting-sticky`)
	br.click(`button[data-key="setting-save"]`)
	br.confirm()
	br.contains(`#settings [role="status"]`, "GREETING set on staging")
	br.present(`[data-slot="staging"] tr[data-setting="GREETING"]`)
	br.contains(`[data-slot="staging"] tr[data-setting="GREETING"]`, "sticky")
	br.setValue(`#setting-slot`, "staging")
	br.typeInto(`#setting-key`, "API_TOKEN")
	br.click(`#setting-sticky`) // off again
	br.click(`#setting-secret`)
	br.typeInto(`#setting-value`, "s3cret-xyz")
	br.click(`button[data-key="setting-save"]`)
	br.confirm()
	br.present(`[data-slot="staging"] tr[data-setting="API_TOKEN"]`)
	br.contains(`[data-slot="staging"] tr[data-setting="API_TOKEN"]`, "secret")
	if eval[bool](br, `document.documentElement.outerHTML.includes("s3cret-xyz") || [...document.querySelectorAll('input')].some((i) => i.value.includes("s3cret-xyz"))`) {
		t.Fatal("the page holds a secret's value after saving it")
	}
	// Edit loads a setting into the form; a secret's value stays unknown.
	br.press(`button[data-key="setting-edit-staging-API_TOKEN"]`)
	if got := eval[string](br, `[document.querySelector('#setting-key').value, document.querySelector('#setting-secret').checked, document.querySelector('#setting-value').value, document.activeElement.id].join(' ')`); got != "API_TOKEN true  setting-value" {
		t.Fatalf("the form after Edit of a secret: %q", got)
	}
	br.press(`button[data-key="setting-remove-staging-GREETING"]`)
	br.confirm()
	br.gone(`[data-slot="staging"] tr[data-setting="GREETING"]`)
	settings, err := c.Settings(ctx, app, "staging")
	if err != nil {
		t.Fatal(err)
	}
	if len(settings) != 1 || settings[0].Key != "API_TOKEN" || !settings[0].Secret {
		t.Fatalf("staging settings: %+v", settings)
	}
	br.until("the settings' operations are done", `!document.querySelector('[data-running]')`)

	// Stabilize on r2: the sliders go, r2 has all the traffic.
	br.setValue(`#stabilize-production`, r2)
	br.click(`button[data-key="stabilize-production"]`)
	br.confirm()
	br.gone(`#weights`)
	br.present(`[data-slot="production"] tr[data-revision="` + r2 + `"][data-traffic="100"]`)
	if got := slotRouting(t, c, app, "production"); len(got) != 1 || got[r2] != 100 {
		t.Fatalf("routing after Stabilize: %v", got)
	}

	// Roll back to r1, chosen in the list.
	br.setValue(`#rollback-slot`, "production")
	br.until("r1 in the rollback list", `document.querySelector('#rollback-to option[value="`+r1+`"]')`)
	br.setValue(`#rollback-to`, r1)
	br.click(`button[data-key="rollback"]`)
	br.confirm()
	br.contains(`#rollback [role="status"]`, "Rollback")
	br.gone(`[data-slot="production"] tr[data-revision="` + r2 + `"]`)
	prod := slotRouting(t, c, app, "production")
	if len(prod) != 1 || prod[r1] != 100 {
		t.Fatalf("routing after Roll back: %v", prod)
	}
	br.until("the rollback's operation is done", `!document.querySelector('[data-running]')`)

	// A swap with preview: its progress, the preview, then complete.
	br.setValue(`#swap-source`, "staging")
	br.setValue(`#swap-target`, "production")
	br.click(`#swap-preview`)
	br.click(`button[data-key="swap"]`)
	br.confirm()
	br.present(`#swap [data-swap][data-phase="awaiting-completion"]`)
	br.present(`#swap .steps li[aria-current="step"]`)
	saveDoc(t, "dashboard-swap-preview.png", br.screenshot("actions-swap-preview"))
	swapID := eval[string](br, `document.querySelector('#swap [data-swap]').dataset.swap`)
	br.click(`button[data-key="swap-complete-` + swapID + `"]`)
	br.confirm()
	br.gone(`#swap [data-swap]`)
	if d := waitFinal(t, c, swapID); d.State != baton.StateSucceeded {
		t.Fatalf("swap %s: %s %s", swapID, d.State, d.Error)
	}
	br.present(`#swaps tr[data-deployment="` + swapID + `"][data-state="succeeded"]`)

	// No polling: the page has asked for traffic samples since it opened,
	// never for status.
	if n := eval[int](br, `performance.getEntriesByType('resource').filter((e) => /\/api\/v1\/(apps\/[^/]+\/)?status\b/.test(e.name)).length`); n != 0 {
		t.Fatalf("the page asked for status %d times with its event stream open", n)
	}
	if n := eval[int](br, `performance.getEntriesByType('resource').filter((e) => e.name.includes('/traffic')).length`); n < 3 {
		t.Fatalf("only %d traffic samples in the session: too short to show there is no polling", n)
	}
	br.sameLoad("the actions")

	// A folder, zipped by the page: staging serves it afterwards.
	folder := appDir(t, "f1")
	entries, _ := os.ReadDir(folder)
	var files []string
	for _, e := range entries {
		files = append(files, filepath.Join(folder, e.Name()))
	}
	// DevTools cannot fill a folder picker (webkitdirectory): the test
	// picks the folder's files in the same input made a plain multi-file
	// one; the page zips them the same way.
	eval[chromedp.Void](br, `document.querySelector('#deploy-folder').removeAttribute('webkitdirectory')`)
	br.do("pick the folder's files", chromedp.SetUploadFiles(chromedp.CSS(`#deploy-folder`), files))
	br.setValue(`#deploy-slot`, "staging")
	br.click(`button[data-key="deploy"]`)
	br.confirm()
	br.until("the folder deployment's page", `location.hash.startsWith('#/deployments/')`)
	folderDep := strings.TrimPrefix(eval[string](br, `location.hash`), "#/deployments/")
	fd := waitFinal(t, c, folderDep)
	if fd.State != baton.StateSucceeded || fd.Slot != "staging" || fd.ArtifactType != "zip" {
		t.Fatalf("folder deployment %s: %s %s (slot %s, %s)", folderDep, fd.State, fd.Error, fd.Slot, fd.ArtifactType)
	}
	if _, ok := slotRouting(t, c, app, "staging")[fd.Revision]; !ok {
		t.Fatalf("the folder's revision %s is not active in staging: %v", fd.Revision, slotRouting(t, c, app, "staging"))
	}
	eval[chromedp.Void](br, `location.hash = '#/apps/`+app+`'`)
	br.present(`#deploy`)

	// A phone-width window: no sideways scrolling with every panel shown.
	br.viewport(390, 844)
	br.until("no sideways scrolling at 390px", `document.documentElement.scrollWidth <= document.documentElement.clientWidth`)
	br.screenshot("actions-narrow")
	br.viewport(0, 0)

	// A 16 MiB upload: the bar moves through values below its end, then
	// the deployment's live page.
	br.do("pick the archive", chromedp.SetUploadFiles(chromedp.CSS(`#deploy-archive`), []string{uploadArtifact(t, appDir(t, "v3"), 16<<20)}))
	br.setValue(`#deploy-slot`, "production")
	// Loopback uploads 16 MiB in a blink: DevTools throttles the upload to
	// 8 MiB/s so that its progress is seen.
	br.do("throttle uploads", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{URLPattern: br.base + "/api/v1/apps/*/slots/*/deployments*", DownloadThroughput: -1, UploadThroughput: 8 << 20}},
		})
		return err
	}))
	eval[chromedp.Void](br, `window.progressSeen = []; new MutationObserver(() => {
		const p = document.querySelector('#upload-progress'); window.progressSeen.push([p.value, p.max]);
	}).observe(document.querySelector('#upload-progress'), {attributes: true})`)
	br.click(`button[data-key="deploy"]`)
	br.confirm()
	br.until("the deployment's page", `location.hash.startsWith('#/deployments/')`)
	moving := eval[int](br, `new Set(window.progressSeen.filter(([v, m]) => v > 0 && v < m).map(([v]) => v)).size`)
	if moving < 2 {
		t.Fatalf("the progress bar showed %d values between 0 and the end (%v); want it seen moving", moving, eval[any](br, `window.progressSeen`))
	}
	depID := strings.TrimPrefix(eval[string](br, `location.hash`), "#/deployments/")
	if d := waitFinal(t, c, depID); d.State != baton.StateSucceeded {
		t.Fatalf("uploaded deployment %s: %s %s", depID, d.State, d.Error)
	}
	br.present(`[data-state="succeeded"]`)
	br.sameLoad("the upload")

	// A read-only token: no action buttons; the API refuses anyway.
	br.click(`#who button`)
	br.present(`#login:not([hidden]) #token`)
	br.typeToken(viewer.Secret)
	br.present(`#who [data-token="viewer"]`)
	br.open("/apps/" + app)
	br.present(`main[data-events="open"]`)
	br.present(`#slots [data-slot="production"]`)
	for _, sel := range []string{`#deploy`, `#swap`, `#weights`, `#rollback`, `#scale`, `#freeze`, `#settings`, `button[data-key^="cancel-"]`, `button[data-key^="setting-"]`, `button[data-fix]`} {
		if eval[bool](br, `!!document.querySelector(`+js(sel)+`)`) {
			t.Errorf("a read-only token sees %s", sel)
		}
	}
	status, err := chromedp.Run(br.ctx, chromedp.Evaluate[int](`fetch('/api/v1/apps/`+app+`/freeze', {method: 'POST', headers: {Authorization: 'Bearer ' + sessionStorage.getItem('baton.token'), 'Content-Type': 'application/json'}, body: '{"reason":"x"}'}).then((r) => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != 403 {
		t.Fatalf("a read-only token's freeze: HTTP %d, want 403", status)
	}

	// The overview follows every app's stream: no status request either.
	eval[chromedp.Void](br, `location.hash = '#/'`)
	br.present(`main[data-events="open"] [data-app="` + app + `"]`)
	if n := eval[int](br, `performance.getEntriesByType('resource').filter((e) => /\/api\/v1\/(apps\/[^/]+\/)?status\b/.test(e.name)).length`); n != 0 {
		t.Fatalf("the pages asked for status %d times", n)
	}
}

// TestStatusWatch: `baton status APP -w` prints the status, then each
// change as the event stream sends it, and ends cleanly on Ctrl-C.
func TestStatusWatch(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "watched"); err != nil {
		t.Fatal(err)
	}
	w := followCLI(t, b, "status", "watched", "-w")
	eventually(t, 30*time.Second, "the status first", func() bool { _, ok := w.find("production"); return ok })
	if _, err := c.Freeze(ctx, "watched", "incident 9", false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the freeze line", func() bool { _, ok := w.find(": incident 9"); return ok })
	if _, err := c.Unfreeze(ctx, "watched"); err != nil {
		t.Fatal(err)
	}
	d := mustSucceed(t, c, "watched", appDir(t, "v1"))
	eventually(t, 30*time.Second, "the deployment's end", func() bool {
		_, ok := w.find("deploy " + d.ID + " finished: succeeded")
		return ok
	})
	eventually(t, 30*time.Second, "the routing line", func() bool { _, ok := w.find("routing: production/" + d.Revision + "=100%"); return ok })
}
