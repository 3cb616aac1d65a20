package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// containerOrphan is a container of an earlier baton that ReapOrphans
// stops and deletes.
type containerOrphan struct {
	ref ContainerRef
	pid int // the container's init on the host; 0 when it does not run
	// behindRunc: its runc is an orphan that ReapOrphans signalled; runc
	// forwards the signal, and the orphan is reported for both.
	behindRunc bool
	reaped     Reaped
}

// terminateContainers finds the containers that ReapOrphans must stop:
// baton's containers in Config.ContainerStateRoot and in the state roots
// the records name, except those this Supervisor runs or adopted. A
// running one gets SIGTERM through the runtime, unless its runc is one of
// orphans (signalled already: runc forwards it). The containers of records
// whose runc is gone are deleted too, if the runtime still knows them.
func (s *Supervisor) terminateContainers(recs []stateRecord, orphans []*orphan, errs *[]error) []*containerOrphan {
	type rootKey struct{ runtime, root string }
	roots := make(map[rootKey]bool)
	if s.cfg.ContainerStateRoot != "" {
		if path, err := lookRuntime(s.cfg.ContainerRuntime); err == nil {
			if root, err := filepath.Abs(s.cfg.ContainerStateRoot); err == nil {
				roots[rootKey{path, root}] = true
			}
		} else if len(recs) > 0 {
			*errs = append(*errs, fmt.Errorf("reap orphan containers: %s (%v)", errNoRuntime, err))
		}
	}
	recorded := make(map[string]stateRecord)
	for _, rec := range recs {
		if c := rec.Container; c != nil {
			recorded[c.ID] = rec
			roots[rootKey{c.Runtime, c.Root}] = true
		}
	}
	signalled := make(map[string]bool)
	for _, o := range orphans {
		if c := o.rec.Container; c != nil {
			signalled[c.ID] = true
		}
	}

	var out []*containerOrphan
	seen := make(map[string]bool)
	for key := range roots {
		listed, err := listContainers(key.runtime, key.root)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("reap orphan containers in %s: %w", key.root, err))
			continue
		}
		for _, l := range listed {
			if s.containers.has(l.ID) || seen[l.ID] {
				continue
			}
			seen[l.ID] = true
			c := &containerOrphan{
				ref:        ContainerRef{ID: l.ID, Runtime: key.runtime, Root: key.root, Bundle: l.Bundle},
				behindRunc: signalled[l.ID],
				reaped:     reapedFromLabels(l),
			}
			if rec, ok := recorded[l.ID]; ok {
				c.ref.Bundle = rec.Container.Bundle
				c.reaped.Name, c.reaped.Index, c.reaped.Label, c.reaped.StartedAt = rec.Name, rec.Index, rec.Label, rec.StartedAt
			}
			if l.Status == "running" || l.Status == "paused" {
				c.pid = l.PID
				c.reaped.PID = l.PID
			}
			out = append(out, c)
			if c.pid == 0 || c.behindRunc {
				continue
			}
			s.log.Warn("stopping orphan container left by an earlier baton", "container", l.ID, "pid", l.PID, "grace", s.cfg.StopGrace)
			if err := c.ref.kill("TERM"); err != nil && !errors.Is(err, errNoContainer) {
				*errs = append(*errs, fmt.Errorf("reap orphan container %s: %w", l.ID, err))
			}
		}
	}
	// Recorded containers the runtime no longer lists: their bundles.
	for id, rec := range recorded {
		if !seen[id] && !s.containers.has(id) {
			out = append(out, &containerOrphan{ref: *rec.Container, behindRunc: true})
		}
	}
	return out
}

// sweepBundles removes the bundles in Config.ContainerBundleDir that no
// container of this Supervisor uses: left by a baton that died after
// writing one but before its container was recorded, or whose deletion
// failed. They hold the apps' environments, secrets included.
func (s *Supervisor) sweepBundles(errs *[]error) {
	if s.cfg.ContainerBundleDir == "" {
		return
	}
	entries, err := os.ReadDir(s.cfg.ContainerBundleDir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			*errs = append(*errs, fmt.Errorf("sweep container bundles: %w", err))
		}
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !validContainerID(e.Name()) || s.containers.has(e.Name()) {
			continue
		}
		s.log.Warn("removing the bundle of a container that is gone", "bundle", e.Name())
		if err := os.RemoveAll(filepath.Join(s.cfg.ContainerBundleDir, e.Name())); err != nil {
			*errs = append(*errs, fmt.Errorf("sweep container bundles: %w", err))
		}
	}
}

// reapedFromLabels names a listed container by the annotations baton gave
// it.
func reapedFromLabels(l listedContainer) Reaped {
	r := Reaped{Name: l.Annotations[annotationName], Label: l.Annotations[annotationLabel],
		Dir: l.Bundle, StartedAt: l.Created, Container: l.ID}
	r.Index, _ = strconv.Atoi(l.Annotations[annotationIndex])
	if r.Name == "" {
		r.Name = l.ID
	}
	return r
}

// waitGone polls until none of the process groups has a live member and
// no container's init runs, or ctx ends.
func waitGone(ctx context.Context, pgids []int, ctrs []*containerOrphan) {
	tick := time.NewTicker(orphanPollInterval)
	defer tick.Stop()
	for {
		alive := false
		for _, pgid := range pgids {
			alive = alive || groupAlive(pgid)
		}
		for _, c := range ctrs {
			alive = alive || (c.pid != 0 && processAlive(c.pid))
		}
		if !alive {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
