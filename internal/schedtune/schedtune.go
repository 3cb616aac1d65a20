// Package schedtune starts a long-running server again, at once, with the
// one runtime setting that keeps Go's system monitor from its deep sleep,
// whose every wake costs a busy proxy a tenth of its CPU, and with one
// processor more to make up for what that costs.
//
// Go's runtime has a system monitor thread (sysmon). When every
// processor is idle, as a proxy's are each time it waits on the network
// for a moment, sysmon sleeps deeply; the next goroutine that makes a
// syscall wakes it (a futex wake on the request's own path), and it then
// polls every 20 µs until everything is idle again. A proxy serving
// thousands of short requests a second goes through that cycle hundreds
// of times a second: on 2 cores, with a new connection per request, it
// was 0.4 of the 1.1 thread switches per request and a tenth of the
// proxy's CPU (golang/go#18236 tells the same from other servers). The
// runtime has no setting for it but one: with schedtrace on, sysmon
// never sleeps deeply and backs off to one wake every 10 ms while there
// is nothing to take back from a syscall. Measured on this workload:
// 43-48 µs of proxy CPU per request instead of 47-55, and 1.07 thread
// switches per request down to 0.47.
//
// The other side: woken by nothing, sysmon also takes longer (up to its
// 10 ms period) to take a processor back from a goroutine blocked in a
// syscall (a fork, an fsync), and whatever was queued behind it waits:
// requests through the proxy while an instance started took 6.5 ms at the
// median instead of 1.3 (bench/deployload). So the tuned process also
// runs one processor (GOMAXPROCS) more than the runtime would, which
// keeps every core busy while one waits in a syscall: the median went
// back to 1.3 ms, the p99 near a switch to what it was (3.9-4.4 ms against
// 4.1-4.2, four runs), and the proxy kept its gain.
//
// The setting is read once, when the runtime starts, so Apply runs the
// executable again with it in GODEBUG; the new process restores GODEBUG
// as it was, so nothing it starts (apps, builds, git, podman) inherits it.
// schedtrace's period is the largest there is, about 24.8 days: sysmon
// writes one SCHED line to standard error per period, the first once the
// machine has been up that long. What it costs otherwise: an idle server
// wakes 100 times a second instead of sleeping until its next timer (an
// idle baton serve: 5.3 ms of CPU a second against 0.5), a fatal crash
// prints the scheduler's state before the stacks, and GOMAXPROCS, once
// set, no longer follows a changed cgroup CPU limit. A GOMAXPROCS in the
// environment wins; BATON_SCHEDTUNE=off keeps Go's defaults.
package schedtune

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
)

// Setting is what Apply adds to GODEBUG: schedtrace with the largest
// period the runtime takes (milliseconds in an int32).
const Setting = "schedtrace=2147483647"

// OptOut is the environment variable that, set to off (or 0, false),
// keeps the process as it started.
const OptOut = "BATON_SCHEDTUNE"

// savedEnv carries GODEBUG as it was (empty: unset) across the exec, and
// tells the new process that it is the one started again.
const savedEnv = "BATON_SCHEDTUNE_GODEBUG"

// Apply runs the process's executable again with Setting, keeping its
// arguments, environment, open descriptors and process ID, unless this
// process already runs with it or GODEBUG names schedtrace already (one
// set by hand wins). Call it first thing in main, before anything opens
// a file or starts a goroutine that matters. It returns only when no exec
// is needed, the user opted out (OptOut) or it failed; then the process goes on as it is (slower,
// not wrong). In the process started again it restores GODEBUG and
// adds the processor.
func Apply() {
	if before, again := os.LookupEnv(savedEnv); again {
		os.Unsetenv(savedEnv)
		if before == "" {
			os.Unsetenv("GODEBUG")
		} else {
			os.Setenv("GODEBUG", before)
		}
		if _, set := os.LookupEnv("GOMAXPROCS"); !set { // one set by hand wins
			runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
		}
		return
	}
	switch os.Getenv(OptOut) {
	case "off", "0", "false":
		return
	}
	godebug := os.Getenv("GODEBUG")
	if names(godebug, "schedtrace") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	// The runtime reads the first GODEBUG in the environment: the one
	// there goes.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") })
	env = append(env, savedEnv+"="+godebug, "GODEBUG="+join(godebug, Setting))
	syscall.Exec(exe, os.Args, env) // returns only if it failed
}

// names reports whether the GODEBUG value godebug sets key.
func names(godebug, key string) bool {
	for field := range strings.SplitSeq(godebug, ",") {
		if k, _, ok := strings.Cut(field, "="); ok && strings.TrimSpace(k) == key {
			return true
		}
	}
	return false
}

// join adds setting to the GODEBUG value godebug.
func join(godebug, setting string) string {
	if godebug == "" {
		return setting
	}
	return godebug + "," + setting
}
