package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// BenchmarkLeases measures one lease cycle — acquire, renew, release, what
// a deployment costs the store in locking — on stores made by open:
//
//   - Serial: one caller, one key (latency of the store's round trips);
//   - Parallel: 4×GOMAXPROCS callers, each on its own key (throughput when
//     many apps deploy at once).
//
// Besides ns/op it reports cycles/s.
func BenchmarkLeases(b *testing.B, open Opener) {
	s := open(b)
	b.Run("Serial", func(b *testing.B) {
		for b.Loop() {
			if err := leaseCycle(s, "app:bench-serial"); err != nil {
				b.Fatal(err)
			}
		}
		reportCycles(b)
	})
	var next atomic.Int64
	b.Run("Parallel", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			key := fmt.Sprintf("app:bench-parallel-%d", next.Add(1))
			for pb.Next() {
				if err := leaseCycle(s, key); err != nil {
					b.Error(err) // not Fatal: this is not the benchmark's goroutine
					return
				}
			}
		})
		reportCycles(b)
	})
}

// leaseCycle takes key, renews it and lets it go.
func leaseCycle(s baton.Store, key string) error {
	ctx := context.Background()
	l, err := s.AcquireLease(ctx, key, "bench", time.Minute)
	if err != nil {
		return err
	}
	f := baton.Fence{Key: l.Key, Token: l.Token}
	if _, err := s.RenewLease(ctx, f, time.Minute); err != nil {
		return err
	}
	return s.ReleaseLease(ctx, f)
}

func reportCycles(b *testing.B) {
	if sec := b.Elapsed().Seconds(); sec > 0 {
		b.ReportMetric(float64(b.N)/sec, "cycles/s")
	}
}
