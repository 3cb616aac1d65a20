package coordinator_test

import (
	"context"
	"fmt"
	"io"
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
	"github.com/batonhq/baton/server"
)

// multipleApp creates an app in multiple revision mode with n active
// revisions v1..vn in production (v1 holding 100 %) and returns their names.
func (b *batonEnv) multipleApp(app string, n int) []string {
	b.t.Helper()
	b.createApp(app)
	if _, err := b.c.SetRevisionMode(context.Background(), app, baton.RevisionsMultiple); err != nil {
		b.t.Fatal(err)
	}
	var names []string
	for i := 1; i <= n; i++ {
		names = append(names, b.mustDeploy(app, appDir(b.t, fmt.Sprint("v", i)), api.DeployOptions{}).Revision)
	}
	return names
}

// metrics is what baton's /metrics exposes now.
func (b *batonEnv) metrics() string {
	b.t.Helper()
	req, err := http.NewRequest("GET", "http://"+b.srv.APIAddr()+"/metrics", nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := b.c.HTTP.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		b.t.Fatalf("GET /metrics: %d %v\n%s", resp.StatusCode, err, body)
	}
	return string(body)
}

// TestScenarioWeightedTraffic: in multiple mode a new revision joins at
// 0 %; an 80/20 split is honoured within statistical bounds; the cookie
// keeps a client on its revision; the Baton-Revision header pins; a
// deploy asking for a weight gets it.
func TestScenarioWeightedTraffic(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	revs := b.multipleApp("split", 2)
	if got := b.routing("split"); got[revs[0]] != 100 || got[revs[1]] != 0 {
		t.Fatalf("after two deploys in multiple mode: %v, want the new revision at 0 %%", got)
	}
	op, err := b.c.SetTraffic(ctx, "split", "production", map[string]int{revs[0]: 80, revs[1]: 20}, "")
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(op.ID)
	counts := map[string]int{}
	const n = 400
	for i := 0; i < n; i++ {
		counts[b.ask(host("split", "")).Version]++
	}
	if share := float64(counts["v1"]) / n; share < 0.72 || share > 0.88 {
		t.Fatalf("v1 share %.3f outside 0.80 ± 0.08 (4σ at 400 requests): %v", share, counts)
	}
	// /metrics reports the weights, the instances' health and the queue
	// as they stand when scraped.
	m := b.metrics()
	for _, line := range []string{
		fmt.Sprintf(`baton_revision_traffic_percent{app="split",revision=%q,slot="production"} 80`, revs[0]),
		fmt.Sprintf(`baton_revision_traffic_percent{app="split",revision=%q,slot="production"} 20`, revs[1]),
		fmt.Sprintf(`baton_instance_healthy{app="split",instance="1",revision=%q,slot="production"} 1`, revs[1]),
		fmt.Sprintf(`baton_instance_restarts_total{app="split",instance="1",revision=%q,slot="production"} 0`, revs[0]),
		`baton_queue_length{app="split"} 0`,
	} {
		if !strings.Contains(m, "\n"+line+"\n") {
			t.Errorf("/metrics has no line %s", line)
		}
	}

	jar, _ := cookiejar.New(nil)
	sticky := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	first := ""
	for i := 0; i < 20; i++ {
		req, _ := http.NewRequest("GET", "http://"+b.srv.ProxyAddr()+"/", nil)
		req.Host = host("split", "")
		resp, err := sticky.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		v := string(body)
		if first == "" {
			first = v[strings.Index(v, `"revision"`):]
			first = first[:strings.IndexByte(first, ',')]
		} else if !strings.Contains(v, first) {
			t.Fatalf("request %d with the cookie went to %s, first went to %s", i, v, first)
		}
	}
	for _, rev := range revs {
		for i := 0; i < 5; i++ {
			if a := b.ask(host("split", ""), "Baton-Revision", rev); a.Revision != rev {
				t.Fatalf("pinned to %s, answered %+v", rev, a)
			}
		}
	}

	w := 30
	d := b.mustDeploy("split", appDir(t, "v3"), api.DeployOptions{Weight: &w})
	if got := b.routing("split"); got[d.Revision] != 30 || got[revs[0]]+got[revs[1]] != 70 {
		t.Fatalf("after a deploy asking for 30 %%: %v", got)
	}
}

// TestScenarioInvalidWeights: each broken rule is a problem naming it, and
// nothing changes.
func TestScenarioInvalidWeights(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	revs := b.multipleApp("w", 2)
	before := b.routing("w")
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
		_, err := b.c.SetTraffic(ctx, "w", "production", tc.weights, "")
		if baton.ErrorCode(err) != tc.code || !strings.Contains(baton.ErrorMessage(err), tc.text) {
			t.Errorf("%s: %v, want %s mentioning %q", tc.name, err, tc.code, tc.text)
		}
	}
	pids := b.processes(revs[1])
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	cont := func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(cont)
	eventually(t, 20*time.Second, revs[1]+" reported unhealthy", func() bool {
		r, err := b.c.Revision(ctx, "w", revs[1])
		return err == nil && r.HealthyInstances == 0
	})
	_, err := b.c.SetTraffic(ctx, "w", "production", map[string]int{revs[0]: 50, revs[1]: 50}, "")
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "no healthy instance") {
		t.Errorf("traffic to an unhealthy revision: %v", err)
	}
	cont()
	eventually(t, 20*time.Second, revs[1]+" healthy again", func() bool {
		r, err := b.c.Revision(ctx, "w", revs[1])
		return err == nil && r.HealthyInstances == 1
	})
	// Single mode with two active revisions would be a conflict at once.
	if _, err := b.c.SetRevisionMode(ctx, "w", baton.RevisionsSingle); baton.ErrorCode(err) != baton.ECONFLICT ||
		!strings.Contains(baton.ErrorMessage(err), "baton stabilize w --revision") {
		t.Errorf("single mode with two active revisions: %v", err)
	}
	if after := b.routing("w"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("refused changes changed routing: %v → %v", before, after)
	}
}

// TestScenarioStabilize: from three active revisions with split traffic,
// stabilize leaves one active revision at 100 % with zero failed requests;
// deactivated revisions can be activated again (at 0 %), restarted, and
// deactivated; the one with traffic cannot be deactivated.
func TestScenarioStabilize(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	revs := b.multipleApp("st", 3)
	op, err := b.c.SetTraffic(ctx, "st", "production", map[string]int{revs[0]: 50, revs[1]: 30, revs[2]: 20}, "")
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(op.ID)
	l := b.startLoad(host("st", ""), 4)
	eventually(t, 10*time.Second, "load sees all three", func() bool {
		return l.count("v1") > 0 && l.count("v2") > 0 && l.count("v3") > 0
	})
	op, err = b.c.Stabilize(ctx, "st", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(op.ID)
	if log, _ := b.c.Log(ctx, op.ID); !strings.Contains(log, revs[2]) {
		t.Errorf("stabilize log does not name %s:\n%s", revs[2], log)
	}
	before := l.count("v3")
	eventually(t, 10*time.Second, "load sees v3 after", func() bool { return l.count("v3") > before+50 })
	if _, failures := l.finish(); len(failures) > 0 {
		t.Fatalf("%d failed requests during stabilize, first: %s", len(failures), failures[0])
	}
	if got := b.routing("st"); len(got) != 1 || got[revs[2]] != 100 {
		t.Fatalf("after stabilize: %v", got)
	}
	for _, r := range revs[:2] {
		eventually(t, 10*time.Second, r+" stopped", func() bool { return len(b.processes(r)) == 0 })
	}
	if _, err := b.c.RevisionOp(ctx, "st", revs[0], "activate", "", ""); err != nil {
		t.Fatal(err)
	}
	if got := b.routing("st"); got[revs[0]] != 0 || got[revs[2]] != 100 || len(got) != 2 {
		t.Fatalf("after activate: %v", got)
	}
	pid := b.ask(host("st", "")).PID
	if _, err := b.c.RevisionOp(ctx, "st", revs[2], "restart", "", ""); err != nil {
		t.Fatal(err)
	}
	if a := b.ask(host("st", "")); a.PID == pid || a.Version != "v3" {
		t.Fatalf("after restart: %+v (pid before %d)", a, pid)
	}
	if _, err := b.c.RevisionOp(ctx, "st", revs[2], "deactivate", "", ""); baton.ErrorCode(err) != baton.ECONFLICT {
		t.Fatalf("deactivating the revision with traffic: %v, want a conflict", err)
	}
	if _, err := b.c.RevisionOp(ctx, "st", revs[0], "deactivate", "", ""); err != nil {
		t.Fatal(err)
	}
	if got := b.routing("st"); len(got) != 1 {
		t.Fatalf("after deactivate: %v", got)
	}
	// Stabilize on a named revision.
	if _, err := b.c.RevisionOp(ctx, "st", revs[1], "activate", "", ""); err != nil {
		t.Fatal(err)
	}
	op, err = b.c.Stabilize(ctx, "st", "", revs[1], "")
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(op.ID)
	if got := b.routing("st"); len(got) != 1 || got[revs[1]] != 100 {
		t.Fatalf("after stabilize --revision: %v", got)
	}
	b.serves(host("st", ""), "v2")
}

// TestScenarioRevisionRetention: with --retain-revisions 10, the serving
// revision and the newest 10 before it keep their files; reactivating an
// older one says why it cannot.
func TestScenarioRevisionRetention(t *testing.T) {
	t.Parallel()
	b := startBaton(t, func(c *server.Config) { c.RetainRevisions = 10 })
	ctx := context.Background()
	b.createApp("ret")
	var revs []string
	for i := 1; i <= 13; i++ {
		revs = append(revs, b.mustDeploy("ret", appDir(t, fmt.Sprint("v", i)), api.DeployOptions{}).Revision)
	}
	if _, err := b.c.GC(ctx, false); err != nil { // after the one the last deploy started
		t.Fatal(err)
	}
	for i, rev := range revs {
		_, err := os.Stat(filepath.Join(b.data, "apps", "ret", "revisions", rev))
		if kept := i >= 2; kept != (err == nil) {
			t.Errorf("revision %s: files kept = %v, want %v", rev, err == nil, kept)
		}
	}
	// Activating a second revision needs multiple mode (single mode refuses it).
	if _, err := b.c.SetRevisionMode(ctx, "ret", baton.RevisionsMultiple); err != nil {
		t.Fatal(err)
	}
	_, err := b.c.RevisionOp(ctx, "ret", revs[0], "activate", "", "")
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "files") {
		t.Fatalf("activating a pruned revision: %v", err)
	}
	if _, err := b.c.RevisionOp(ctx, "ret", revs[5], "activate", "", ""); err != nil {
		t.Fatalf("activating a kept revision: %v", err)
	}
	if got := b.routing("ret"); got[revs[5]] != 0 || got[revs[12]] != 100 || len(got) != 2 {
		t.Fatalf("after activating %s: %v, want it at 0 %%", revs[5], got)
	}
	b.serves(host("ret", ""), "v13")
}
