// Package poll waits in tests for a condition, by polling it with a
// deadline: never a fixed sleep standing in for an event.
package poll

import (
	"testing"
	"time"
)

// Interval is the wait before Until's second check; each wait after that
// doubles, up to MaxInterval. A condition that soon holds is seen soon,
// and one that takes a minute (a hundred deployments) is asked a few
// hundred times, not twelve thousand: most conditions are API requests,
// and answering them kept the servers under test busy.
const (
	Interval    = 5 * time.Millisecond
	MaxInterval = 50 * time.Millisecond
)

// Until checks cond, then again after Interval, doubling the wait up to
// MaxInterval, until it holds, and fails the test naming what it waited
// for if within passes first.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Wait(within, cond) {
		t.Fatalf("timed out after %s waiting for: %s", within, what)
	}
}

// Wait is Until for a caller that reports the failure itself: it
// reports whether cond held before within passed.
func Wait(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	wait := Interval
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait)
		wait = min(2*wait, MaxInterval)
	}
	return true
}
