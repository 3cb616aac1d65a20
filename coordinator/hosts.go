package coordinator

import (
	"context"
	"sort"

	"github.com/batonhq/baton"
)

// hostInfo is what this controller registers about itself.
func (c *Coordinator) hostInfo() baton.ControllerInfo {
	return baton.ControllerInfo{ID: c.cfg.ControllerID, Addr: c.cfg.ControllerAddr,
		Advertise: c.cfg.Advertise, Peer: c.cfg.PeerAddr, SendsPeerKey: c.cfg.Proxy.SendsPeerKey()}
}

// heartbeatHost tells the store this controller is alive, with the instances
// it runs; registers it again if it was removed meanwhile.
func (c *Coordinator) heartbeatHost(ctx context.Context) {
	hb := baton.Heartbeat{Instances: c.instanceCount(), Draining: c.isDraining()}
	if err := c.cfg.Store.HeartbeatController(ctx, c.cfg.ControllerID, hb); baton.ErrorCode(err) == baton.ENOTFOUND {
		if c.cfg.Store.RegisterController(ctx, c.hostInfo()) == nil {
			_ = c.cfg.Store.HeartbeatController(ctx, c.cfg.ControllerID, hb)
		}
	}
}

// instanceCount is how many app instances this controller runs.
func (c *Coordinator) instanceCount() int {
	c.mu.Lock()
	groups := make([]*instances, 0, len(c.running))
	for _, in := range c.running {
		groups = append(groups, in)
	}
	groups = append(groups, c.placedGroupsLocked()...)
	c.mu.Unlock()
	n := 0
	for _, in := range groups {
		if in.group != nil {
			n += len(in.group.Status())
		}
	}
	return n
}

// isDraining reports whether this controller is stopping.
func (c *Coordinator) isDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// hostState is a host's state, by its heartbeat and its report.
func (c *Coordinator) hostState(ct baton.Controller) baton.HostState {
	switch {
	case ct.Silence >= silentAfter*c.cfg.LeaseTTL:
		return baton.HostLost
	case ct.Draining || ct.DrainRequested:
		return baton.HostDraining
	}
	return baton.HostLive
}

// Hosts lists the hosts sharing the store (one, alone on SQLite), each
// with its state and the apps it owns, by id.
func (c *Coordinator) Hosts(ctx context.Context) ([]baton.Host, error) {
	ctrls, err := c.cfg.Store.Controllers(ctx)
	if err != nil {
		return nil, err
	}
	apps, err := c.cfg.Store.Apps(ctx)
	if err != nil {
		return nil, err
	}
	owned := map[string][]string{}
	for _, a := range apps {
		owned[a.Controller] = append(owned[a.Controller], a.Name)
	}
	out := make([]baton.Host, 0, len(ctrls))
	for _, ct := range ctrls {
		h := baton.Host{Controller: ct, State: c.hostState(ct), Apps: owned[ct.ID]}
		if ct.ID == c.cfg.ControllerID {
			h.Instances = c.instanceCount() // fresher than the last heartbeat
		}
		if h.Apps == nil {
			h.Apps = []string{}
		}
		sort.Strings(h.Apps)
		out = append(out, h)
	}
	return out, nil
}
