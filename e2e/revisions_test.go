package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// multipleApp creates an app in multiple revision mode with n active
// revisions v1..vn in production (v1 holding 100 %) and returns their names.
func multipleApp(t testing.TB, b *batonProc, app string, n int) []string {
	t.Helper()
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetRevisionMode(ctx, app, baton.RevisionsMultiple); err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := 1; i <= n; i++ {
		d := mustSucceed(t, c, app, appDir(t, fmt.Sprint("v", i)))
		names = append(names, d.Revision)
	}
	return names
}

func routingOf(t testing.TB, c *api.Client, app string) map[string]int {
	t.Helper()
	revs, err := c.Revisions(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range revs {
		if r.Active {
			out[r.Name] = r.Weight
		}
	}
	return out
}

// TestStabilize: from three active revisions with split traffic, one
// command leaves one active revision at 100 % with zero failed requests.
func TestStabilize(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	revs := multipleApp(t, b, "st", 3)
	if _, err := c.SetTraffic(ctx, "st", "production", map[string]int{revs[0]: 50, revs[1]: 30, revs[2]: 20}, ""); err != nil {
		t.Fatal(err)
	}
	p := newProxyClient(b.proxyAddr)
	l := startLoad(t, p, "st.localhost", 8)
	eventually(t, 10*time.Second, "load sees all three", func() bool {
		return l.count("v1") > 0 && l.count("v2") > 0 && l.count("v3") > 0
	})
	out, code := runCLI(t, b, "stabilize", "st")
	if code != 0 || !strings.Contains(out, revs[2]+" takes 100%") {
		t.Fatalf("stabilize: %d\n%s", code, out)
	}
	before := l.count("v3")
	eventually(t, 10*time.Second, "load sees v3 after", func() bool { return l.count("v3") > before+50 })
	_, failures := l.finish()
	if len(failures) > 0 {
		t.Fatalf("%d failed requests during stabilize, first: %s", len(failures), failures[0])
	}
	if got := routingOf(t, c, "st"); len(got) != 1 || got[revs[2]] != 100 {
		t.Fatalf("after stabilize: %v", got)
	}
	for _, r := range revs[:2] {
		eventually(t, 10*time.Second, r+" stopped", func() bool { return len(b.processesOf(r)) == 0 })
	}
	// Deactivated revisions can be activated again (files kept), at 0 %.
	if _, err := c.RevisionOp(ctx, "st", revs[0], "activate", "", ""); err != nil {
		t.Fatal(err)
	}
	if got := routingOf(t, c, "st"); got[revs[0]] != 0 || got[revs[2]] != 100 || len(got) != 2 {
		t.Fatalf("after activate: %v", got)
	}
	if _, err := c.RevisionOp(ctx, "st", revs[2], "deactivate", "", ""); baton.ErrorCode(err) != baton.ECONFLICT {
		t.Fatalf("deactivating the revision with traffic: %v, want a conflict", err)
	}
	if _, err := c.RevisionOp(ctx, "st", revs[0], "deactivate", "", ""); err != nil {
		t.Fatal(err)
	}
}
