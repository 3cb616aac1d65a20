package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/pgtest"
)

// threeHosts starts three `baton serve` hosts advertising 127.0.0.2,
// 127.0.0.3 and 127.0.0.4 on one throwaway PostgreSQL database.
func threeHosts(t *testing.T, extra ...string) []*batonProc {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	var hs []*batonProc
	for i := 2; i <= 4; i++ {
		args := append([]string{"--store", dsn, "--controller-id", fmt.Sprintf("host-%d", i),
			"--advertise", fmt.Sprintf("127.0.0.%d", i), "--lease-ttl", "2s"}, extra...)
		hs = append(hs, startBaton(t, args...))
	}
	return hs
}

// hostsByID lists the hosts through b's CLI (`baton hosts --json`).
func hostsByID(t *testing.T, b *batonProc) map[string]baton.Host {
	t.Helper()
	out, code := runCLI(t, b, "hosts", "--json")
	if code != 0 {
		t.Fatalf("baton hosts: exit %d\n%s", code, out)
	}
	var hs []baton.Host
	if err := json.Unmarshal([]byte(out), &hs); err != nil {
		t.Fatalf("baton hosts --json: %v\n%s", err, out)
	}
	m := map[string]baton.Host{}
	for _, h := range hs {
		m[h.ID] = h
	}
	return m
}

// TestHostsList: three hosts list each other with their advertised
// address, the apps they own and the instances they run; a host killed
// with SIGKILL reads lost once it missed its heartbeats, and its app moves.
func TestHostsList(t *testing.T) {
	t.Parallel()
	hs := threeHosts(t)
	ctx := context.Background()
	if _, err := hs[0].client().CreateApp(ctx, "listed"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, hs[0].client(), "listed", appDir(t, "v1", withBinary))
	eventually(t, 20*time.Second, "three live hosts, host-2 running listed's 2 instances", func() bool {
		m := hostsByID(t, hs[1])
		if len(m) != 3 {
			return false
		}
		for i := 2; i <= 4; i++ {
			h := m[fmt.Sprintf("host-%d", i)]
			if h.State != baton.HostLive || h.Advertise != fmt.Sprintf("127.0.0.%d", i) {
				return false
			}
		}
		h2 := m["host-2"]
		return h2.Instances == 2 && strings.Join(h2.Apps, ",") == "listed" && len(m["host-3"].Apps) == 0 && m["host-3"].Instances == 0
	})
	out, code := runCLI(t, hs[2], "hosts")
	if code != 0 || !strings.Contains(out, "127.0.0.3") || !strings.Contains(out, "listed") || !strings.Contains(out, "live") {
		t.Fatalf("baton hosts: exit %d\n%s", code, out)
	}
	hs[0].stop(syscall.SIGKILL)
	eventually(t, 30*time.Second, "host-2 lost and listed adopted by another host", func() bool {
		m := hostsByID(t, hs[1])
		if m["host-2"].State != baton.HostLost || len(m["host-2"].Apps) != 0 {
			return false
		}
		return len(m["host-3"].Apps)+len(m["host-4"].Apps) == 1
	})
}
