package e2e

import (
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

var (
	relLongFlag = flag.Bool("reliability.long", false, "run the long form of the reliability suite (also: BATON_RELIABILITY=long)")
	relSeedFlag = flag.Int64("reliability.seed", 0, "seed of the reliability suite's random choices (0: from the clock; printed)")
)

// relConfig sizes the reliability scenarios: a short form that runs with
// every `go test`, a long form for `make reliability`.
type relConfig struct {
	long bool
	// killDeployments is how many deployments the kill -9 scenario makes;
	// killRate the share of them during which baton is killed.
	killDeployments int
	killRate        float64
	// crashRounds is how many times the instance-crash scenario goes
	// through every phase.
	crashRounds int
	// stormRequests deploy requests from stormClients clients to stormApps apps.
	stormRequests, stormClients, stormApps int
	// diskFullRounds is how many over-full artifacts the disk-full scenario sends.
	diskFullRounds int
}

// reliabilityConfig returns the long form with -reliability.long or
// BATON_RELIABILITY=long, the short form otherwise.
func reliabilityConfig() relConfig {
	if *relLongFlag || os.Getenv("BATON_RELIABILITY") == "long" {
		return relConfig{long: true, killDeployments: 200, killRate: 0.3, crashRounds: 4,
			stormRequests: 200, stormClients: 20, stormApps: 4, diskFullRounds: 3}
	}
	return relConfig{killDeployments: 20, killRate: 0.4, crashRounds: 1,
		stormRequests: 60, stormClients: 20, stormApps: 3, diskFullRounds: 1}
}

func (c relConfig) String() string {
	if c.long {
		return "long"
	}
	return "short"
}

var (
	relSeedOnce sync.Once
	relSeed     int64
)

// reliabilitySeed is the suite's seed: -reliability.seed, BATON_RELIABILITY_SEED, or the clock.
func reliabilitySeed() int64 {
	relSeedOnce.Do(func() {
		relSeed = *relSeedFlag
		if s := os.Getenv("BATON_RELIABILITY_SEED"); relSeed == 0 && s != "" {
			fmt.Sscan(s, &relSeed)
		}
		if relSeed == 0 {
			relSeed = time.Now().UnixNano()
		}
	})
	return relSeed
}

// relRand returns the random source of one test: the suite's seed mixed
// with the test's name, so a seed reproduces each scenario on its own. It
// logs how to reproduce the run.
func relRand(t testing.TB) *rand.Rand {
	t.Helper()
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	seed := reliabilitySeed()
	t.Logf("reliability seed %d (%s form); reproduce with: go test ./e2e/ -run '^%s$' -reliability.seed %d", seed, reliabilityConfig(), t.Name(), seed)
	return rand.New(rand.NewSource(seed ^ int64(h.Sum64())))
}

// relCounts are the counts one scenario reports.
type relCounts struct {
	mu sync.Mutex
	// Runs counts iterations of the scenario (a kill and its restart, a
	// phase of the crash matrix, a storm, …).
	Runs          int
	BatonKills    int
	InstanceKills int
	// Deployments counts deployments recorded, by final state.
	Deployments int
	States      map[baton.State]int
	// Requests and FailedRequests are what the scenario's load loop saw.
	Requests, FailedRequests int64
	InvariantChecks          int
	// Notes are scenario-specific counts ("kills in phase building": 3).
	Notes map[string]int
}

// note adds n to a named count.
func (c *relCounts) note(name string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Notes == nil {
		c.Notes = map[string]int{}
	}
	c.Notes[name] += n
}

// add changes the counts under the lock.
func (c *relCounts) add(f func(c *relCounts)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

// check counts one invariant check.
func (c *relCounts) check() { c.add(func(c *relCounts) { c.InvariantChecks++ }) }

// deployments records the final states of ds.
func (c *relCounts) deployments(ds []baton.Deployment) {
	c.add(func(c *relCounts) {
		if c.States == nil {
			c.States = map[baton.State]int{}
		}
		for _, d := range ds {
			c.Deployments++
			c.States[d.State]++
		}
	})
}

func (c *relCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var states []string
	for _, s := range []baton.State{baton.StateSucceeded, baton.StateFailed, baton.StateCancelled, baton.StateSuperseded, baton.StateQueued, baton.StateRunning} {
		if n := c.States[s]; n > 0 {
			states = append(states, fmt.Sprintf("%s %d", s, n))
		}
	}
	s := fmt.Sprintf("runs %d, baton kills %d, instance kills %d, deployments %d (%s), requests %d, failed requests %d, invariant checks %d",
		c.Runs, c.BatonKills, c.InstanceKills, c.Deployments, strings.Join(states, ", "), c.Requests, c.FailedRequests, c.InvariantChecks)
	var notes []string
	for k, v := range c.Notes {
		notes = append(notes, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(notes)
	for _, n := range notes {
		s += "\n    " + n
	}
	return s
}

// relSummary collects every scenario's counts for the summary file.
var relSummary = struct {
	mu        sync.Mutex
	scenarios map[string]*relCounts
	order     []string
	elapsed   map[string]time.Duration
}{scenarios: map[string]*relCounts{}, elapsed: map[string]time.Duration{}}

// reliabilitySummaryFile is written (next to the tests) after each scenario.
const reliabilitySummaryFile = "reliability-summary.txt"

// scenarioCounts registers t's counts; at t's end it logs them and rewrites
// the summary file with every scenario so far.
func scenarioCounts(t testing.TB) *relCounts {
	t.Helper()
	c := &relCounts{}
	start := time.Now()
	relSummary.mu.Lock()
	relSummary.scenarios[t.Name()] = c
	relSummary.order = append(relSummary.order, t.Name())
	relSummary.mu.Unlock()
	t.Cleanup(func() {
		relSummary.mu.Lock()
		relSummary.elapsed[t.Name()] = time.Since(start)
		relSummary.mu.Unlock()
		result := "ok"
		if t.Failed() {
			result = "FAILED"
		}
		t.Logf("reliability summary (%s, %s): %s", result, time.Since(start).Round(time.Millisecond), c)
		if err := writeReliabilitySummary(); err != nil {
			t.Errorf("write %s: %v", reliabilitySummaryFile, err)
		}
	})
	return c
}

// writeReliabilitySummary writes the counts of every scenario run so far
// and their totals.
func writeReliabilitySummary() error {
	relSummary.mu.Lock()
	defer relSummary.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "baton reliability suite, %s form, seed %d, %s\n\n", reliabilityConfig(), reliabilitySeed(), time.Now().UTC().Format(time.RFC3339))
	total := &relCounts{States: map[baton.State]int{}}
	for _, name := range relSummary.order {
		c := relSummary.scenarios[name]
		fmt.Fprintf(&b, "%s (%s)\n    %s\n", name, relSummary.elapsed[name].Round(time.Millisecond), c)
		c.mu.Lock()
		total.Runs += c.Runs
		total.BatonKills += c.BatonKills
		total.InstanceKills += c.InstanceKills
		total.Deployments += c.Deployments
		for s, n := range c.States {
			total.States[s] += n
		}
		total.Requests += c.Requests
		total.FailedRequests += c.FailedRequests
		total.InvariantChecks += c.InvariantChecks
		c.mu.Unlock()
	}
	fmt.Fprintf(&b, "\ntotal\n    %s\n", total)
	return os.WriteFile(reliabilitySummaryFile, []byte(b.String()), 0o644)
}
