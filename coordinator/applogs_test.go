package coordinator

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// TestInstanceLogRotatesAndTailFollows: a revision's instance log rotates
// at its cap, so the revision keeps at most twice the cap on disk, and a
// reader that started before the writes gets every line once, in order,
// with its instance and time, across the rotations; a reader that starts
// later gets what the two files still hold, filtered by Since.
func TestInstanceLogRotatesAndTailFollows(t *testing.T) {
	ctx := context.Background()
	store := openSQLite(t)
	if _, err := store.CreateApp(ctx, "logged"); err != nil {
		t.Fatal(err)
	}
	const max = 400
	c := New(Config{DataDir: t.TempDir(), Store: store, Retention: baton.RetentionPolicy{InstanceLogMax: max}})
	c.ctx = ctx
	lease, err := store.AcquireLease(ctx, baton.AppLeaseKey("logged"), "test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := store.CreateRevision(ctx, baton.Fence{Key: lease.Key, Token: lease.Token},
		baton.Revision{App: "logged", Slot: baton.ProductionSlot, ArtifactDigest: "00"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := openInstanceLog(c, rev.App, rev.Name, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	tail := c.newLogTail(baton.AppLogQuery{App: "logged"}, rev, time.Time{})
	t.Cleanup(tail.close)

	var got []baton.AppLogLine
	const n = 60
	for i := range n {
		fmt.Fprintf(l, "[%d] line %02d\n", i%2, i)
		got = append(got, tail.read()...)
	}
	if len(got) != n {
		t.Fatalf("the tail read %d lines, want %d: %+v", len(got), n, got)
	}
	for i, g := range got {
		if g.Text != fmt.Sprintf("line %02d", i) || g.Instance != i%2 || g.Time.IsZero() || g.ID != baton.LogCursor(g.Time) || g.Revision != rev.Name {
			t.Fatalf("line %d = %+v", i, g)
		}
	}
	path := c.instanceLogPath(rev.App, rev.Name)
	var size int64
	for _, p := range []string{path, path + ".1"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("after %d lines over a %d-byte cap: %v", n, max, err)
		}
		if fi.Size() > max {
			t.Errorf("%s is %d bytes, over the cap %d", p, fi.Size(), max)
		}
		size += fi.Size()
	}
	if size > 2*max {
		t.Errorf("the revision keeps %d bytes, over twice the cap", size)
	}

	later, err := c.AppLogs(ctx, baton.AppLogQuery{App: "logged", Revision: rev.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(later) == 0 || len(later) >= n || later[len(later)-1].Text != fmt.Sprintf("line %02d", n-1) {
		t.Fatalf("AppLogs after rotations: %d lines, last %+v", len(later), later)
	}
	// Since keeps the lines stamped at or after it (stamps have
	// microseconds: neighbours may share one).
	mid := got[n-5].Time
	want := 0
	for _, g := range got {
		if !g.Time.Before(mid) {
			want++
		}
	}
	since, err := c.AppLogs(ctx, baton.AppLogQuery{App: "logged", Revision: rev.Name, Since: mid})
	if err != nil {
		t.Fatal(err)
	}
	if len(since) != want || since[len(since)-1].Text != fmt.Sprintf("line %02d", n-1) || since[0].Time.Before(mid) {
		t.Fatalf("since the 5th last line's time: %+v, want %d lines", since, want)
	}
	resumed, err := c.AppLogs(ctx, baton.AppLogQuery{App: "logged", Revision: rev.Name, After: since[3].ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(resumed) == 0 || resumed[len(resumed)-1].Text != fmt.Sprintf("line %02d", n-1) || !resumed[0].Time.After(since[3].Time) {
		t.Fatalf("after the 4th of them: %+v", resumed)
	}
	if _, err := c.AppLogs(ctx, baton.AppLogQuery{App: "logged", Revision: "other--000001"}); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("another app's revision: %v", err)
	}
	if _, err := c.AppLogs(ctx, baton.AppLogQuery{App: "nope"}); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("no such app: %v", err)
	}
}
