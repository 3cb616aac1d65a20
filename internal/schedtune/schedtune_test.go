package schedtune

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// report is what the helper process prints after Apply.
type report struct {
	PID       int    // after Apply: the same process, started again
	GODEBUG   string // what the process and its children see
	Set       bool   // GODEBUG is set at all
	Saved     bool   // savedEnv is left over
	StartedAs string // GODEBUG the runtime started with (/proc/self/environ)
	Procs     int    // GOMAXPROCS after Apply
	Default   int    // GOMAXPROCS before Apply: the runtime's own
}

// TestHelperProcess is the process the tests start; it does nothing in
// an ordinary run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("SCHEDTUNE_HELPER") != "1" {
		return
	}
	before := runtime.GOMAXPROCS(0)
	Apply()
	var r report
	r.PID = os.Getpid()
	r.Procs, r.Default = runtime.GOMAXPROCS(0), before
	r.GODEBUG, r.Set = os.LookupEnv("GODEBUG")
	_, r.Saved = os.LookupEnv(savedEnv)
	environ, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	for kv := range bytes.SplitSeq(environ, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("GODEBUG=")); ok {
			r.StartedAs = string(v)
			break
		}
	}
	json.NewEncoder(os.Stdout).Encode(r)
	os.Exit(0)
}

func runHelper(t *testing.T, godebug *string, env ...string) report {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append([]string{"SCHEDTUNE_HELPER=1", "PATH=" + os.Getenv("PATH")}, env...)
	if godebug != nil {
		cmd.Env = append(cmd.Env, "GODEBUG="+*godebug)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v\n%s%s", err, out.Bytes(), errb.Bytes())
	}
	var r report
	line, _, _ := strings.Cut(out.String(), "\n")
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("helper printed %q: %v", out.String(), err)
	}
	if r.PID != cmd.Process.Pid {
		t.Errorf("the helper ran as pid %d, started as %d: Apply must exec in place", r.PID, cmd.Process.Pid)
	}
	return r
}

func TestApplyStartsAgainWithTheSettingAndRestoresGODEBUG(t *testing.T) {
	for _, tt := range []struct {
		name      string
		godebug   *string
		startedAs string
	}{
		{"unset", nil, Setting},
		{"other settings", ptr("http2server=0"), "http2server=0," + Setting},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runHelper(t, tt.godebug)
			if r.StartedAs != tt.startedAs {
				t.Errorf("the runtime started with GODEBUG=%q; want %q", r.StartedAs, tt.startedAs)
			}
			if r.Saved {
				t.Errorf("%s is left in the environment", savedEnv)
			}
			if tt.godebug == nil && r.Set {
				t.Errorf("GODEBUG=%q after Apply; want it unset, as it was", r.GODEBUG)
			}
			if tt.godebug != nil && r.GODEBUG != *tt.godebug {
				t.Errorf("GODEBUG=%q after Apply; want %q, as it was", r.GODEBUG, *tt.godebug)
			}
			if r.Procs != r.Default+1 {
				t.Errorf("GOMAXPROCS %d, the runtime's %d; want one more", r.Procs, r.Default)
			}
		})
	}
}

func TestApplyLeavesASchedtraceSetByHand(t *testing.T) {
	own := "schedtrace=600000" // its SCHED lines go to the helper's stderr

	r := runHelper(t, &own)
	if r.StartedAs != own || r.GODEBUG != own {
		t.Errorf("started with GODEBUG=%q, now %q; want %q untouched", r.StartedAs, r.GODEBUG, own)
	}
}

func TestApplyOptOut(t *testing.T) {
	for _, v := range []string{"off", "0", "false"} {
		r := runHelper(t, nil, OptOut+"="+v)
		if r.StartedAs != "" || r.Set || r.Procs != r.Default {
			t.Errorf("%s=%s: started with GODEBUG=%q, now %q, GOMAXPROCS %d of the runtime's %d; want none and the runtime's",
				OptOut, v, r.StartedAs, r.GODEBUG, r.Procs, r.Default)
		}
	}
}

func TestApplyLeavesAGOMAXPROCSSetByHand(t *testing.T) {
	r := runHelper(t, nil, "GOMAXPROCS=1")
	if r.StartedAs != Setting || r.Procs != 1 {
		t.Errorf("GOMAXPROCS=1: started with GODEBUG=%q and %d procs; want %q and 1", r.StartedAs, r.Procs, Setting)
	}
}

func TestNames(t *testing.T) {
	for _, tt := range []struct {
		godebug string
		want    bool
	}{
		{"", false},
		{"schedtrace=1", true},
		{"http2server=0, schedtrace=10", true},
		{"scheddetail=1", false},
		{"schedtrace", false},
	} {
		if got := names(tt.godebug, "schedtrace"); got != tt.want {
			t.Errorf("names(%q) = %v; want %v", tt.godebug, got, tt.want)
		}
	}
}

func ptr(s string) *string { return &s }
