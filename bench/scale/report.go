package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bench/internal/harness"
)

// report is everything the run measured.
type report struct {
	o             options
	registerTotal time.Duration
	calls         []callRow
	mem           []memRow
	restarts      []restartRow
	storm         *stormReport
}

type callRow struct {
	name string
	ds   []time.Duration
}

type memRow struct {
	when string
	m    harness.Memory
}

func (r *report) add(name string, ds []time.Duration) { r.calls = append(r.calls, callRow{name, ds}) }

// problems lists what the run found wrong: these make it exit 1.
func (r *report) problems() []string {
	var out []string
	st := r.storm
	if st == nil {
		return out
	}
	for _, e := range st.noAnswer {
		out = append(out, "a storm request got no answer: "+e)
	}
	for p, n := range st.problems {
		if strings.HasPrefix(p, "5") {
			out = append(out, fmt.Sprintf("%d storm requests answered %s", n, p))
		}
	}
	for _, e := range st.notFinal {
		out = append(out, "accepted deployment not final: "+e)
	}
	out = append(out, st.overlaps...)
	if st.last.ID != "" && st.last.State != baton.StateSucceeded {
		out = append(out, fmt.Sprintf("the newest accepted deployment %s ended %s: %s", st.last.ID, st.last.State, st.last.Error))
	}
	if st.last.ID != "" && !st.lastServes {
		out = append(out, "the newest accepted deployment's version does not serve: "+st.lastServesErr)
	}
	return out
}

func (r *report) markdown() string {
	var w strings.Builder
	o := r.o
	load := harness.LoadAvg()
	fmt.Fprintf(&w, "# scale: %d apps × %d slots\n\n", o.apps, o.slots)
	fmt.Fprintf(&w, "`scale -apps %d -slots %d -workers %d -deployed %d -restarts %d -storm %d -storm-policy %s` (`make bench-scale`) on %s: %d CPUs, %s, %s store, load average %s at the end (other work shares the machine).\n\n",
		o.apps, o.slots, o.workers, o.deployed, o.restarts, o.storm, o.policy, time.Now().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), o.storeName(), load)

	fmt.Fprintf(&w, "## API calls with %d apps\n\n", o.apps)
	fmt.Fprintf(&w, "Registering took %s for %d calls (%d at a time, %.0f calls/s). Reads are timed one at a time until the body is read.\n\n",
		r.registerTotal.Round(time.Millisecond), o.apps*o.slots, o.workers, float64(o.apps*o.slots)/r.registerTotal.Seconds())
	fmt.Fprintf(&w, "| call | n | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n")
	for _, c := range r.calls {
		s := harness.Sorted(c.ds)
		fmt.Fprintf(&w, "| %s | %d | %s | %s | %s |\n", c.name, len(s),
			harness.Ms(harness.Percentile(s, 0.5)), harness.Ms(harness.Percentile(s, 0.99)), harness.Ms(harness.Percentile(s, 1)))
	}

	if len(r.restarts) > 0 {
		fmt.Fprintf(&w, "\n## Restart: routing table rebuilt from the store\n\n")
		fmt.Fprintf(&w, "SIGTERM, wait for exit, start again on the same data and ports; times from the new process's fork. "+
			"%d of the %d apps have a live revision (one instance each), which baton starts again. "+
			"\"Routes\" is when the proxy answers for %s, never deployed, with its 503 (the table holds every app); "+
			"\"apps\" when every deployed app answers 200 through the proxy. baton stops the instances it runs when it stops, "+
			"so the deployed apps are unavailable from SIGTERM until then (last column).\n\n",
			o.deployed, o.apps, appName(o.apps-1))
		fmt.Fprintf(&w, "| restart | SIGTERM → exited ms | fork → /readyz 200 ms | fork → routes ms | fork → all %d apps 200 ms | apps unavailable ms |\n|---|---|---|---|---|---|\n", o.deployed)
		var stop, ready, routes, apps, down []time.Duration
		for i, x := range r.restarts {
			fmt.Fprintf(&w, "| %d | %s | %s | %s | %s | %s |\n", i+1, harness.Ms(x.stop), harness.Ms(x.ready), harness.Ms(x.routes), harness.Ms(x.apps), harness.Ms(x.down))
			stop, ready, routes, apps, down = append(stop, x.stop), append(ready, x.ready), append(routes, x.routes), append(apps, x.apps), append(down, x.down)
		}
		med := func(ds []time.Duration) string { return harness.Ms(harness.Percentile(harness.Sorted(ds), 0.5)) }
		fmt.Fprintf(&w, "| **median** | %s | %s | %s | %s | %s |\n", med(stop), med(ready), med(routes), med(apps), med(down))
	}

	fmt.Fprintf(&w, "\n## Memory of `baton serve` (/proc/PID/status)\n\n| when | VmRSS MiB | VmHWM MiB |\n|---|---|---|\n")
	for _, m := range r.mem {
		fmt.Fprintf(&w, "| %s | %.1f | %.1f |\n", m.when, float64(m.m.RSS)/1024, float64(m.m.HWM)/1024)
	}
	w.WriteString("\nVmHWM is the peak since the process started; the process is a new one after each restart.\n")

	if st := r.storm; st != nil {
		s := harness.Sorted(st.accept)
		accepted := st.byStatus[202]
		fmt.Fprintf(&w, "\n## %d concurrent deployment requests to one app\n\n", st.n)
		fmt.Fprintf(&w, "All sent at once, each on its own connection, to `%s` (live and idle before), with `on_conflict=%s` and no `Idempotency-Key`; "+
			"each a different tiny artifact (manifest + version; the app binary by path).\n\n", st.app, st.policy)
		fmt.Fprintf(&w, "| | |\n|---|---|\n")
		fmt.Fprintf(&w, "| requests | %d |\n", st.n)
		fmt.Fprintf(&w, "| answered | %d (without an answer: %d) |\n", len(st.accept), len(st.noAnswer))
		fmt.Fprintf(&w, "| by status | %s |\n", statusText(st.byStatus))
		fmt.Fprintf(&w, "| accept latency p50 / p99 / max | %s / %s / %s ms |\n",
			harness.Ms(harness.Percentile(s, 0.5)), harness.Ms(harness.Percentile(s, 0.99)), harness.Ms(harness.Percentile(s, 1)))
		fmt.Fprintf(&w, "| all answered after | %s ms |\n", harness.Ms(st.acceptAll))
		fmt.Fprintf(&w, "| app idle (nothing running or queued) after | %s ms |\n", harness.Ms(st.idle))
		fmt.Fprintf(&w, "| accepted deployments by final state | %s (of %d accepted; not final: %d) |\n", stateText(st.byState), accepted, len(st.notFinal))
		fmt.Fprintf(&w, "| deployments that ran at the same time as another | %d |\n", len(st.overlaps))
		fmt.Fprintf(&w, "| newest accepted deployment | %s, %s; its version serves: %v |\n", st.last.ID, st.last.State, st.lastServes)
		if len(st.problems) > 0 {
			fmt.Fprintf(&w, "\nRefusals:\n\n")
			keys := make([]string, 0, len(st.problems))
			for k := range st.problems {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(&w, "- %d × %s\n", st.problems[k], k)
			}
		}
		if baton.Policy(st.policy) == baton.PolicySupersede {
			fmt.Fprintf(&w, `
Why %s: with the default policy `+"`queue`"+` each of the %d requests would run
in turn (those that ran here took %s on average, under the storm), and `+"`--max-queue`"+` (100 by
default) would refuse most of them with 429. `+"`supersede`"+` keeps the same
guarantee a CI system wants from a burst, that the newest accepted request
is what ends up live, in bounded time: each accepted request marks the ones
still queued `+"`superseded`"+` in the transaction that queues it, so at most
one runs and one waits. Uploads beyond `+"`--max-uploads`"+` (8) wait for a slot
(up to 30 s) rather than being refused.
`, st.policy, st.n, st.runMean.Round(time.Millisecond))
		}
	}
	return w.String()
}

func statusText(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d × %d", m[k], k))
	}
	return strings.Join(parts, ", ")
}

func stateText(m map[baton.State]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[baton.State(k)]))
	}
	return strings.Join(parts, ", ")
}
