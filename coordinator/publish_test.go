package coordinator

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestPublisherCoalescesAndNeverReturnsEarly: many callers, each after a
// change of its own, return only once a table that includes their change
// is installed; builds never overlap, and concurrent callers share builds.
func TestPublisherCoalescesAndNeverReturnsEarly(t *testing.T) {
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
	if n := builds.Load(); n > callers*calls {
		t.Fatalf("%d builds for %d calls", n, callers*calls)
	}
	t.Logf("%d publish calls, %d builds", callers*calls, builds.Load())
}
