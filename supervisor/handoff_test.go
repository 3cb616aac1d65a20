package supervisor

import (
	"context"
	"strings"
	"syscall"
	"testing"
)

// TestHandoffAndAdopt: a group handed off by one Supervisor keeps running
// untouched (Stop leaves it alone), and another Supervisor adopts the same
// processes: same pids, healthy, not reaped as orphans, their output read,
// and a crash detected (they are not its children) and restarted.
func TestHandoffAndAdopt(t *testing.T) {
	state := t.TempDir()
	cfg := testConfig(t)
	cfg.StateDir = state
	old := newSupervisor(t, cfg)
	spec := appSpec(t, "crash-after", 2)
	g := start(t, old, spec)
	waitHealthy(t, g)
	g.SetLive()
	before := g.Status()

	handed, err := g.Handoff()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, h := range handed {
		if h.PID != before[i].PID || !h.Healthy || h.Output == nil {
			t.Fatalf("handed instance %d = %+v, status before %+v", i, h, before[i])
		}
		if !alive(h.PID) {
			t.Fatalf("instance %d (pid %d) died with the handoff", h.Index, h.PID)
		}
		// As through exec: the next owner gets its own descriptor.
		fd, err := syscall.Dup(int(h.Output.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		h.Output.Close()
		if handed[i].Output, err = InheritedPipe(uintptr(fd), "inherited"); err != nil {
			t.Fatal(err)
		}
	}

	next := newSupervisor(t, cfg)
	out := &syncBuffer{}
	spec.Output = out
	g2, err := next.Adopt(spec, handed)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := reapN(next); err != nil || n != 0 {
		t.Fatalf("ReapOrphans after Adopt = %d, %v; want 0 (the adopted processes are ours)", n, err)
	}
	for i, st := range g2.Status() {
		if st.PID != before[i].PID || !st.Healthy || st.Addr != before[i].Addr {
			t.Fatalf("adopted instance %d = %+v, want pid %d at %s, healthy", i, st, before[i].PID, before[i].Addr)
		}
		if code, _, err := get(st.Addr, "/"); err != nil || code != 200 {
			t.Fatalf("adopted instance %d answers %d %v", i, code, err)
		}
	}

	// A crash of an adopted process is seen and the instance restarted.
	first := before[0]
	_, _, _ = get(first.Addr, "/crash")
	eventually(t, "the crashed adopted instance restarted and healthy", func() bool {
		st := g2.Status()[0]
		return st.PID != 0 && st.PID != first.PID && st.Healthy && st.Restarts == 1
	})
	if !strings.Contains(out.String(), "crashing on request") {
		t.Errorf("the adopted instance's output did not reach the new owner:\n%s", out.String())
	}
	if st := g2.Status()[0]; !strings.Contains(st.LastError, "earlier baton") {
		t.Errorf("last error of the crashed adopted instance = %q", st.LastError)
	}
	if err := g2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, st := range g2.Status() {
		if st.PID != 0 {
			t.Errorf("instance %d still has pid %d after Stop", st.Index, st.PID)
		}
	}
	if alive(before[1].PID) {
		t.Errorf("adopted process %d outlived Stop", before[1].PID)
	}
}
