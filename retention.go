package baton

import (
	"sort"
	"time"
)

// DefaultRetainRevisions is how many revisions per slot stay rollbackable
// unless the operator says otherwise (baton serve --retain-revisions).
const DefaultRetainRevisions = 20

// DefaultDiskBudget is the disk budget of revisions, their logs and
// artifacts unless the operator says otherwise (baton serve --disk-budget).
const DefaultDiskBudget = 5 << 30

// DefaultInstanceLogMax is RetentionPolicy.InstanceLogMax unless the
// operator says otherwise (baton serve --instance-log-max).
const DefaultInstanceLogMax = 4 << 20

// DefaultArtifactGrace is how long an artifact no revision names yet is
// kept: it may belong to a deployment being queued right now.
const DefaultArtifactGrace = time.Hour

// RetentionPolicy says what collection keeps.
type RetentionPolicy struct {
	// Revisions is how many of the newest revisions that went live stay
	// rollbackable per slot (artifact, unpacked folder, instance log).
	Revisions int `json:"retain_revisions"`
	// DiskBudget bounds, in bytes, what revisions, their logs and the
	// artifacts use together (0: no bound). Over it, collection first
	// removes the unpacked folders of kept inactive revisions (a rollback
	// unpacks them again), then gives up the oldest kept revisions, but
	// never the newest one per slot that a rollback without --to needs.
	DiskBudget int64 `json:"disk_budget_bytes"`
	// ArtifactGrace keeps artifacts that no revision names for this long
	// after they were stored.
	ArtifactGrace time.Duration `json:"-"`
	// InstanceLogMax is the size at which a revision's instance log
	// rotates: REV.log becomes REV.log.1 (replacing the one before), so a
	// revision keeps at most twice this on disk; 0:
	// DefaultInstanceLogMax. The log goes with its revision.
	InstanceLogMax int64 `json:"instance_log_max_bytes"`
}

// RevisionFacts is what collection knows of one revision.
type RevisionFacts struct {
	Name, App, Slot string
	Number          int
	ArtifactDigest  string
	// Serving: the revision is active in a slot. InUse: a queued or
	// running operation names it. Both are always kept, whole.
	Serving, InUse bool
	// Live: it went live once (its deployment succeeded, or a rollback
	// put it back), so a rollback may go back to it. Revisions that never
	// did count for nothing and are removed.
	Live bool
	// Files is the size of its unpacked folder (build outputs included),
	// or -1 when there is none on this disk; Log the size of its instance
	// log (0 when none).
	Files, Log int64
}

// ArtifactFacts is what collection knows of one stored artifact.
type ArtifactFacts struct {
	Digest  string
	Size    int64
	ModTime time.Time
	// InUse: a queued or running deployment will unpack it.
	InUse bool
}

// RetentionFacts is everything PlanRetention decides on.
type RetentionFacts struct {
	Now       time.Time
	Revisions []RevisionFacts
	Artifacts []ArtifactFacts
}

// RetentionPlan is what collection removes: the unpacked folders of
// RemoveFiles, the instance logs of RemoveLogs, the artifacts of
// RemoveArtifacts. Keep lists the revisions that stay rollbackable
// (their artifact is kept), newest first per slot.
type RetentionPlan struct {
	Keep            []string `json:"keep"`
	RemoveFiles     []string `json:"remove_files"`
	RemoveLogs      []string `json:"remove_logs"`
	RemoveArtifacts []string `json:"remove_artifacts"`
	// Before and After are the bytes in use before and after the plan;
	// OverBudget what After exceeds the budget by (0 when within).
	Before     int64 `json:"before_bytes"`
	After      int64 `json:"after_bytes"`
	OverBudget int64 `json:"over_budget_bytes,omitempty"`
}

// PlanRetention decides what to keep under policy p. Never removed: what
// serves, what a queued or running operation names, artifacts of kept
// revisions, and artifacts younger than the grace that no revision names.
// Within the budget, the newest p.Revisions live revisions per slot keep
// everything; past it, see RetentionPolicy.DiskBudget.
func PlanRetention(p RetentionPolicy, f RetentionFacts) RetentionPlan {
	revs := append([]RevisionFacts(nil), f.Revisions...)
	// Newest first within each slot; slots in a stable order.
	sort.SliceStable(revs, func(i, j int) bool {
		a, b := revs[i], revs[j]
		if a.App != b.App {
			return a.App < b.App
		}
		if a.Slot != b.Slot {
			return a.Slot < b.Slot
		}
		return a.Number > b.Number
	})
	type state struct {
		keep, files, log bool // artifact kept; folder kept; log kept
		floor            bool // the newest live inactive revision of its slot
	}
	st := make([]state, len(revs))
	rank := map[[2]string]int{}
	for i, r := range revs {
		protected := r.Serving || r.InUse
		k := [2]string{r.App, r.Slot}
		inPolicy := false
		if r.Live && !protected {
			inPolicy = rank[k] < p.Revisions
			if rank[k] == 0 && p.Revisions > 0 {
				st[i].floor = true
			}
			rank[k]++
		}
		keep := protected || inPolicy
		st[i] = state{keep: keep, files: keep && r.Files >= 0, log: keep, floor: st[i].floor}
	}

	arts := map[string]ArtifactFacts{}
	for _, a := range f.Artifacts {
		arts[a.Digest] = a
	}
	named := map[string]bool{}
	for _, r := range revs {
		named[r.ArtifactDigest] = true
	}
	// keptArtifacts is the set the kept revisions and the facts pin.
	keptArtifacts := func() map[string]bool {
		kept := map[string]bool{}
		for i, r := range revs {
			if st[i].keep && r.ArtifactDigest != "" {
				kept[r.ArtifactDigest] = true
			}
		}
		for _, a := range f.Artifacts {
			if a.InUse || (!named[a.Digest] && f.Now.Sub(a.ModTime) < p.ArtifactGrace) {
				kept[a.Digest] = true
			}
		}
		return kept
	}
	use := func() int64 {
		var n int64
		for i, r := range revs {
			if st[i].files {
				n += r.Files
			}
			if st[i].log {
				n += r.Log
			}
		}
		for d := range keptArtifacts() {
			n += arts[d].Size
		}
		return n
	}

	var before int64
	for _, r := range revs {
		before += max(r.Files, 0) + r.Log
	}
	for _, a := range f.Artifacts {
		before += a.Size
	}

	if p.DiskBudget > 0 && use() > p.DiskBudget {
		// Oldest first across every slot: folders, then whole revisions.
		order := make([]int, len(revs))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return revs[order[a]].Number < revs[order[b]].Number })
		for _, i := range order {
			if use() <= p.DiskBudget {
				break
			}
			if r := revs[i]; st[i].files && !r.Serving && !r.InUse {
				st[i].files = false
			}
		}
		for _, i := range order {
			if use() <= p.DiskBudget {
				break
			}
			if r := revs[i]; st[i].keep && !r.Serving && !r.InUse && !st[i].floor {
				st[i] = state{}
			}
		}
	}

	plan := RetentionPlan{Before: before}
	for i, r := range revs {
		if st[i].keep {
			plan.Keep = append(plan.Keep, r.Name)
		}
		if !st[i].files && r.Files >= 0 {
			plan.RemoveFiles = append(plan.RemoveFiles, r.Name)
		}
		if !st[i].log && r.Log > 0 {
			plan.RemoveLogs = append(plan.RemoveLogs, r.Name)
		}
	}
	kept := keptArtifacts()
	for _, a := range f.Artifacts {
		if !kept[a.Digest] {
			plan.RemoveArtifacts = append(plan.RemoveArtifacts, a.Digest)
		}
	}
	sort.Strings(plan.RemoveArtifacts)
	plan.After = use()
	if p.DiskBudget > 0 && plan.After > p.DiskBudget {
		plan.OverBudget = plan.After - p.DiskBudget
	}
	return plan
}

// DiskUse is what an app's revisions use on a controller's disk, in bytes:
// unpacked folders with their build outputs, instance logs, and the
// artifacts they name (an artifact two apps share counts in both).
type DiskUse struct {
	Revisions int64 `json:"revisions_bytes"`
	Logs      int64 `json:"logs_bytes"`
	Artifacts int64 `json:"artifacts_bytes"`
	Total     int64 `json:"total_bytes"`
	// Kept is how many revisions stay rollbackable.
	Kept int `json:"kept_revisions"`
}

// DiskUseByApp sums facts per app.
func DiskUseByApp(f RetentionFacts) map[string]DiskUse {
	size := map[string]int64{}
	for _, a := range f.Artifacts {
		size[a.Digest] = a.Size
	}
	out := map[string]DiskUse{}
	seen := map[[2]string]bool{}
	for _, r := range f.Revisions {
		u := out[r.App]
		u.Revisions += max(r.Files, 0)
		u.Logs += r.Log
		if k := [2]string{r.App, r.ArtifactDigest}; !seen[k] {
			seen[k] = true
			u.Artifacts += size[r.ArtifactDigest]
		}
		u.Total = u.Revisions + u.Logs + u.Artifacts
		out[r.App] = u
	}
	return out
}

// GCReport is what a collection did, or with DryRun would do.
type GCReport struct {
	DryRun bool            `json:"dry_run"`
	Policy RetentionPolicy `json:"policy"`
	Plan   RetentionPlan   `json:"plan"`
	// Before and After are the bytes revisions, their logs and artifacts
	// used on this controller's disk before and after (measured again
	// after a real collection; expected for a dry run).
	Before    int64 `json:"before_bytes"`
	After     int64 `json:"after_bytes"`
	Reclaimed int64 `json:"reclaimed_bytes"`
	// Apps is each app's disk use after.
	Apps map[string]DiskUse `json:"apps"`
	// Skipped lists apps left for a later collection: an operation ran
	// or waited for them.
	Skipped []string `json:"skipped_apps,omitempty"`
}
