package sqlite

import (
	"sync"

	"github.com/batonhq/baton"
)

// catalog keeps the last list of every app with its slots and the catalog
// version it was read at (migration 0018: triggers advance the version on
// every change of an app or a slot). The list changes with deployments,
// swaps and app settings, and is read far more often than that: status,
// the dashboard, the API's app list and route rebuilds each read all of it,
// which with 1,000 apps means stepping 4,000 rows. A read at the same
// version gives out a copy of the list instead.
type catalog struct {
	mu      sync.Mutex
	version int64
	apps    []baton.App // nil: nothing kept yet
}

// get returns a copy of the kept list if it was read at version.
func (c *catalog) get(version int64) ([]baton.App, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apps == nil || c.version != version {
		return nil, false
	}
	return cloneApps(c.apps), true
}

// put keeps a copy of apps as read at version, unless a list read at a
// later version is kept already (two reads may finish out of order).
func (c *catalog) put(version int64, apps []baton.App) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apps != nil && c.version > version {
		return
	}
	c.version, c.apps = version, cloneApps(apps)
}

// cloneApps copies apps deeply enough that a caller may change the copy,
// appending to an app's slots included, without touching the original:
// every app's slots are in one array, each capped at its own length.
func cloneApps(apps []baton.App) []baton.App {
	out := make([]baton.App, len(apps))
	n := 0
	for _, a := range apps {
		n += len(a.Slots)
	}
	slots := make([]baton.Slot, 0, n)
	for i, a := range apps {
		out[i] = a
		if a.Slots != nil {
			start := len(slots)
			slots = append(slots, a.Slots...)
			out[i].Slots = slots[start:len(slots):len(slots)]
		}
		if a.Frozen != nil {
			f := *a.Frozen
			out[i].Frozen = &f
		}
	}
	return out
}
