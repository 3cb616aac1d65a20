package coordinator

import (
	"context"

	"github.com/batonhq/baton"
)

// swap exchanges the revisions of two slots (issue 4; not yet built).
func (c *Coordinator) swap(ctx context.Context, p *pipeline) error {
	return baton.Errorf(baton.EINVALID, "slot swap is not available yet")
}
