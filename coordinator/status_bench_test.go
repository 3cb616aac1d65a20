package coordinator_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// statusApps is how many apps (each with production and two more slots)
// the status benchmarks register: the scale of bench/results-scale.md.
const statusApps = 1000

// startScaled runs a baton with n apps × 3 slots registered through the
// API, 8 calls at a time.
func startScaled(b *testing.B, n int) *batonEnv {
	b.Helper()
	env := startBaton(b)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- register(env, fmt.Sprintf("app%04d", i))
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	return env
}

// register creates app with production, staging and canary slots.
func register(env *batonEnv, app string) error {
	if _, err := env.c.CreateApp(context.Background(), app); err != nil {
		return err
	}
	for _, s := range []string{"staging", "canary"} {
		if _, err := env.c.CreateSlot(context.Background(), app, s); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkStatusAll is GET /api/v1/status with 1,000 apps × 3 slots,
// in one call without limit (the answer read and decoded).
func BenchmarkStatusAll(b *testing.B) {
	env := startScaled(b, statusApps)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var st []baton.AppStatus
		env.getJSON(b, "/api/v1/status", &st)
		if len(st) != statusApps {
			b.Fatalf("%d apps in the status, want %d", len(st), statusApps)
		}
	}
}

// BenchmarkAppsList is GET /api/v1/apps with 1,000 apps × 3 slots,
// in one call without limit.
func BenchmarkAppsList(b *testing.B) {
	env := startScaled(b, statusApps)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var apps []baton.App
		env.getJSON(b, "/api/v1/apps", &apps)
		if len(apps) != statusApps {
			b.Fatalf("%d apps listed, want %d", len(apps), statusApps)
		}
	}
}

// BenchmarkCollect is a collection (POST /api/v1/gc) that finds nothing
// to remove, with 1,000 apps × 3 slots registered and one app deployed 30
// times: the work every operation's end starts in the background.
func BenchmarkCollect(b *testing.B) {
	env := startScaled(b, statusApps)
	for i := range 30 {
		if d := env.waitFinal(env.deploy("app0000", appDir(b, fmt.Sprint("v", i)), api.DeployOptions{}).ID); d.State != baton.StateSucceeded {
			b.Fatalf("deployment %s: %s", d.ID, d.State)
		}
	}
	if _, err := env.c.GC(context.Background(), false); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rep, err := env.c.GC(context.Background(), false)
		if err != nil || rep.Reclaimed != 0 {
			b.Fatal(rep.Reclaimed, err)
		}
	}
}
