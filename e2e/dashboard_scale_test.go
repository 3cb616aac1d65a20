package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// TestDashboardScale drives the app page's Scale action in Chromium: a
// scale the API refuses shows the problem's sentence in the panel and
// queues nothing; a scale to 2 instances queues a scale operation with
// those params, the panel follows it to succeeded from the event stream
// (no reload), the slot shows its new scale, and the API's status has it
// with the revision running 2 healthy instances.
func TestDashboardScale(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	const app = "scaled"
	if _, err := c.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	rev := mustSucceed(t, c, app, appDir(t, "v1")).Revision

	br := newBrowser(t, b)
	br.signIn(b)
	br.open("/apps/" + app)
	br.present(`main[data-events="open"]`)
	br.present(`#scale`)
	br.markLoad()
	br.contains(`#scale-now`, "as each revision's manifest says")
	before, err := c.Deployments(ctx, app, 100)
	if err != nil {
		t.Fatal(err)
	}

	// Refused by the API: its sentence, in place; nothing queued.
	br.typeInto(`#scale-instances`, "65")
	br.click(`button[data-key="scale"]`)
	br.confirm()
	br.contains(`#scale .problems`, "instances must be between 1 and 64, got 65")
	if after, err := c.Deployments(ctx, app, 100); err != nil || len(after) != len(before) {
		t.Fatalf("a refused scale changed the history: %d operations, then %d (%v)", len(before), len(after), err)
	}

	// Two instances: the operation the API queued, then its end.
	br.typeInto(`#scale-instances`, "2")
	br.click(`button[data-key="scale"]`)
	br.confirm()
	br.contains(`#scale [role="status"]`, "of production to 2 instances is")
	br.present(`#scale .scale-outcome[data-scale-op]`)
	br.gone(`#scale .problems p`)
	id := eval[string](br, `document.querySelector('#scale .scale-outcome').dataset.scaleOp`)
	d, err := c.Deployment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := baton.DecodeParams[baton.ScaleParams](d.Kind, d.Params)
	if err != nil || d.Kind != baton.KindScale || d.Slot != baton.ProductionSlot || d.Author != "dashboard" || sp != (baton.ScaleParams{Instances: 2}) {
		t.Fatalf("the page queued %+v (params %+v, %v); want a scale of production to 2 instances by dashboard", d, sp, err)
	}
	// The page follows it to the end the API reports, from the stream.
	d = waitFinal(t, c, id)
	br.present(`#scale .scale-outcome[data-scale-op="` + id + `"][data-state="` + string(d.State) + `"]`)
	if d.State != baton.StateSucceeded {
		log, _ := c.Log(ctx, id)
		br.contains(`#scale .scale-outcome.problem`, d.Error)
		t.Fatalf("scale %s: %s %s (the page says so)\n%s", id, d.State, d.Error, log)
	}
	br.present(`[data-slot="production"] [data-scale="2/0"]`)
	br.present(`#scale-now[data-scale="2/0"]`)
	br.sameLoad("the scale")

	// The API: the slot's scale, and the revision at 2 healthy instances.
	var st baton.AppStatus
	eventually(t, 30*time.Second, rev+" at 2 healthy instances", func() bool {
		if st, err = c.Status(ctx, app); err != nil {
			t.Fatal(err)
		}
		for _, s := range st.Slots {
			for _, r := range s.Revisions {
				if s.Name == baton.ProductionSlot && r.Name == rev {
					return r.Healthy == 2
				}
			}
		}
		return false
	})
	for _, s := range st.Slots {
		if s.Name == baton.ProductionSlot && (s.Scale == nil || s.Scale.Instances != 2 || s.Scale.MaxPerHost != 0) {
			t.Fatalf("status of production: scale %+v, want 2 instances and no cap", s.Scale)
		}
	}
}
