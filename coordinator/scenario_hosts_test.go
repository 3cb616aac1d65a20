package coordinator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/pgtest"
	"github.com/batonhq/baton/server"
)

// These scenarios run three hosts in this process, sharing one throwaway
// PostgreSQL database (test.sh starts the server): each its own baton on
// its own loopback address (127.0.0.2-4), where its proxy and its peer
// listener are, so the coordinator's placement, routing generations,
// hand-overs and adoption run here and not only from e2e/.

// threeHosts starts host-2, host-3 and host-4 on one new database with
// lease TTL ttl. Leases are renewed every TTL/3 and a host that misses
// its heartbeats for three TTLs is lost, here inside one race-built test
// process shared with the other scenarios: e2e's 2-3 s once let a
// deploy's lease expire under the whole suite's load (failed as
// interrupted), so these use 5 s.
func threeHosts(t *testing.T, ttl time.Duration) []*batonEnv {
	t.Helper()
	dsn := pgtest.NewDatabase(t) // dropped after every host closed
	var hs []*batonEnv
	for i := 2; i <= 4; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		hs = append(hs, startBaton(t, func(c *server.Config) {
			c.Store, c.ControllerID, c.Advertise = dsn, fmt.Sprintf("host-%d", i), ip
			c.ProxyAddr, c.LeaseTTL = ip+":0", ttl
		}))
	}
	// The first host made the admin token in the store; the others'
	// data directories hold tokens the store does not know.
	for _, h := range hs[1:] {
		h.token, h.c.Token = hs[0].token, hs[0].token
	}
	return hs
}

// spreadManifest runs the example app with n instances per revision.
func spreadManifest(n int) func(string) { return spreadWithin(n, "30s") }

// spreadWithin is spreadManifest with a start timeout.
func spreadWithin(n int, startTimeout string) func(string) {
	return withManifest(fmt.Sprintf("[run]\ncommand = %q\ninstances = %d\n[health]\npath = \"/healthz\"\ninterval = \"50ms\"\nstart_timeout = %q\n", helloBin, n, startTimeout))
}

// unhealthyUnder makes the example app fail its health check on the host
// whose data directory is data, and only there.
func unhealthyUnder(data string) func(string) {
	return func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "unhealthy-under"), []byte(data), 0o644); err != nil {
			panic(err)
		}
	}
}

// shares is where the production revision rev ("" any) of app runs
// healthy, by host, as b's status says.
func (b *batonEnv) shares(app, rev string) map[string]int {
	st, err := b.c.Status(context.Background(), app)
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

// hostsByID lists the hosts as b's API reports them.
func (b *batonEnv) hostsByID() map[string]baton.Host {
	b.t.Helper()
	hs, err := b.c.Hosts(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	m := map[string]baton.Host{}
	for _, h := range hs {
		m[h.ID] = h
	}
	return m
}

// owner is the controller that owns app, as b's API says.
func (b *batonEnv) owner(app string) string {
	a, err := b.c.App(context.Background(), app)
	if err != nil {
		return ""
	}
	return a.Controller
}

// version is the version in an answer of the example app, "" for anything
// but a 200.
func (p *proxyClient) version(host string) string {
	status, body, err := p.get(host)
	if err != nil || status != 200 {
		return ""
	}
	var a answer
	_ = json.Unmarshal([]byte(body), &a)
	return a.Version
}

// servedEverywhere reports whether every host's proxy serves name with
// version v.
func servedEverywhere(hs []*batonEnv, name, v string) bool {
	for _, h := range hs {
		if h.p.version(name) != v {
			return false
		}
	}
	return true
}

// idle reports whether app has no operation running or queued, as b says.
func (b *batonEnv) idle(app string) bool {
	st, err := b.c.Status(context.Background(), app)
	return err == nil && st.Running == nil && len(st.Queue) == 0
}

// acked waits until every one of n hosts applied app's routing
// generation, as the app's status and the status of every app say alike.
func (b *batonEnv) acked(app string, n int) baton.AppStatus {
	b.t.Helper()
	var st baton.AppStatus
	allAcked := func(r *baton.RoutingState) bool {
		if r == nil || len(r.Acks) != n {
			return false
		}
		for _, a := range r.Acks {
			if a.Generation != r.Generation {
				return false
			}
		}
		return true
	}
	eventually(b.t, 20*time.Second, "every host applied the routing generation of "+app, func() bool {
		var err error
		if st, err = b.c.Status(context.Background(), app); err != nil || !allAcked(st.Routing) {
			return false
		}
		all, err := b.c.AllStatus(context.Background())
		if err != nil {
			return false
		}
		for _, a := range all {
			if a.App == app {
				return allAcked(a.Routing) && a.Routing.Generation == st.Routing.Generation
			}
		}
		return false
	})
	return st
}

// TestScenarioHostsPlacement: an app with 3 instances runs one on each of
// three hosts; v1 → v2 deployed through a host that does not own it, under
// load through a third, fails no request, and every host applies the
// switch's routing; v3, unhealthy on one host only, switches nowhere; a
// custom domain claimed through one host is served by all and unrouted
// everywhere when removed; draining a host, then the app's owner, moves
// their shares (and the app) with no failed request; a scale to 2 keeps
// two shares.
func TestScenarioHostsPlacement(t *testing.T) {
	t.Parallel()
	hs := threeHosts(t, 5*time.Second)
	ctx := context.Background()
	hs[0].createApp("spread")
	v1 := hs[0].mustDeploy("spread", appDir(t, "v1", spreadManifest(3)), api.DeployOptions{})
	eventually(t, 30*time.Second, "v1 runs one healthy instance on each host", func() bool {
		sh := hs[1].shares("spread", v1.Revision)
		return len(sh) == 3 && sh["host-2"] == 1 && sh["host-3"] == 1 && sh["host-4"] == 1
	})
	if log, _ := hs[0].c.Log(ctx, v1.ID); !strings.Contains(log, "placed 3 instance(s) of "+v1.Revision+": 1 on host-2, 1 on host-3, 1 on host-4") {
		t.Fatalf("v1's log does not say where its instances run:\n%s", log)
	}
	eventually(t, 10*time.Second, "every host live, with 1 instance and its peer listener on its address", func() bool {
		for _, h := range hs[2].hostsByID() {
			if h.State != baton.HostLive || h.Instances != 1 || !strings.HasPrefix(h.Peer, h.Advertise+":") {
				return false
			}
		}
		return true
	})
	if apps := hs[2].hostsByID()["host-2"].Apps; len(apps) != 1 || apps[0] != "spread" {
		t.Fatalf("host-2 owns %v, want [spread]", apps)
	}

	// v1 → v2 through host-3's API under load through host-4's proxy.
	l := hs[2].startLoad(host("spread", ""), 4)
	eventually(t, 10*time.Second, "load reaches v1", func() bool { return l.count("v1") > 50 })
	v2 := hs[1].mustDeploy("spread", appDir(t, "v2", spreadManifest(3)), api.DeployOptions{})
	if !servedEverywhere(hs, host("spread", ""), "v2") {
		t.Fatal("v2 succeeded but not every host's proxy serves it")
	}
	eventually(t, 10*time.Second, "load reaches v2", func() bool { return l.count("v2") > 50 })
	got := l.finishClean(t, "v1 → v2 across hosts")
	t.Logf("v1 → v2 across three hosts: %v, 0 failed", got)
	hs[2].acked("spread", 3)
	if log, _ := hs[0].c.Log(ctx, v2.ID); !strings.Contains(log, "applied by every live host (3)") {
		t.Fatalf("v2's log does not say every host applied its routing:\n%s", log)
	}
	eventually(t, 20*time.Second, "v1's instances stopped on every host", func() bool {
		for _, h := range hs[0].hostsByID() {
			if h.Instances != 1 {
				return false
			}
		}
		return true
	})

	// v3 fails its health check on host-4 only: nothing switches anywhere.
	v3 := hs[0].waitFinal(hs[0].deploy("spread", appDir(t, "v3", spreadWithin(3, "2s"), unhealthyUnder(hs[2].data)), api.DeployOptions{}).ID)
	if v3.State != baton.StateFailed || !strings.Contains(v3.Error, "host-4") {
		t.Fatalf("v3, unhealthy on host-4: %s %q, want failed naming host-4", v3.State, v3.Error)
	}
	if log, _ := hs[0].c.Log(ctx, v3.ID); !strings.Contains(log, "nothing switched on any host") {
		t.Fatalf("v3's log does not say nothing switched:\n%s", log)
	}
	if !servedEverywhere(hs, host("spread", ""), "v2") {
		t.Fatal("after v3 failed, not every host serves v2")
	}
	eventually(t, 20*time.Second, "v3's instances stopped on every host", func() bool {
		for _, h := range hs[0].hostsByID() {
			if h.Instances != 1 {
				return false
			}
		}
		return len(hs[0].processes(v3.Revision))+len(hs[1].processes(v3.Revision))+len(hs[2].processes(v3.Revision)) == 0
	})

	// A custom domain claimed through host-4 reaches every host's proxy;
	// another app cannot take it; removed, no host routes it.
	if _, err := hs[2].c.AddDomain(ctx, "spread", "", "WWW.Spread.Example"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "every host serves www.spread.example", func() bool {
		return servedEverywhere(hs, "www.spread.example", "v2")
	})
	hs[1].createApp("thief")
	if _, err := hs[1].c.AddDomain(ctx, "thief", "", "www.spread.example"); baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "spread") {
		t.Fatalf("a second claim of www.spread.example: %v, want a conflict naming spread", err)
	}
	if _, err := hs[1].c.AddDomain(ctx, "thief", "", "*.spread.example"); baton.ErrorCode(err) != baton.EINVALID {
		t.Fatalf("a wildcard claim: %v, want invalid", err)
	}
	if err := hs[0].c.RemoveDomain(ctx, "spread", "www.spread.example"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "no host routes www.spread.example", func() bool {
		for _, h := range hs {
			if status, body, err := h.p.get("www.spread.example"); err != nil || status != 404 || !strings.Contains(body, "unknown-host") {
				return false
			}
		}
		return true
	})

	// Draining host-3 under load: its share moves to the others.
	l = hs[2].startLoad(host("spread", ""), 4)
	eventually(t, 10*time.Second, "load before the drain", func() bool { return l.count("v2") > 50 })
	if h, err := hs[0].c.DrainHost(ctx, "host-3", true); err != nil || h.State != baton.HostDraining {
		t.Fatalf("drain host-3: %+v %v", h, err)
	}
	if _, err := hs[0].c.DrainHost(ctx, "host-9", true); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("drain of an unknown host: %v, want not found", err)
	}
	eventually(t, 60*time.Second, "host-3's share moved away", func() bool {
		sh := hs[0].shares("spread", v2.Revision)
		return hs[0].idle("spread") && sh["host-3"] == 0 && sh["host-2"]+sh["host-4"] == 3 && hs[0].hostsByID()["host-3"].Instances == 0
	})
	got = l.finishClean(t, "draining host-3")
	t.Logf("drain of host-3 under load: %v, 0 failed; shares %v", got, hs[0].shares("spread", v2.Revision))
	if _, err := hs[0].c.DrainHost(ctx, "host-3", false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "host-3 live again", func() bool { return hs[0].hostsByID()["host-3"].State == baton.HostLive })

	// Draining the owner under load: it hands the app to a live host.
	if o := hs[1].owner("spread"); o != "host-2" {
		t.Fatalf("spread is owned by %q, want host-2, where it was created", o)
	}
	l = hs[1].startLoad(host("spread", ""), 4)
	eventually(t, 10*time.Second, "load before draining the owner", func() bool { return l.count("v2") > 50 })
	if _, err := hs[1].c.DrainHost(ctx, "host-2", true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "host-2 handed spread over and its share moved away", func() bool {
		o := hs[1].owner("spread")
		sh := hs[1].shares("spread", v2.Revision)
		return hs[1].idle("spread") && o != "" && o != "host-2" && sh["host-2"] == 0 && sh["host-3"]+sh["host-4"] == 3 &&
			hs[1].hostsByID()["host-2"].Instances == 0
	})
	got = l.finishClean(t, "draining the owner host-2")
	t.Logf("drain of the owner under load: %v, 0 failed; spread now with %s", got, hs[1].owner("spread"))
	if _, err := hs[1].c.DrainHost(ctx, "host-2", false); err != nil {
		t.Fatal(err)
	}

	// Scaled to 2 through host-2, which no longer owns it: two shares.
	d, err := hs[0].c.Scale(ctx, "spread", api.ScaleOptions{ScaleRequest: api.ScaleRequest{Instances: 2}})
	if err != nil {
		t.Fatal(err)
	}
	hs[0].succeed(d.ID)
	eventually(t, 30*time.Second, "2 instances of v2 across the hosts", func() bool {
		n := 0
		for _, c := range hs[0].shares("spread", v2.Revision) {
			n += c
		}
		total := 0
		for _, h := range hs[0].hostsByID() {
			total += h.Instances
		}
		return n == 2 && total == 2
	})
	if !servedEverywhere(hs, host("spread", ""), "v2") {
		t.Fatal("after the scale, not every host serves v2")
	}
}

// TestScenarioHostsOwnerLeaves: the host that owns an app stops (its
// instances stop with it, and it leaves the store's list of hosts); one of
// the others adopts the app and serves it again from its own instances;
// back, the host routes the app to them, and a deploy through it runs on
// the new owner.
func TestScenarioHostsOwnerLeaves(t *testing.T) {
	t.Parallel()
	hs := threeHosts(t, 5*time.Second)
	hs[0].createApp("orphan")
	hs[0].mustDeploy("orphan", appDir(t, "v1", spreadManifest(2)), api.DeployOptions{})
	eventually(t, 20*time.Second, "every host serves orphan", func() bool { return servedEverywhere(hs, host("orphan", ""), "v1") })

	hs[0].close()
	rest := hs[1:]
	eventually(t, 30*time.Second, "host-2 gone and orphan adopted", func() bool {
		_, listed := hs[1].hostsByID()["host-2"]
		o := hs[1].owner("orphan")
		return !listed && (o == "host-3" || o == "host-4")
	})
	eventually(t, 30*time.Second, "the others serve orphan again", func() bool { return servedEverywhere(rest, host("orphan", ""), "v1") })
	// host-2's share is placed again (by the new owner's restore, or by
	// a rebalance operation if the restore found the other share still
	// running): 2 healthy instances, none on host-2, and every operation
	// in the app's history succeeded.
	eventually(t, 30*time.Second, "orphan runs 2 healthy instances on the others", func() bool {
		sh := hs[1].shares("orphan", "")
		if !hs[1].idle("orphan") || sh["host-2"] != 0 || sh["host-3"]+sh["host-4"] != 2 {
			return false
		}
		for _, d := range hs[1].history("orphan") {
			if d.State != baton.StateSucceeded {
				t.Fatalf("after host-2 left, %s %s of orphan: %s %s", d.Kind, d.ID, d.State, d.Error)
			}
		}
		return true
	})

	hs[0].open()
	hs[0].c.Token = hs[1].token
	eventually(t, 20*time.Second, "host-2 live again and routing orphan", func() bool {
		return hs[1].hostsByID()["host-2"].State == baton.HostLive && servedEverywhere(hs, host("orphan", ""), "v1")
	})
	if o := hs[0].owner("orphan"); o == "host-2" {
		t.Fatalf("orphan went back to host-2, which lost it")
	}
	hs[0].mustDeploy("orphan", appDir(t, "v2", spreadManifest(2)), api.DeployOptions{})
	if !servedEverywhere(hs, host("orphan", ""), "v2") {
		t.Fatal("v2 succeeded but not every host serves it")
	}
}

// TestScenarioHostsImage: an image pulled by the owner runs one container
// on each of three hosts (the others fetch it through the shared store),
// every host serves it, and none leaves a container behind.
func TestScenarioHostsImage(t *testing.T) {
	t.Parallel()
	hs := threeHosts(t, 5*time.Second)
	for _, h := range hs {
		t.Cleanup(func() {
			h.close()
			if left := h.runcContainers(); len(left) > 0 {
				t.Errorf("containers left on %s after it closed: %v", h.data, left)
			}
		})
	}
	reg := imageRegistry(t)
	img := exampleImage(t, "v1", nil)
	mustPushImage(t, reg+"/spread:v1", img)
	hs[0].createApp("spread")
	mf := "[run]\ninstances = 3\n[health]\npath = \"/healthz\"\ninterval = \"50ms\"\nstart_timeout = \"30s\"\n"
	d := hs[1].deployImage("spread", reg+"/spread:v1", api.DeployOptions{Manifest: mf})
	eventually(t, 30*time.Second, "one healthy container on each host", func() bool {
		sh := hs[2].shares("spread", d.Revision)
		return len(sh) == 3 && sh["host-2"] == 1 && sh["host-3"] == 1 && sh["host-4"] == 1
	})
	for _, h := range hs {
		if n := len(h.runcContainers()); n != 1 {
			t.Fatalf("%s runs %d containers, want 1", h.data, n)
		}
	}
	if !servedEverywhere(hs, host("spread", ""), "v1") {
		t.Fatal("not every host serves the image")
	}
	// Status lists the instances of the host asked (one), and the
	// revision's shares by host (above).
	hs[0].checkImage("spread", baton.ProductionSlot, d.Revision, imageDigest(t, img), reg+"/spread:v1", 1)
}
