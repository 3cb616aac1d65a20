package main

import (
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// deployLog and swapLog are logs as GET /api/v1/deployments/{id}/log
// writes them (coordinator/pipeline.go and swap.go word the lines).
const deployLog = `2026-11-28T14:47:10.100Z queued deploy (queue policy)
2026-11-28T14:47:10.102Z phase extracting
2026-11-28T14:47:10.190Z manifest from baton.toml: run "./hello", 2 instance(s), health /healthz
2026-11-28T14:47:10.192Z phase starting
2026-11-28T14:47:10.200Z started 2 instance(s) on [127.0.0.1:1 127.0.0.1:2]
2026-11-28T14:47:10.400Z phase health-checking
2026-11-28T14:47:10.410Z all instances healthy at /healthz
2026-11-28T14:47:10.411Z phase switching
2026-11-28T14:47:10.414Z bench--000003 now serves bench.localhost: bench--000003 100%
2026-11-28T14:47:10.415Z phase draining
2026-11-28T14:47:10.416Z bench--000002 finishes its in-flight requests (up to 30s)
2026-11-28T14:47:10.430Z stopped bench--000002
`

const swapLog = `2026-11-28T14:47:11.000Z queued swap (queue policy)
2026-11-28T14:47:11.001Z swap: staging (bench--000004) ⇄ production (bench--000003)
2026-11-28T14:47:11.002Z phase starting
2026-11-28T14:47:11.200Z phase warming
2026-11-28T14:47:11.210Z phase starting
2026-11-28T14:47:11.400Z phase warming
2026-11-28T14:47:11.410Z phase switching
2026-11-28T14:47:11.412Z bench--000004 now serves bench.localhost; bench--000003 now serves bench-staging.localhost
2026-11-28T14:47:11.413Z phase draining
`

func at(s string) time.Time {
	t, err := time.Parse(logTime, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestSwitchOfDeployment(t *testing.T) {
	phases, serves, err := parseLog(deployLog)
	if err != nil {
		t.Fatal(err)
	}
	o := &op{phases: phases, serves: serves}
	ev, ok := o.switchOf("bench.localhost")
	if !ok {
		t.Fatal("no switch of bench.localhost found")
	}
	want := switchEvent{rev: "bench--000003", lo: at("2026-11-28T14:47:10.411Z"), hi: at("2026-11-28T14:47:10.415Z")}
	if ev != want {
		t.Errorf("switch = %+v, want %+v", ev, want)
	}
	if _, ok := o.switchOf("bench-staging.localhost"); ok {
		t.Error("a deployment to production switched staging")
	}
}

func TestSwitchOfSwap(t *testing.T) {
	phases, serves, err := parseLog(swapLog)
	if err != nil {
		t.Fatal(err)
	}
	o := &op{phases: phases, serves: serves}
	for host, rev := range map[string]string{"bench.localhost": "bench--000004", "bench-staging.localhost": "bench--000003"} {
		ev, ok := o.switchOf(host)
		if !ok || ev.rev != rev || !ev.lo.Equal(at("2026-11-28T14:47:11.410Z")) {
			t.Errorf("switch of %s = %+v, %v; want %s from 14:47:11.410", host, ev, ok, rev)
		}
	}
}

// The parts of the split add up to the total, and each phase lands in
// its part.
func TestSplitOf(t *testing.T) {
	phases, serves, err := parseLog(deployLog)
	if err != nil {
		t.Fatal(err)
	}
	fin := at("2026-11-28T14:47:10.440Z")
	o := &op{phases: phases, serves: serves,
		t0: at("2026-11-28T14:47:10.070Z"), t2: at("2026-11-28T14:47:10.443Z"),
		d: baton.Deployment{CreatedAt: at("2026-11-28T14:47:10.099Z"), FinishedAt: &fin}}
	s, err := splitOf(o)
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	want := split{upload: 29 * ms, queue: 3 * ms, extract: 90 * ms, app: 219 * ms, switching: 4 * ms, drain: 25 * ms, notice: 3 * ms, total: 373 * ms, overhead: 154 * ms}
	if s != want {
		t.Errorf("split = %+v\nwant    %+v", s, want)
	}
	if sum := s.upload + s.queue + s.extract + s.commands + s.app + s.switching + s.drain + s.other + s.notice; sum != s.total {
		t.Errorf("parts add up to %s, total is %s", sum, s.total)
	}
}

// buildLog is deployLog with the example's [build] step and a release
// command: both are the app's time, not baton's.
const buildLog = `2026-11-28T14:47:10.100Z queued deploy (queue policy)
2026-11-28T14:47:10.102Z phase extracting
2026-11-28T14:47:10.110Z manifest from baton.toml: run "./hello", 2 instance(s), health /healthz
2026-11-28T14:47:10.112Z phase building
2026-11-28T14:47:11.900Z phase releasing
2026-11-28T14:47:11.950Z phase starting
2026-11-28T14:47:12.150Z phase health-checking
2026-11-28T14:47:12.160Z phase switching
2026-11-28T14:47:12.163Z bench--000003 now serves bench.localhost: bench--000003 100%
2026-11-28T14:47:12.164Z phase draining
`

func TestSplitOfBuild(t *testing.T) {
	phases, serves, err := parseLog(buildLog)
	if err != nil {
		t.Fatal(err)
	}
	fin := at("2026-11-28T14:47:12.180Z")
	o := &op{phases: phases, serves: serves,
		t0: at("2026-11-28T14:47:10.070Z"), t2: at("2026-11-28T14:47:12.183Z"),
		d: baton.Deployment{CreatedAt: at("2026-11-28T14:47:10.099Z"), FinishedAt: &fin}}
	s, err := splitOf(o)
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	want := split{upload: 29 * ms, queue: 3 * ms, extract: 10 * ms, commands: 1838 * ms, app: 210 * ms, switching: 4 * ms, drain: 16 * ms, notice: 3 * ms, total: 2113 * ms, overhead: 65 * ms}
	if s != want {
		t.Errorf("split = %+v\nwant    %+v", s, want)
	}
}

func TestSwitchIndexNear(t *testing.T) {
	base := at("2026-11-28T14:47:10.000Z")
	idx := newSwitchIndex([]switchEvent{{hi: base}, {hi: base.Add(2 * time.Second)}})
	for _, c := range []struct {
		off  time.Duration
		near bool
	}{
		{-600 * time.Millisecond, false}, {-500 * time.Millisecond, true}, {0, true}, {500 * time.Millisecond, true},
		{time.Second, false}, {1600 * time.Millisecond, true}, {2600 * time.Millisecond, false},
	} {
		if got := idx.near(base.Add(c.off), 500*time.Millisecond); got != c.near {
			t.Errorf("near(%s) = %v, want %v", c.off, got, c.near)
		}
	}
	if got := idx.nearest(base.Add(1900 * time.Millisecond)); got != -100*time.Millisecond {
		t.Errorf("nearest = %s, want -100ms", got)
	}
}

func TestServedLive(t *testing.T) {
	base := at("2026-11-28T14:47:10.000Z")
	ms := func(n int) time.Time { return base.Add(time.Duration(n) * time.Millisecond) }
	live := liveSpans([]switchEvent{
		{rev: "r1", lo: ms(0), hi: ms(5)},
		{rev: "r2", lo: ms(100), hi: ms(105)},
		{rev: "r3", lo: ms(200), hi: ms(205)},
	})
	for _, c := range []struct {
		rev        string
		sent, done int
		ok         bool
	}{
		{"r2", 90, 101, true},   // in flight when r2 may already have been switched in
		{"r2", 90, 99, false},   // answered before r2's switch began
		{"r2", 204, 210, true},  // sent before r3's switch was surely done
		{"r2", 206, 210, false}, // sent after r3 surely served
		{"r1", 150, 151, false},
		{"r3", 5000, 5001, true}, // the last revision serves until the end
		{"r9", 0, 1, false},
	} {
		if got := servedLive(live[c.rev], ms(c.sent), ms(c.done)); got != c.ok {
			t.Errorf("%s sent %d answered %d: servedLive = %v, want %v", c.rev, c.sent, c.done, got, c.ok)
		}
	}
}
