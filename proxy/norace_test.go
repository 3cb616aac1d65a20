//go:build !race

package proxy

// raceEnabled tells tests that count allocations to stand aside under the
// race detector, which allocates for its own bookkeeping.
const raceEnabled = false
