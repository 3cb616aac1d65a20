package loadtest

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoadCountsAnswersAndFailures: 200s count by version, anything else
// is a failure with its cause, and Finish stops every worker (a second
// Finish returns the same).
func TestLoadCountsAnswersAndFailures(t *testing.T) {
	var n atomic.Int64
	l := Start(3, 0, func() (int, string, string, error) {
		switch n.Add(1) % 3 {
		case 0:
			return 503, "", "no live revision", nil
		case 1:
			return 0, "", "", errors.New("connection refused")
		}
		return 200, "v1", "", nil
	})
	for deadline := time.Now().Add(10 * time.Second); l.Count("v1") < 30; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d answers after 10 s", l.Count("v1"))
		}
		time.Sleep(time.Millisecond)
	}
	versions, failures := l.Finish()
	sent := n.Load()
	if got := int64(versions["v1"] + len(failures)); got != sent {
		t.Fatalf("counted %d of %d requests", got, sent)
	}
	var refused, unavailable int
	for _, f := range failures {
		switch f {
		case "connection refused":
			refused++
		case "status 503: no live revision":
			unavailable++
		default:
			t.Fatalf("failure %q", f)
		}
	}
	if refused == 0 || unavailable == 0 {
		t.Fatalf("failures %v, want both kinds", failures)
	}
	if v2, f2 := l.Finish(); v2["v1"] != versions["v1"] || len(f2) != len(failures) || n.Load() != sent {
		t.Fatal("requests went on after Finish")
	}
}
