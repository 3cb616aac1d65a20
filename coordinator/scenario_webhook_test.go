package coordinator_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/server"
	"github.com/batonhq/baton/webhooks"
)

// TestWebhookWhenDeploymentEnds: baton serve with a webhook posts a
// signed event when a deployment succeeds, and retries it after the
// receiver answers 500.
func TestWebhookWhenDeploymentEnds(t *testing.T) {
	t.Parallel()
	secret := []byte("hook-secret")
	type hit struct {
		ev     webhooks.Event
		signed bool
		id     string
	}
	hits := make(chan hit, 8)
	var n atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev webhooks.Event
		json.Unmarshal(body, &ev)
		hits <- hit{ev, webhooks.Verify(secret, body, r.Header.Get(webhooks.SignatureHeader)), r.Header.Get(webhooks.DeliveryHeader)}
		if n.Add(1) == 1 {
			http.Error(w, "try again", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(recv.Close)
	secretFile := filepath.Join(t.TempDir(), "hook.secret")
	writeFile(t, secretFile, string(secret)+"\n")

	b := startBaton(t, func(c *server.Config) {
		c.Webhooks = []string{recv.URL + "/hook"}
		c.WebhookSecretFile = secretFile
	})
	b.createApp("hooked")
	d := b.mustDeploy("hooked", appDir(t, "v1"), api.DeployOptions{Message: "first"})

	if d.Revision == "" {
		t.Fatalf("deployment without revision: %+v", d)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		select {
		case h := <-hits:
			if !h.signed || h.id != d.ID+".succeeded" || h.ev.Type != "deployment.succeeded" ||
				h.ev.App != "hooked" || h.ev.Slot != "production" || h.ev.Deployment.Revision != d.Revision ||
				h.ev.Deployment.Message != "first" || h.ev.Deployment.FinishedAt == nil {
				t.Fatalf("attempt %d: %+v", attempt, h)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("attempt %d of the webhook never arrived", attempt)
		}
	}
}
