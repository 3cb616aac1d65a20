package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/webhooks"
)

// hookReceiver is a real HTTP receiver: it verifies each request's
// signature, records it, and refuses (503) while refuse says so.
type hookReceiver struct {
	url    string
	secret []byte
	refuse atomic.Bool
	mu     sync.Mutex
	got    []hookHit
}

type hookHit struct {
	event, delivery, attempt string
	signed, accepted         bool
	body                     webhooks.Event
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	t.Helper()
	h := &hookReceiver{secret: []byte(secret)}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hit := hookHit{event: r.Header.Get(webhooks.EventHeader), delivery: r.Header.Get(webhooks.DeliveryHeader),
			attempt: r.Header.Get("X-Baton-Attempt"),
			signed:  webhooks.Verify(h.secret, body, r.Header.Get(webhooks.SignatureHeader)), accepted: !h.refuse.Load()}
		json.Unmarshal(body, &hit.body)
		h.mu.Lock()
		h.got = append(h.got, hit)
		h.mu.Unlock()
		if !hit.accepted {
			http.Error(w, "not now", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(s.Close)
	h.url = s.URL + "/hook"
	return h
}

// hits returns the requests so far of event id (all when "").
func (h *hookReceiver) hits(id string) []hookHit {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookHit
	for _, x := range h.got {
		if id == "" || x.delivery == id {
			out = append(out, x)
		}
	}
	return out
}

// TestWebhooksFromStoreRetriedAndSurviveRestart: a hook added with `baton
// hooks add` gets a signed deployment.succeeded event; the receiver refuses
// twice and baton is stopped while it refuses, then started again: the
// receiver then gets the event once, accepted, with the same event id, and
// `baton hooks deliveries` shows it delivered after 3 attempts. A hook for
// other events gets nothing; a conflict.* hook hears of the freeze's
// conflict; hooks test sends a ping.
func TestWebhooksFromStoreRetriedAndSurviveRestart(t *testing.T) {
	t.Parallel()
	b := startBaton(t, "--webhook-backoff", "200ms")
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "hooked"); err != nil {
		t.Fatal(err)
	}
	recv := newHookReceiver(t, "hook-secret")
	other := newHookReceiver(t, "")
	out, code := runCLI(t, b, "hooks", "add", recv.url, "--app", "hooked", "--events", "deployment.succeeded,deployment.failed,swap.*", "--secret", "hook-secret", "--json")
	if code != 0 {
		t.Fatalf("hooks add: %d\n%s", code, out)
	}
	var hook baton.Hook
	if err := json.Unmarshal([]byte(out), &hook); err != nil || !hook.Signed || hook.App != "hooked" {
		t.Fatalf("hooks add printed %q (%v)", out, err)
	}
	if out, code := runCLI(t, b, "hooks", "add", other.url, "--events", "swap.*"); code != 0 {
		t.Fatalf("hooks add (other): %d\n%s", code, out)
	}
	conflicts := newHookReceiver(t, "")
	if out, code := runCLI(t, b, "hooks", "add", conflicts.url, "--events", "conflict.*"); code != 0 {
		t.Fatalf("hooks add (conflicts): %d\n%s", code, out)
	}
	for _, bad := range []string{"ftp://example.com/x", "file:///etc/passwd"} {
		if out, code := runCLI(t, b, "hooks", "add", bad); code == 0 || !strings.Contains(out, "http") {
			t.Fatalf("hooks add %s: exit %d\n%s", bad, code, out)
		}
	}
	out, _ = runCLI(t, b, "hooks", "list")
	if !strings.Contains(out, hook.ID) || !strings.Contains(out, "deployment.succeeded,deployment.failed,swap.*") {
		t.Fatalf("hooks list:\n%s", out)
	}

	recv.refuse.Store(true)
	d := deploy(t, c, "hooked", appDir(t, "v1"), api.DeployOptions{Message: "first"})
	d = waitFinal(t, c, d.ID)
	if d.State != baton.StateSucceeded {
		t.Fatalf("deployment %s", d.State)
	}
	event := d.ID + ".succeeded"
	eventually(t, 20*time.Second, "two refused attempts", func() bool { return len(recv.hits(event)) >= 2 })
	b.stop(syscall.SIGTERM)
	refused := len(recv.hits(event))
	recv.refuse.Store(false)
	b.start()
	eventually(t, 30*time.Second, "the event is delivered after the restart", func() bool {
		hs := recv.hits(event)
		return len(hs) > 0 && hs[len(hs)-1].accepted
	})
	hs := recv.hits(event)
	accepted := 0
	for i, h := range hs {
		if !h.signed || h.event != "deployment.succeeded" || h.body.App != "hooked" || h.body.Deployment.Message != "first" ||
			h.body.Deployment.Revision != d.Revision || h.body.ID != event {
			t.Errorf("request %d: %+v", i, h)
		}
		if h.accepted {
			accepted++
		}
	}
	if accepted != 1 || len(hs) != refused+1 {
		t.Fatalf("%d requests (%d before the restart), %d accepted; want one more after the restart, accepted", len(hs), refused, accepted)
	}
	eventually(t, 10*time.Second, "hooks deliveries shows it delivered", func() bool {
		out, code := runCLI(t, b, "hooks", "deliveries", hook.ID, "--json")
		var ds []baton.Delivery
		json.Unmarshal([]byte(out), &ds)
		return code == 0 && len(ds) == 1 && ds[0].EventID == event && ds[0].State == baton.DeliveryDelivered &&
			ds[0].Attempts == len(hs) && ds[0].LastStatus == 200
	})
	if got := other.hits(""); len(got) != 0 {
		t.Fatalf("a hook for swap.* only got %+v", got)
	}

	// Freezing the app makes the app_frozen conflict appear in its status.
	if out, code := runCLI(t, b, "freeze", "hooked", "--reason", "webhook test"); code != 0 {
		t.Fatalf("freeze: %d\n%s", code, out)
	}
	eventually(t, 20*time.Second, "a conflict.app_frozen event", func() bool {
		for _, h := range conflicts.hits("") {
			if h.event == "conflict.app_frozen" && h.body.App == "hooked" && h.body.Conflict != nil && h.body.Conflict.Fix != "" {
				return true
			}
		}
		return false
	})
	for _, h := range conflicts.hits("") {
		if !strings.HasPrefix(h.event, "conflict.") {
			t.Fatalf("the conflict.* hook got %+v", h)
		}
	}

	out, code = runCLI(t, b, "hooks", "test", hook.ID)
	if code != 0 {
		t.Fatalf("hooks test: %d\n%s", code, out)
	}
	eventually(t, 10*time.Second, "the ping arrives", func() bool {
		for _, h := range recv.hits("") {
			if h.event == webhooks.PingType && h.signed {
				return true
			}
		}
		return false
	})
	if out, code := runCLI(t, b, "hooks", "remove", hook.ID); code != 0 {
		t.Fatalf("hooks remove: %d\n%s", code, out)
	}
	if out, _ := runCLI(t, b, "hooks", "list"); strings.Contains(out, hook.ID) {
		t.Fatalf("removed hook still listed:\n%s", out)
	}
	audit, err := c.Audit(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range audit {
		if strings.HasPrefix(a.Action, "hook.") {
			actions = append(actions, a.Action)
		}
	}
	if got := strings.Join(actions, ","); !strings.Contains(got, "hook.remove") || !strings.Contains(got, "hook.test") || !strings.Contains(got, "hook.add") {
		t.Fatalf("audit hook actions = %s", got)
	}
}
