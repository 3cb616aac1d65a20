package baton

import (
	"fmt"
	"sort"
	"strings"
)

// CheckActivate is the rule for activating revision rev in a slot whose
// active revisions are active: in single revision mode a slot has exactly
// one active revision (status reports more as ConflictMultipleActive), so
// activating a second one is refused (ECONFLICT), naming the command that
// does what the user most likely wants: switch the slot to rev,
// health-gated, at 100 %.
func CheckActivate(app, slot, mode, rev string, active []RevisionWeight) error {
	if mode == RevisionsMultiple || len(active) == 0 {
		return nil
	}
	return Errorf(ECONFLICT, "app %s is in single revision mode and %s already has %s active: activating %s would make two. To switch the slot to %s (health-gated, 100 %% of its traffic, the old revision drained): `baton rollback %s --to %s%s`; to run both, first `baton apps set %s --revision-mode multiple`",
		app, slot, names(active), rev, rev, app, rev, slotFlag(slot), app)
}

// CheckRevisionMode is the rule for setting an app's revision mode, given
// the active revisions of each of its slots: single mode with two active
// revisions in a slot would be a conflict at once, so it is refused
// (ECONFLICT), naming the command that leaves one.
func CheckRevisionMode(app, mode string, active map[string][]RevisionWeight) error {
	if mode != RevisionsSingle {
		return nil
	}
	slots := make([]string, 0, len(active))
	for s := range active {
		slots = append(slots, s)
	}
	sort.Strings(slots)
	var fixes, what []string
	for _, s := range slots {
		if rs := active[s]; len(rs) > 1 {
			what = append(what, fmt.Sprintf("%s has %s", s, names(rs)))
			fixes = append(fixes, fmt.Sprintf("`baton stabilize %s%s --revision %s`", app, slotFlag(s), heaviestOf(rs)))
		}
	}
	if len(what) == 0 {
		return nil
	}
	return Errorf(ECONFLICT, "app %s cannot go to single revision mode while a slot has several active revisions (%s); keep one first: %s, then set the mode again",
		app, strings.Join(what, "; "), strings.Join(fixes, ", "))
}

func names(rs []RevisionWeight) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s (%d %%)", r.Revision, r.Weight)
	}
	return strings.Join(out, ", ")
}

// heaviestOf is the revision with the most traffic, the newest on a tie.
func heaviestOf(rs []RevisionWeight) string {
	best := rs[0]
	for _, r := range rs[1:] {
		if r.Weight > best.Weight || (r.Weight == best.Weight && r.Revision > best.Revision) {
			best = r
		}
	}
	return best.Revision
}

func slotFlag(slot string) string {
	if slot == "" || slot == ProductionSlot {
		return ""
	}
	return " --slot " + slot
}

// ActiveBySlot groups the active revisions among rs by slot, with their
// weights: the facts CheckActivate and CheckRevisionMode decide on.
func ActiveBySlot(rs []Revision) map[string][]RevisionWeight {
	out := map[string][]RevisionWeight{}
	for _, r := range rs {
		if r.Active {
			out[r.Slot] = append(out[r.Slot], RevisionWeight{Revision: r.Name, Weight: r.Weight})
		}
	}
	return out
}
