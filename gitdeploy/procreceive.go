package gitdeploy

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/batonhq/baton"
)

// procReceive records a deploy-branch update whose deployment went live.
// git runs it after pre-receive passed and the pushed objects left
// quarantine, and leaves the branch to it (receive.procReceiveRefs). The
// answer is the proc-receive protocol: version, then one status per ref.
func (h *Handler) procReceive(ctx context.Context, s *session, out *reply) int {
	out.pkt("version=1")
	out.flush()
	dr := s.getDeployed()
	if dr == nil {
		// pre-receive refuses every push to a deploy branch that did not go live.
		out.say("baton: no deployment of this push went live; the deploy branch stays as it is")
		return 1
	}
	ref := dr.update.Ref
	if err := h.recordDeployed(ctx, s, dr, out); err != nil {
		h.log.Error("update deploy branch", "app", s.app, "ref", ref, "err", err)
		out.say("baton: could not update %s: %v", ref, err)
		out.pkt("ng " + ref + " baton could not update the branch after the deployment went live")
	} else {
		out.pkt("ok " + ref)
	}
	out.flush()
	return 0
}

// recordDeployed moves the deploy branch to the pushed commit if its
// deployment is still the newest to have gone live in the slot. A newer
// one can exist when two pushes ran close together: then the branch
// already names (or will name) that newer commit and stays. A push whose
// commit was live already moves the branch if that revision still serves.
func (h *Handler) recordDeployed(ctx context.Context, s *session, dr *deployedRef, out *reply) error {
	h.refMu.Lock()
	defer h.refMu.Unlock()
	ref, sha := dr.update.Ref, dr.update.New
	cur, err := runGit(ctx, s.repo, nil, "for-each-ref", "--format=%(objectname)", ref)
	if err != nil {
		return err
	}
	current := strings.TrimSpace(string(cur))
	if dr.unchanged != "" {
		r, err := h.cfg.Store.Revision(ctx, dr.unchanged)
		if err != nil {
			return err
		}
		if !r.Active || r.Slot != dr.target.Slot {
			out.say("baton: %s stays at %s: %s, which this push found live, no longer serves %s", ref, orDash(short(current)), r.Name, dr.target.Slot)
			return nil
		}
	} else {
		newest, err := h.newestDeploy(ctx, s.app, dr.target.Slot)
		if err != nil {
			return err
		}
		if newest.ID != dr.deployment {
			out.say("baton: %s stays at %s: deployment %s of commit %s went live after this push's", ref, orDash(short(current)), newest.ID, orDash(short(newest.Commit)))
			return nil
		}
	}
	if current == sha {
		return nil
	}
	if _, err := runGit(ctx, s.repo, nil, "update-ref", "-m", "baton: deployment "+dr.deployment, ref, sha, current); err != nil {
		return err
	}
	if current != "" && current != dr.update.Old {
		// Another push moved the branch while this one waited in the queue.
		if ok, err := isAncestor(ctx, s.repo, current, sha); err == nil && !ok {
			out.say("baton: note: %s moved from %s to %s, which does not contain %s (deployed by a push that ran while this one waited)", ref, short(current), short(sha), short(current))
		}
	}
	return nil
}

// newestDeploy returns the newest successful deployment of an artifact
// into the slot (settings changes and swaps do not count: they do not
// change which commit the slot runs).
func (h *Handler) newestDeploy(ctx context.Context, app, slot string) (baton.Deployment, error) {
	ds, err := h.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, States: []baton.State{baton.StateSucceeded}, Limit: 100})
	if err != nil {
		return baton.Deployment{}, err
	}
	for _, d := range ds {
		if d.Slot == slot && (d.Kind == "" || d.Kind == baton.KindDeploy) {
			return d, nil
		}
	}
	return baton.Deployment{}, fmt.Errorf("no successful deployment of %s (%s) found", app, slot)
}

// isAncestor reports whether commit a is an ancestor of b.
func isAncestor(ctx context.Context, repo, a, b string) (bool, error) {
	_, err := runGit(ctx, repo, nil, "merge-base", "--is-ancestor", a, b)
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return false, nil
	}
	return err == nil, err
}
