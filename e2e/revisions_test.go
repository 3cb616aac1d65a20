package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestWeightedTraffic: in multiple mode an 80/20 split is honoured within
// statistical bounds; the cookie keeps a client on its revision; the
// Baton-Revision header pins.
func TestWeightedTraffic(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	revs := multipleApp(t, b, "split", 2)
	if got := routingOf(t, c, "split"); got[revs[0]] != 100 || got[revs[1]] != 0 {
		t.Fatalf("after two deploys in multiple mode: %v, want the new revision at 0 %%", got)
	}
	if _, err := c.SetTraffic(ctx, "split", "production", map[string]int{revs[0]: 80, revs[1]: 20}, ""); err != nil {
		t.Fatal(err)
	}
	p := newProxyClient(b.proxyAddr)
	counts := map[string]int{}
	const n = 2000
	for i := 0; i < n; i++ {
		status, body, err := p.get("split.localhost", "/")
		if err != nil || status != 200 {
			t.Fatalf("request %d: %d %v", i, status, err)
		}
		counts[version(body)]++
	}
	share := float64(counts["v1"]) / n
	t.Logf("80/20 split over %d requests: %v (v1 share %.3f)", n, counts, share)
	if share < 0.76 || share > 0.84 {
		t.Fatalf("v1 share %.3f outside 0.80 ± 0.04", share)
	}

	// A client with a cookie jar stays on the revision it first got.
	jar, _ := cookiejar.New(nil)
	sticky := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	first := ""
	for i := 0; i < 50; i++ {
		req, _ := http.NewRequest("GET", "http://"+b.proxyAddr+"/", nil)
		req.Host = "split.localhost"
		resp, err := sticky.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		buf := make([]byte, 1024)
		n, _ := resp.Body.Read(buf)
		sb.Write(buf[:n])
		resp.Body.Close()
		// The jar keys cookies by the URL's host (the proxy address).
		v := version(sb.String())
		if first == "" {
			first = v
		} else if v != first {
			t.Fatalf("request %d with the cookie went to %s, first went to %s", i, v, first)
		}
	}

	// The header pins any active revision.
	for _, rev := range revs {
		req, _ := http.NewRequest("GET", "http://"+b.proxyAddr+"/", nil)
		req.Host = "split.localhost"
		req.Header.Set("Baton-Revision", rev)
		for i := 0; i < 20; i++ {
			resp, err := p.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1024)
			n, _ := resp.Body.Read(buf)
			resp.Body.Close()
			if !strings.Contains(string(buf[:n]), `"revision":"`+rev+`"`) {
				t.Fatalf("pinned to %s, answered %s", rev, buf[:n])
			}
		}
	}
}

// TestInvalidWeights: each broken rule is a problem naming it, and nothing
// changes.
func TestInvalidWeights(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	revs := multipleApp(t, b, "w", 2)
	// A third revision that is never healthy stays inactive: deploy fails.
	before := routingOf(t, c, "w")
	cases := []struct {
		name    string
		weights map[string]int
		code    string
		text    string
	}{
		{"sum 99", map[string]int{revs[0]: 80, revs[1]: 19}, baton.EINVALID, "sum to 99"},
		{"negative", map[string]int{revs[0]: 110, revs[1]: -10}, baton.EINVALID, "0 to 100"},
		{"unknown revision", map[string]int{revs[0]: 50, "w--000099": 50}, baton.ECONFLICT, "not an active revision"},
	}
	for _, tc := range cases {
		_, err := c.SetTraffic(ctx, "w", "production", tc.weights, "")
		if baton.ErrorCode(err) != tc.code || !strings.Contains(baton.ErrorMessage(err), tc.text) {
			t.Errorf("%s: %v, want %s mentioning %q", tc.name, err, tc.code, tc.text)
		}
	}
	// Unhealthy revision: make revs[1]'s instance unhealthy by stopping it.
	for _, pid := range b.processesOf(revs[1]) {
		syscall.Kill(pid, syscall.SIGSTOP)
		defer syscall.Kill(pid, syscall.SIGCONT)
	}
	eventually(t, 20*time.Second, revs[1]+" reported unhealthy", func() bool {
		r, err := c.Revision(ctx, "w", revs[1])
		return err == nil && r.HealthyInstances == 0
	})
	_, err := c.SetTraffic(ctx, "w", "production", map[string]int{revs[0]: 50, revs[1]: 50}, "")
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "no healthy instance") {
		t.Errorf("traffic to an unhealthy revision: %v", err)
	}
	for _, pid := range b.processesOf(revs[1]) {
		syscall.Kill(pid, syscall.SIGCONT)
	}
	// Two revisions with traffic in single mode.
	if _, err := c.SetRevisionMode(ctx, "w", baton.RevisionsSingle); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, revs[1]+" healthy again", func() bool {
		r, err := c.Revision(ctx, "w", revs[1])
		return err == nil && r.HealthyInstances == 1
	})
	_, err = c.SetTraffic(ctx, "w", "production", map[string]int{revs[0]: 50, revs[1]: 50}, "")
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "single revision mode") {
		t.Errorf("split in single mode: %v", err)
	}
	if after := routingOf(t, c, "w"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("refused changes changed routing: %v → %v", before, after)
	}
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

// TestRevisionRetention: only the newest 10 inactive revisions keep their
// files; reactivating an older one says why it cannot.
func TestRevisionRetention(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "ret"); err != nil {
		t.Fatal(err)
	}
	var revs []string
	for i := 1; i <= 13; i++ {
		revs = append(revs, mustSucceed(t, c, "ret", appDir(t, fmt.Sprint("v", i))).Revision)
	}
	for i, rev := range revs {
		_, err := os.Stat(filepath.Join(b.data, "apps", "ret", "revisions", rev))
		if kept := i >= 2; kept != (err == nil) {
			t.Errorf("revision %s: files kept = %v, want %v", rev, err == nil, kept)
		}
	}
	_, err := c.RevisionOp(ctx, "ret", revs[0], "activate", "", "")
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "files") {
		t.Fatalf("activating a pruned revision: %v", err)
	}
	if _, err := c.RevisionOp(ctx, "ret", revs[5], "activate", "", ""); err != nil {
		t.Fatalf("activating a kept revision: %v", err)
	}
}
