package baton_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// TestPlanRetention pins what collection keeps: the newest N live
// revisions per slot, plus what serves or an operation names; artifacts
// only once no kept revision names them; under a budget, folders first,
// then the oldest revisions, never the one a plain rollback goes back to.
func TestPlanRetention(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	old := now.Add(-2 * time.Hour)
	rev := func(n int, mods ...func(*baton.RevisionFacts)) baton.RevisionFacts {
		r := baton.RevisionFacts{Name: fmt.Sprintf("a--%06d", n), App: "a", Slot: "production", Number: n,
			ArtifactDigest: fmt.Sprintf("d%d", n), Live: true, Files: 100, Log: 10}
		for _, m := range mods {
			m(&r)
		}
		return r
	}
	serving := func(r *baton.RevisionFacts) { r.Serving = true }
	inUse := func(r *baton.RevisionFacts) { r.InUse = true }
	failed := func(r *baton.RevisionFacts) { r.Live = false }
	noFiles := func(r *baton.RevisionFacts) { r.Files = -1 }
	digest := func(d string) func(*baton.RevisionFacts) {
		return func(r *baton.RevisionFacts) { r.ArtifactDigest = d }
	}
	slot := func(s string) func(*baton.RevisionFacts) {
		return func(r *baton.RevisionFacts) { r.Slot = s }
	}
	art := func(d string, size int64, mods ...func(*baton.ArtifactFacts)) baton.ArtifactFacts {
		a := baton.ArtifactFacts{Digest: d, Size: size, ModTime: old}
		for _, m := range mods {
			m(&a)
		}
		return a
	}
	arts := func(n int) []baton.ArtifactFacts {
		var as []baton.ArtifactFacts
		for i := 1; i <= n; i++ {
			as = append(as, art(fmt.Sprintf("d%d", i), 1000))
		}
		return as
	}
	names := func(ns ...int) []string {
		var out []string
		for _, n := range ns {
			out = append(out, fmt.Sprintf("a--%06d", n))
		}
		return out
	}
	policy := func(n int, budget int64) baton.RetentionPolicy {
		return baton.RetentionPolicy{Revisions: n, DiskBudget: budget, ArtifactGrace: time.Hour}
	}

	for _, tc := range []struct {
		name   string
		p      baton.RetentionPolicy
		revs   []baton.RevisionFacts
		arts   []baton.ArtifactFacts
		keep   []string
		files  []string // RemoveFiles
		logs   []string // RemoveLogs
		remove []string // RemoveArtifacts
		after  int64
		over   int64
	}{
		{
			name: "within the policy nothing goes",
			p:    policy(5, 0),
			revs: []baton.RevisionFacts{rev(3, serving), rev(2), rev(1)},
			arts: arts(3),
			keep: names(3, 2, 1), after: 3*110 + 3*1000,
		},
		{
			name: "beyond the newest N, folder, log and artifact go; the serving one does not count",
			p:    policy(2, 0),
			revs: []baton.RevisionFacts{rev(5, serving), rev(4), rev(3), rev(2), rev(1)},
			arts: arts(5),
			keep: names(5, 4, 3), files: names(2, 1), logs: names(2, 1), remove: []string{"d1", "d2"},
			after: 3*110 + 3*1000,
		},
		{
			name: "an old revision that serves is kept whole",
			p:    policy(1, 0),
			revs: []baton.RevisionFacts{rev(4), rev(3), rev(2), rev(1, serving)},
			arts: arts(4),
			keep: names(4, 1), files: names(3, 2), logs: names(3, 2), remove: []string{"d2", "d3"},
			after: 2*110 + 2*1000,
		},
		{
			name: "a revision a queued rollback names is kept",
			p:    policy(1, 0),
			revs: []baton.RevisionFacts{rev(3, serving), rev(2), rev(1, inUse)},
			arts: arts(3),
			keep: names(3, 2, 1), after: 3*110 + 3*1000,
		},
		{
			name: "revisions that never went live count for nothing and go",
			p:    policy(2, 0),
			revs: []baton.RevisionFacts{rev(4, failed), rev(3, serving), rev(2, failed), rev(1)},
			arts: arts(4),
			keep: names(3, 1), files: names(4, 2), logs: names(4, 2), remove: []string{"d2", "d4"},
			after: 2*110 + 2*1000,
		},
		{
			name: "an artifact stays while a kept revision names it",
			p:    policy(1, 0),
			revs: []baton.RevisionFacts{rev(3, serving, digest("d1")), rev(2), rev(1)},
			arts: arts(2),
			keep: names(3, 2), files: names(1), logs: names(1),
			after: 2*110 + 2*1000,
		},
		{
			name: "a pruned folder is not removed twice",
			p:    policy(1, 0),
			revs: []baton.RevisionFacts{rev(3, serving), rev(2, noFiles), rev(1, noFiles)},
			arts: arts(3),
			keep: names(3, 2), logs: names(1), remove: []string{"d1"},
			after: 110 + 10 + 2*1000,
		},
		{
			name: "unnamed artifacts go after the grace, not before; queued ones stay",
			p:    policy(5, 0),
			revs: []baton.RevisionFacts{rev(1, serving)},
			arts: []baton.ArtifactFacts{art("d1", 1000), art("orphan", 50), art("fresh", 70, func(a *baton.ArtifactFacts) { a.ModTime = now.Add(-time.Minute) }),
				art("queued", 80, func(a *baton.ArtifactFacts) { a.InUse = true })},
			keep: names(1), remove: []string{"orphan"},
			after: 110 + 1000 + 70 + 80,
		},
		{
			name: "slots are counted apart",
			p:    policy(1, 0),
			revs: []baton.RevisionFacts{rev(4, serving), rev(3, serving, slot("staging")), rev(2), rev(1, slot("staging"))},
			arts: arts(4),
			keep: names(4, 2, 3, 1), after: 4*110 + 4*1000,
		},
		{
			name: "over budget: folders of kept inactive revisions go first, oldest first",
			p:    policy(5, 3*1000+2*110+10),
			revs: []baton.RevisionFacts{rev(3, serving), rev(2), rev(1)},
			arts: arts(3),
			keep: names(3, 2, 1), files: names(1), after: 3*1000 + 2*110 + 10,
		},
		{
			name: "far over budget: the oldest revisions go, the serving one and the newest inactive stay",
			p:    policy(5, 100),
			revs: []baton.RevisionFacts{rev(4, serving), rev(3), rev(2), rev(1)},
			arts: arts(4),
			keep: names(4, 3), files: names(3, 2, 1), logs: names(2, 1), remove: []string{"d1", "d2"},
			after: 110 + 10 + 2000, over: 110 + 10 + 2000 - 100,
		},
		{
			name: "no budget, no count: nothing live goes",
			p:    policy(0, 0),
			revs: []baton.RevisionFacts{rev(2, serving), rev(1)},
			arts: arts(2),
			keep: names(2), files: names(1), logs: names(1), remove: []string{"d1"},
			after: 110 + 1000,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := baton.PlanRetention(tc.p, baton.RetentionFacts{Now: now, Revisions: tc.revs, Artifacts: tc.arts})
			want := baton.RetentionPlan{Keep: tc.keep, RemoveFiles: tc.files, RemoveLogs: tc.logs, RemoveArtifacts: tc.remove,
				Before: got.Before, After: tc.after, OverBudget: tc.over}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("plan:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestDiskUseByApp: an artifact counts once per app, folders that are gone
// count nothing.
func TestDiskUseByApp(t *testing.T) {
	got := baton.DiskUseByApp(baton.RetentionFacts{
		Revisions: []baton.RevisionFacts{
			{App: "a", ArtifactDigest: "x", Files: 100, Log: 5},
			{App: "a", ArtifactDigest: "x", Files: -1, Log: 1},
			{App: "b", ArtifactDigest: "x", Files: 7},
		},
		Artifacts: []baton.ArtifactFacts{{Digest: "x", Size: 1000}},
	})
	want := map[string]baton.DiskUse{
		"a": {Revisions: 100, Logs: 6, Artifacts: 1000, Total: 1106},
		"b": {Revisions: 7, Artifacts: 1000, Total: 1007},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("disk use: got %+v, want %+v", got, want)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"5GiB", 5 << 30, true}, {"5G", 5 << 30, true}, {"5 GB", 5e9, true}, {"500MiB", 500 << 20, true},
		{"1.5KiB", 1536, true}, {"1024", 1024, true}, {"0", 0, true}, {"12b", 12, true},
		{"", 0, false}, {"five", 0, false}, {"5XB", 0, false}, {"-1G", 0, false},
	} {
		got, err := baton.ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d (ok %t)", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if got := baton.FormatSize(191 << 20); got != "191.0 MiB" {
		t.Errorf("FormatSize = %q", got)
	}
}
