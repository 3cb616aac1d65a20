// Package invariants checks, from an app's recorded history, the
// guarantees baton makes about deployments, for the tests that drive it in
// process and as a separate process alike.
package invariants

import (
	"fmt"
	"sort"

	"github.com/batonhq/baton"
)

// Serial checks that the deployments of one app that ran never overlapped
// and started in acceptance order, each under a higher fencing token than
// the one before.
func Serial(ds []baton.Deployment) error {
	var ran []baton.Deployment
	for _, d := range ds {
		if d.StartedAt != nil {
			ran = append(ran, d)
		}
	}
	sort.Slice(ran, func(i, j int) bool { return ran[i].Seq < ran[j].Seq })
	for i := 1; i < len(ran); i++ {
		prev, cur := ran[i-1], ran[i]
		if prev.FinishedAt == nil || cur.StartedAt.Before(*prev.FinishedAt) {
			return fmt.Errorf("deployments overlapped: %s ran %v–%v, %s started %v", prev.ID, prev.StartedAt, prev.FinishedAt, cur.ID, cur.StartedAt)
		}
		if cur.Token <= prev.Token {
			return fmt.Errorf("fencing tokens not increasing: %s has %d after %s with %d", cur.ID, cur.Token, prev.ID, prev.Token)
		}
	}
	return nil
}
