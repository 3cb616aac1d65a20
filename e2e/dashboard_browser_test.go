package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto"
	jsonv2 "github.com/chromedp/cdproto/cdp/jsonv2"
	"github.com/chromedp/chromedp"
)

// chromiumPath is the browser the dashboard tests drive: Debian's chromium
// package, which ./test.sh installs (scripts/chromium.sh).
const chromiumPath = "/usr/bin/chromium"

// browserWait bounds every wait for the page; deployments under the race
// detector on shared cores take seconds, not minutes.
const browserWait = 60 * time.Second

// screenshotDir holds the screenshots of a test run (git-ignored).
const screenshotDir = "screenshots"

// browser is a headless Chromium tab on baton's dashboard.
type browser struct {
	t    testing.TB
	ctx  context.Context
	base string

	mu         sync.Mutex
	exceptions []string
	errors     []string
}

// chromium is the one headless Chromium the dashboard tests share: the
// first newBrowser starts it, TestMain stops it after the last test. Each
// test gets a browser context of its own (its own storage, cookies and
// window, what a fresh profile gave it) without the cost of a browser
// start.
var chromium struct {
	once   sync.Once
	ctx    context.Context // the browser's first tab; contexts open under it
	cancel func()
	err    error
}

// sharedChromium starts the shared browser once and returns its context.
func sharedChromium() (context.Context, error) {
	chromium.once.Do(func() {
		if err := warmConsoleDecoders(); err != nil {
			chromium.err = err
			return
		}
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(chromiumPath),
			chromedp.Flag("headless", "new"),
			chromedp.NoSandbox, // tests run as root
			chromedp.DisableGPU,
			// Overlay scrollbars would take width from screenshots only.
			chromedp.Flag("hide-scrollbars", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			// /dev/shm is small in containers; Chromium crashes when it fills.
			chromedp.Flag("disable-dev-shm-usage", true),
			// Removed with the binaries, after the browser exits.
			chromedp.UserDataDir(filepath.Join(binDir, "chromium-profile")),
			chromedp.WindowSize(1280, 900),
		)
		ctx, cancel := chromedp.NewContext(allocCtx)
		chromium.ctx = ctx
		// cancelAlloc waits until the browser has exited.
		chromium.cancel = func() { cancel(); cancelAlloc() }
		if err := chromedp.Do(ctx); err != nil {
			chromium.err = fmt.Errorf("start %s: %w", chromiumPath, err)
		}
	})
	return chromium.ctx, chromium.err
}

// warmConsoleDecoders decodes each console event the tests read once, in
// this goroutine, before any of chromedp's goroutines exists. The JSON
// library chromedp uses builds a decoder per type on first use and caches
// it in a sync.Map; when a tab's reader and chromedp.Console built the
// first one for the same event at once (the run's first console message),
// the race detector reported a race between them, which failed every test
// running then. Built here, the decoders reach later goroutines through
// their creation.
func warmConsoleDecoders() error {
	events := map[cdproto.MethodType]string{
		cdproto.EventRuntimeConsoleAPICalled: `{"type":"error","args":[{"type":"string","value":"warm"}],"executionContextId":1,"timestamp":1,"stackTrace":{"callFrames":[{"functionName":"f","scriptId":"1","url":"u","lineNumber":0,"columnNumber":0}]}}`,
		cdproto.EventRuntimeExceptionThrown:  `{"timestamp":1,"exceptionDetails":{"exceptionId":1,"text":"warm","lineNumber":0,"columnNumber":0,"url":"u","exception":{"type":"object","description":"Error: warm"}}}`,
		cdproto.EventLogEntryAdded:           `{"entry":{"source":"network","level":"error","text":"warm","timestamp":1,"url":"u","lineNumber":0}}`,
	}
	opts := chromedp.DefaultUnmarshalOptions
	for method, params := range events {
		raw := []byte(fmt.Sprintf(`{"method":%q,"params":%s}`, method, params))
		// The shape chromedp.Console reads a tagged event into first,
		// then the message and its event, as a tab's reader does.
		var tagged struct {
			Method string       `json:"method"`
			Params jsonv2.Value `json:"params"`
		}
		var msg cdproto.Message
		err := jsonv2.Unmarshal(raw, &tagged, opts)
		if err == nil {
			err = jsonv2.Unmarshal(raw, &msg, opts)
		}
		if err == nil {
			_, err = cdproto.UnmarshalMessage(&msg, opts)
		}
		if err != nil {
			return fmt.Errorf("warm the decoder of %s: %w", method, err)
		}
	}
	return nil
}

// stopChromium stops the shared browser, if a test started it.
func stopChromium() {
	if chromium.cancel != nil {
		chromium.cancel()
	}
}

// newBrowser opens a window in a new browser context of the shared
// Chromium (a fresh profile's state). It fails the test when Chromium is
// missing: a skipped browser test would pass CI unseen.
func newBrowser(t testing.TB, b *batonProc) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the dashboard tests need Chromium at %s (%v); run ./test.sh, or scripts/chromium.sh, which installs it", chromiumPath, err)
	}
	parent, err := sharedChromium()
	if err != nil {
		t.Fatal(err)
	}
	// Cancelling closes the window and disposes of the browser context.
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a browser context: %v", err)
	}
	br := &browser{t: t, ctx: ctx, base: "http://" + b.apiAddr}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			br.mu.Lock()
			switch {
			case m.IsException():
				br.exceptions = append(br.exceptions, fmt.Sprintf("%s (%s:%d)", m.Text, m.URL, m.Line+1))
			case m.Type == chromedp.ConsoleError:
				br.errors = append(br.errors, m.Text)
			}
			br.mu.Unlock()
		}
	}()
	// Runs before the browser closes: a script error fails the test even
	// when the page still looked right.
	t.Cleanup(func() {
		br.mu.Lock()
		defer br.mu.Unlock()
		for _, e := range br.exceptions {
			t.Errorf("uncaught exception in the dashboard: %s", e)
		}
		if t.Failed() && len(br.errors) > 0 {
			t.Logf("browser console errors:\n%v", br.errors)
		}
	})
	return br
}

// js is s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// do runs actions with the wait deadline.
func (br *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	br.t.Helper()
	ctx, cancel := context.WithTimeout(br.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		br.t.Fatalf("%s: %v\npage:\n%s", what, err, br.pageText())
	}
}

// open loads the dashboard at fragment ("/", "/apps/hello"): a page load.
func (br *browser) open(fragment string) {
	br.t.Helper()
	br.do("open #"+fragment, chromedp.Navigate(br.base+"/#"+fragment))
}

// signIn opens the dashboard and signs in with b's admin token through
// the form the page shows when the API first answers 401.
func (br *browser) signIn(b *batonProc) {
	br.t.Helper()
	br.open("/")
	br.present(`#login:not([hidden]) #token`)
	br.typeToken(b.token)
	br.present(`#who [data-token]`)
	br.present(`#login[hidden]`)
}

// typeToken enters a token into the sign-in form and submits it.
func (br *browser) typeToken(token string) {
	br.t.Helper()
	br.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login button")))
}

// pageText is what the page shows, for failure messages.
func (br *browser) pageText() string {
	ctx, cancel := context.WithTimeout(br.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// until waits for a JavaScript condition to hold.
func (br *browser) until(what, cond string) {
	br.t.Helper()
	ctx, cancel := context.WithTimeout(br.ctx, browserWait+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!(`+cond+`)`,
		chromedp.WithPollingTimeout(browserWait), chromedp.WithPollingInterval(50*time.Millisecond)))
	if errors.Is(err, chromedp.ErrPollingTimeout) {
		br.t.Fatalf("timed out after %s waiting for the page to show %s\npage:\n%s", browserWait, what, br.pageText())
	}
	if err != nil {
		br.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// present waits for an element matching the CSS selector.
func (br *browser) present(sel string) {
	br.t.Helper()
	br.until(sel, `document.querySelector(`+js(sel)+`)`)
}

// gone waits until no element matches the CSS selector.
func (br *browser) gone(sel string) {
	br.t.Helper()
	br.until("no "+sel, `!document.querySelector(`+js(sel)+`)`)
}

// count waits until exactly n elements match the CSS selector.
func (br *browser) count(sel string, n int) {
	br.t.Helper()
	br.until(fmt.Sprintf("%d × %s", n, sel), fmt.Sprintf(`document.querySelectorAll(%s).length === %d`, js(sel), n))
}

// contains waits for an element matching sel whose text contains text.
func (br *browser) contains(sel, text string) {
	br.t.Helper()
	br.until(fmt.Sprintf("%q in %s", text, sel),
		fmt.Sprintf(`[...document.querySelectorAll(%s)].some((e) => e.textContent.includes(%s))`, js(sel), js(text)))
}

// click clicks the element matching the CSS selector once it is visible.
func (br *browser) click(sel string) {
	br.t.Helper()
	br.do("click "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// eval runs JavaScript and decodes its result.
func eval[T any](br *browser, expr string) T {
	br.t.Helper()
	ctx, cancel := context.WithTimeout(br.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		br.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// markLoad tags the current document; sameLoad checks the tag is still
// there, i.e. the page updated itself without being reloaded.
func (br *browser) markLoad() { eval[chromedp.Void](br, `window.batonTestLoad = true`) }

func (br *browser) sameLoad(what string) {
	br.t.Helper()
	if !eval[bool](br, `window.batonTestLoad === true`) {
		br.t.Fatalf("the page was reloaded during %s; it must update in place", what)
	}
}

// screenshot saves the whole page as screenshots/NAME.png (and returns it).
func (br *browser) screenshot(name string) []byte {
	br.t.Helper()
	ctx, cancel := context.WithTimeout(br.ctx, browserWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		br.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		br.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		br.t.Fatal(err)
	}
	return png
}

// viewport resizes the page's viewport (0, 0: back to the window's).
func (br *browser) viewport(width, height int64) {
	br.t.Helper()
	if width == 0 {
		br.do("reset the viewport", chromedp.ResetViewport())
		return
	}
	br.do("set the viewport", chromedp.EmulateViewport(width, height))
}
