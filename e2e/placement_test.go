package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// spread3 runs the example app with 3 instances (one per host of three).
var spread3 = withManifest(`[run]
command = "./hello"
instances = 3
[health]
path = "/healthz"
interval = "100ms"
start_timeout = "40s"
`)

// unhealthyUnder makes the example app fail its health check on the host
// whose data folder is dir (and only there).
func unhealthyUnder(dir string) func(string) {
	return func(app string) {
		if err := os.WriteFile(filepath.Join(app, "unhealthy-under"), []byte(dir), 0o644); err != nil {
			panic(err)
		}
	}
}

// sharesOf returns where the production slot's revision rev runs, by host,
// counting only healthy shares, as host b's status says.
func sharesOf(t testing.TB, b *batonProc, app, rev string) map[string]int {
	t.Helper()
	st, err := b.client().Status(context.Background(), app)
	if err != nil {
		return nil
	}
	out := map[string]int{}
	for _, s := range st.Slots {
		for _, r := range s.Revisions {
			if s.Name != baton.ProductionSlot || (rev != "" && r.Name != rev) {
				continue
			}
			for _, p := range r.Hosts {
				if p.State == baton.PlacementHealthy {
					out[p.Host] += p.Instances
				}
			}
		}
	}
	return out
}

// TestPlacementBehindHAProxy is the multi-host guarantee, through HAProxy
// in front of three hosts: an app with 3 instances runs one on each host;
// v1 → v2 under load fails no request and every host serves v2, the
// switch's routing generation applied everywhere; v3, whose instance on
// one host fails its health check, switches nowhere and leaves nothing
// running; draining a host, then the app's owner, moves their shares (and
// the app) with no request failed; kill -9 of a host that runs a share
// fails requests only until HAProxy marks it down, and its instance is
// replaced on the others.
func TestPlacementBehindHAProxy(t *testing.T) {
	t.Parallel()
	hs := threeHosts(t, "--lease-ttl", "3s")
	ctx := context.Background()
	c := hs[0].client()
	if _, err := c.CreateApp(ctx, "spread"); err != nil {
		t.Fatal(err)
	}
	d := mustSucceed(t, c, "spread", appDir(t, "v1", withBinary, spread3))
	v1 := d.Revision
	eventually(t, 20*time.Second, "v1 runs one healthy instance on each host", func() bool {
		sh := sharesOf(t, hs[1], "spread", v1)
		return len(sh) == 3 && sh["host-2"] == 1 && sh["host-3"] == 1 && sh["host-4"] == 1
	})
	if log, _ := c.Log(ctx, d.ID); !strings.Contains(log, "placed 3 instance(s) of "+v1+": 1 on host-2, 1 on host-3, 1 on host-4") {
		t.Fatalf("v1's log does not say where its instances run:\n%s", log)
	}
	// Each host's peer listener serves the app from its own instance.
	for _, h := range hostsByID(t, hs[1]) {
		if v := version(must200(peerClient(t, hs[1], h.Peer).get("spread.localhost", "/"))); v != "v1" {
			t.Fatalf("peer listener of %s serves %q, want v1 from its own instance", h.ID, v)
		}
	}

	lb := startHAProxy(t, "spread.localhost", map[string]string{
		"host-2": hs[0].proxyAddr, "host-3": hs[1].proxyAddr, "host-4": hs[2].proxyAddr})
	front := newProxyClient(lb.addr)

	// v1 → v2 under load, through a host that does not own the app.
	l := startLoad(t, front, "spread.localhost", 8)
	eventually(t, 10*time.Second, "load through haproxy reaches v1", func() bool { return l.count("v1") > 200 })
	d = mustSucceed(t, hs[1].client(), "spread", appDir(t, "v2", withBinary, spread3))
	v2 := d.Revision
	for _, h := range hs {
		if v := version(must200(newProxyClient(h.proxyAddr).get("spread.localhost", "/"))); v != "v2" {
			t.Fatalf("after v2 succeeded, %s's proxy serves %q", h.apiAddr, v)
		}
	}
	eventually(t, 10*time.Second, "load through haproxy reaches v2", func() bool { return l.count("v2") > 200 })
	got, failures := l.finish()
	if len(failures) > 0 {
		t.Fatalf("v1 → v2 through haproxy: %d failed requests: %v", len(failures), failures[:min(5, len(failures))])
	}
	allAcked(t, hs[2], "spread", 3)
	if sh := sharesOf(t, hs[0], "spread", v2); len(sh) != 3 {
		t.Fatalf("v2's shares: %v, want one on each host", sh)
	}
	eventually(t, 20*time.Second, "v1's instances stopped on every host", func() bool {
		for _, h := range hostsByID(t, hs[0]) {
			if h.Instances != 1 {
				return false
			}
		}
		return true
	})
	t.Logf("v1 → v2 (%s) under load through haproxy: %v, 0 failed", d.ID, got)

	// v3 fails its health check on host-4 only: nothing switches anywhere,
	// and its instances are stopped on every host.
	l = startLoad(t, front, "spread.localhost", 8)
	eventually(t, 10*time.Second, "load reaches v2", func() bool { return l.count("v2") > 100 })
	d = deploy(t, c, "spread", appDir(t, "v3", withBinary, spread3, unhealthyUnder(hs[2].data), withManifest(`[run]
command = "./hello"
instances = 3
[health]
path = "/healthz"
interval = "100ms"
start_timeout = "15s"
`)), api.DeployOptions{})
	d = waitFinal(t, c, d.ID)
	if d.State != baton.StateFailed || !strings.Contains(d.Error, "host-4") {
		t.Fatalf("v3 failing on host-4: %s %q, want failed naming host-4", d.State, d.Error)
	}
	got, failures = l.finish()
	if len(failures) > 0 || got["v3"] > 0 {
		t.Fatalf("while v3 failed: %v answered, %d failed: %v", got, len(failures), failures[:min(5, len(failures))])
	}
	for _, h := range hs {
		if v := version(must200(newProxyClient(h.proxyAddr).get("spread.localhost", "/"))); v != "v2" {
			t.Fatalf("after v3 failed, %s's proxy serves %q", h.apiAddr, v)
		}
	}
	eventually(t, 20*time.Second, "v3's instances stopped on every host", func() bool {
		for _, h := range hostsByID(t, hs[0]) {
			if h.Instances != 1 {
				return false
			}
		}
		return true
	})
	log, _ := c.Log(ctx, d.ID)
	t.Logf("v3 failed on host-4: %s", d.Error)
	if !strings.Contains(log, "nothing switched on any host") {
		t.Fatalf("v3's log does not say nothing switched:\n%s", log)
	}

	// `baton hosts drain host-3` under load: its share moves to the others
	// (each serving until its replacement does), no request fails; once
	// undrained it takes instances again.
	l = startLoad(t, front, "spread.localhost", 8)
	eventually(t, 10*time.Second, "load before the drain", func() bool { return l.count("v2") > 200 })
	if out, code := runCLI(t, hs[1], "hosts", "drain", "host-3"); code != 0 {
		t.Fatalf("baton hosts drain host-3: exit %d\n%s", code, out)
	}
	drained := time.Now()
	eventually(t, 60*time.Second, "host-3's share moved away, nothing left running there", func() bool {
		sh := sharesOf(t, hs[0], "spread", v2)
		st, err := c.Status(ctx, "spread")
		return err == nil && st.Running == nil && len(st.Queue) == 0 && sh["host-3"] == 0 && sh["host-2"]+sh["host-4"] == 3 &&
			hostsByID(t, hs[0])["host-3"].Instances == 0
	})
	moved := time.Since(drained)
	got, failures = l.finish()
	if len(failures) > 0 {
		t.Fatalf("drain of host-3 under load: %d failed requests: %v", len(failures), failures[:min(5, len(failures))])
	}
	if h := hostsByID(t, hs[0])["host-3"]; h.State != baton.HostDraining {
		t.Fatalf("host-3 after a drain: %s, want draining", h.State)
	}
	t.Logf("drain of host-3 under load: %v answered, 0 failed; its share moved in %s: %v", got, moved.Round(100*time.Millisecond), sharesOf(t, hs[0], "spread", v2))
	if out, code := runCLI(t, hs[1], "hosts", "undrain", "host-3"); code != 0 {
		t.Fatalf("baton hosts undrain host-3: exit %d\n%s", code, out)
	}
	eventually(t, 10*time.Second, "host-3 live again", func() bool { return hostsByID(t, hs[0])["host-3"].State == baton.HostLive })

	// `baton hosts drain host-2`, the app's owner, under load: it hands the
	// app to another live host, which runs its operations from then on,
	// and its share moves; no request fails.
	owner := func() string {
		a, err := hs[1].client().App(ctx, "spread")
		if err != nil {
			return ""
		}
		return a.Controller
	}
	if o := owner(); o != "host-2" {
		t.Fatalf("spread is owned by %q, want host-2, where it was created", o)
	}
	l = startLoad(t, front, "spread.localhost", 8)
	eventually(t, 10*time.Second, "load before draining the owner", func() bool { return l.count("v2") > 200 })
	if out, code := runCLI(t, hs[1], "hosts", "drain", "host-2"); code != 0 {
		t.Fatalf("baton hosts drain host-2: exit %d\n%s", code, out)
	}
	drained = time.Now()
	eventually(t, 60*time.Second, "host-2 handed spread over and its share moved away", func() bool {
		sh := sharesOf(t, hs[1], "spread", v2)
		st, err := hs[1].client().Status(ctx, "spread")
		o := owner()
		return err == nil && st.Running == nil && len(st.Queue) == 0 && o != "" && o != "host-2" &&
			sh["host-2"] == 0 && sh["host-3"]+sh["host-4"] == 3 && hostsByID(t, hs[1])["host-2"].Instances == 0
	})
	moved = time.Since(drained)
	got, failures = l.finish()
	if len(failures) > 0 {
		t.Fatalf("drain of the owner host-2 under load: %d failed requests: %v", len(failures), failures[:min(5, len(failures))])
	}
	newOwner := owner()
	t.Logf("drain of the owner host-2 under load: %v answered, 0 failed; spread handed to %s, its share moved in %s: %v",
		got, newOwner, moved.Round(100*time.Millisecond), sharesOf(t, hs[1], "spread", v2))
	if out, code := runCLI(t, hs[1], "hosts", "undrain", "host-2"); code != 0 {
		t.Fatalf("baton hosts undrain host-2: exit %d\n%s", code, out)
	}
	eventually(t, 10*time.Second, "host-2 live again", func() bool { return hostsByID(t, hs[1])["host-2"].State == baton.HostLive })

	// kill -9 under load of a host that runs a share but does not own the
	// app (host-4, or host-3 if the drain handed the app to host-4):
	// requests fail only until HAProxy marks it down; its share of v2 is
	// placed on the others.
	victim, victimID, others := hs[2], "host-4", []string{"host-2", "host-3"}
	if newOwner == "host-4" {
		victim, victimID, others = hs[1], "host-3", []string{"host-2", "host-4"}
	}
	l = startLoad(t, front, "spread.localhost", 8)
	eventually(t, 10*time.Second, "load before the kill", func() bool { return l.count("v2") > 200 })
	killed := time.Now()
	down, beforeDown, failedBeforeDown := lb.killBehind(t, victim, victimID, l)
	watcher := hs[0] // host-2 survives either way
	l = startLoad(t, front, "spread.localhost", 8)
	eventually(t, 60*time.Second, victimID+"'s instance replaced on the others, no operation left running", func() bool {
		sh := sharesOf(t, watcher, "spread", v2)
		st, err := watcher.client().Status(ctx, "spread")
		return err == nil && st.Running == nil && len(st.Queue) == 0 && sh[victimID] == 0 && sh[others[0]]+sh[others[1]] == 3
	})
	restored := time.Since(killed)
	after, failedAfter := l.finish()
	if len(failedAfter) > 0 {
		t.Fatalf("after haproxy marked %s down: %d failed requests: %v", victimID, len(failedAfter), failedAfter[:min(5, len(failedAfter))])
	}
	t.Logf("kill -9 %s: haproxy marked it down after %s; %d failed requests until then (%v answered), 0 after (%v answered); 3 instances again after %s: %v",
		victimID, down.Round(time.Millisecond), len(failedBeforeDown), beforeDown, after, restored.Round(100*time.Millisecond), sharesOf(t, watcher, "spread", v2))
	for _, f := range failedBeforeDown[:min(5, len(failedBeforeDown))] {
		t.Logf("  failed: %s", f)
	}
}

// TestScaleUnderLoad: `baton scale` on one host, up and down, under load:
// the added instances pass their health check before they get traffic,
// the removed ones drain, and no request fails.
func TestScaleUnderLoad(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	c := b.client()
	if _, err := c.CreateApp(ctx, "scaled"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "scaled", appDir(t, "v1", withBinary))
	healthy := func(n int) func() bool {
		return func() bool {
			st, err := c.Status(ctx, "scaled")
			return err == nil && len(st.Slots) > 0 && len(st.Slots[0].Revisions) == 1 &&
				st.Slots[0].Revisions[0].Healthy == n && len(st.Slots[0].Revisions[0].Instances) == n
		}
	}
	eventually(t, 10*time.Second, "2 healthy instances", healthy(2))
	l := startLoad(t, newProxyClient(b.proxyAddr), "scaled.localhost", 8)
	eventually(t, 10*time.Second, "load reaches v1", func() bool { return l.count("v1") > 200 })
	for _, n := range []int{4, 1} {
		before := l.count("v1")
		out, code := runCLI(t, b, "scale", "scaled", "--instances", fmt.Sprint(n), "--wait")
		if code != 0 {
			t.Fatalf("baton scale --instances %d: exit %d\n%s", n, code, out)
		}
		eventually(t, 10*time.Second, fmt.Sprintf("%d healthy instances", n), healthy(n))
		eventually(t, 10*time.Second, "load goes on", func() bool { return l.count("v1") > before+200 })
		st, err := c.Status(ctx, "scaled")
		if err != nil || st.Slots[0].Scale == nil || st.Slots[0].Scale.Instances != n {
			t.Fatalf("status after scale %d: %+v %v", n, st.Slots[0].Scale, err)
		}
	}
	got, failures := l.finish()
	if len(failures) > 0 {
		t.Fatalf("scale 2 → 4 → 1 under load: %d failed requests: %v", len(failures), failures[:min(5, len(failures))])
	}
	t.Logf("scale 2 → 4 → 1 under load: %v answered, 0 failed", got)

	// A scale that leaves this host's share its size (here: a cap per
	// host) restarts nothing: the same instance serves on, warm.
	instances := func() []baton.InstanceStatus {
		st, err := c.Status(ctx, "scaled")
		if err != nil || len(st.Slots) == 0 || len(st.Slots[0].Revisions) != 1 {
			t.Fatalf("status: %+v %v", st, err)
		}
		return st.Slots[0].Revisions[0].Instances
	}
	before := instances()
	out, code := runCLI(t, b, "scale", "scaled", "--instances", "1", "--max-per-host", "1", "--wait")
	if code != 0 {
		t.Fatalf("baton scale --instances 1 --max-per-host 1: exit %d\n%s", code, out)
	}
	if after := instances(); len(after) != 1 || after[0].Addr != before[0].Addr || after[0].PID != before[0].PID {
		t.Fatalf("a scale that keeps the share's size restarted it: %+v before, %+v after", before, after)
	}
}
