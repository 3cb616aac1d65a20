package coordinator

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPublisherNeverReturnsEarly: many callers, each after a change of its
// own, return only once a table that includes their change is installed;
// builds never overlap.
func TestPublisherNeverReturnsEarly(t *testing.T) {
	var p publisher
	var changes, installed, builds, inflight atomic.Int64
	build := func() {
		if inflight.Add(1) != 1 {
			t.Error("two builds at once")
		}
		snapshot := changes.Load() // the table reflects every change made so far
		builds.Add(1)
		installed.Store(snapshot)
		inflight.Add(-1)
	}
	const callers, calls = 50, 40
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < calls; j++ {
				mine := changes.Add(1)
				p.publish(build)
				if got := installed.Load(); got < mine {
					t.Errorf("publish returned with table %d installed, before change %d", got, mine)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d publish calls, %d builds", callers*calls, builds.Load())
}

// TestPublisherCoalescesCallsDuringABuild: callers that arrive while a
// build runs share one build after it, instead of one each (which made a
// restart with 1,000 apps rebuild the table 1,000 times).
func TestPublisherCoalescesCallsDuringABuild(t *testing.T) {
	var p publisher
	var builds atomic.Int64
	inBuild, release := make(chan struct{}), make(chan struct{})
	first := true // builds never overlap, so only one goroutine at a time touches it
	build := func() {
		builds.Add(1)
		if first {
			first = false
			close(inBuild)
			<-release
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.publish(build) })
	<-inBuild
	const waiting = 20
	for range waiting {
		wg.Go(func() { p.publish(build) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// TryLock: a publisher that held its lock while building would
		// make this wait forever instead of failing.
		if p.mu.TryLock() {
			arrived := p.requested == 1+waiting
			p.mu.Unlock()
			if arrived {
				break
			}
		}
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("the waiting callers never reached publish")
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if n := builds.Load(); n != 2 {
		t.Errorf("%d builds for 1 call during a build and %d arriving while it ran; want 2", n, waiting)
	}
}
