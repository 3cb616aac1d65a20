package coordinator

import (
	"context"

	"github.com/batonhq/baton"
)

// DrainHost records that an operator asked host id to drain (drain) or
// to take instances again; baton then moves its instances away.
func (c *Coordinator) DrainHost(ctx context.Context, id string, drain bool) error {
	return baton.Errorf(baton.EINTERNAL, "drain is not built yet")
}
