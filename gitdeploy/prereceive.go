package gitdeploy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/batonhq/baton"
)

// refUpdate is one line of a push: ref moves from Old to New.
type refUpdate struct {
	Old, New, Ref string
}

// deletes reports whether the update removes the ref.
func (u refUpdate) deletes() bool { return strings.Trim(u.New, "0") == "" }

// parseUpdates reads pre-receive's input: "OLD NEW REF" per line.
func parseUpdates(s string) ([]refUpdate, error) {
	var out []refUpdate
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("ref update %q is not \"OLD NEW REF\"", line)
		}
		out = append(out, refUpdate{Old: f[0], New: f[1], Ref: f[2]})
	}
	return out, nil
}

// pushOptions are the -o options baton understands.
type pushOptions struct {
	// Policy is the on-conflict option, "" when not given.
	Policy baton.Policy
	// PolicyFromApp: no on-conflict was given, and Policy is the app's
	// option git_on_conflict (Config.Policy).
	PolicyFromApp bool
	// Force deploys the commit even if it is live already.
	Force bool
	// OrderKey orders the deploy for policy newer-only; 0 when not given.
	OrderKey int64
	// Ignored are options baton does not know, to tell the pusher.
	Ignored []string
}

// parseOptions reads git push -o options: on-conflict=POLICY, order-key=N
// and force (or force=true|false).
func parseOptions(opts []string) (pushOptions, error) {
	var po pushOptions
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		switch strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "_", "-") {
		case "on-conflict":
			p, err := baton.ParsePolicy(strings.TrimSpace(v))
			if err != nil || v == "" {
				return po, baton.Errorf(baton.EINVALID, "push option %q: on-conflict takes %s", o, baton.PolicyChoices())
			}
			po.Policy = p
		case "order-key":
			n, err := baton.ParseOrderKey(strings.TrimSpace(v))
			if err != nil || n == 0 {
				return po, baton.Errorf(baton.EINVALID, "push option %q: order-key takes a positive whole number, such as the CI run number", o)
			}
			po.OrderKey = n
		case "force":
			force, err := strconv.ParseBool(strings.TrimSpace(v))
			if v == "" {
				force, err = true, nil
			}
			if err != nil {
				return po, baton.Errorf(baton.EINVALID, "push option %q: force takes true or false, or nothing", o)
			}
			po.Force = force
		default:
			po.Ignored = append(po.Ignored, o)
		}
	}
	return po, nil
}

// preReceive decides a push: updates of other refs pass; an update of a
// deploy branch is deployed, and the hook succeeds only if the deployment
// does. Its answer is the hook's exit status.
func (h *Handler) preReceive(ctx context.Context, s *session, form url.Values, out *reply) int {
	updates, err := parseUpdates(form.Get("refs"))
	if err != nil {
		out.say("baton: %v", err)
		return 1
	}
	opts, err := parseOptions(form["option"])
	if err != nil {
		out.say("baton: %s", baton.ErrorMessage(err))
		return 1
	}
	for _, o := range opts.Ignored {
		out.say("baton: ignoring push option %q (baton knows on-conflict=%s, order-key=N and force)", o, strings.ReplaceAll(baton.PolicyChoices(), " ", ""))
	}
	var deploys []refUpdate
	var target Target
	for _, u := range updates {
		t, ok := targetOf(s.targets, u.Ref)
		switch {
		case !ok:
			out.say("baton: %s is not a deploy branch (%s); stored without deploying", u.Ref, describeTargets(s.targets))
		case u.deletes():
			out.say("baton: refusing to delete %s: it names the commit that serves the %s slot of %s", u.Ref, t.Slot, s.app)
			return 1
		default:
			deploys, target = append(deploys, u), t
		}
	}
	if len(deploys) == 0 {
		return 0
	}
	if len(deploys) > 1 {
		out.say("baton: this push updates %d deploy branches; push one deploy branch at a time so each deployment can refuse its own push", len(deploys))
		return 1
	}
	if opts.Policy == "" {
		opts.PolicyFromApp = true
		if opts.Policy, err = h.cfg.Policy(ctx, s.app); err != nil {
			out.say("baton: %s", baton.ErrorMessage(err))
			return 1
		}
	}
	return h.deploy(ctx, s, deploys[0], target, opts, form.Get("quarantine"), out)
}

// targetOf returns the target whose branch is ref.
func targetOf(targets []Target, ref string) (Target, bool) {
	for _, t := range targets {
		if t.ref() == ref {
			return t, true
		}
	}
	return Target{}, false
}

func describeTargets(targets []Target) string {
	var parts []string
	for _, t := range targets {
		parts = append(parts, fmt.Sprintf("%s deploys to %s", t.Branch, t.Slot))
	}
	return strings.Join(parts, ", ")
}

// deploy exports the pushed commit, submits it and follows the deployment
// to its end. The push is refused (1) unless the deployment succeeded.
func (h *Handler) deploy(ctx context.Context, s *session, u refUpdate, t Target, opts pushOptions, quarantine string, out *reply) int {
	policy := opts.Policy
	qenv, err := quarantineEnv(s.repo, quarantine)
	if err != nil {
		h.log.Error("git pre-receive", "app", s.app, "err", err)
		out.say("baton: %v", err)
		return 1
	}
	c, err := readCommit(ctx, s.repo, qenv, u.New)
	if err != nil {
		out.say("baton: %v", err)
		return 1
	}
	out.say("baton: deploying %s %q by %s to %s (%s), on conflict %s", short(c.Sha), c.Subject, c.Author, s.app, t.Slot, policy)
	res, err := h.submit(ctx, s, t, opts, c, qenv)
	if err != nil {
		h.sayRefused(out, s.app, u, opts, err)
		return 1
	}
	d := res.Deployment
	if res.Unchanged {
		// The push succeeds: what it asks for serves. The branch moves
		// to it, as after a deployment.
		out.say("baton: %s; nothing to do (a push with -o force deploys even what is live)", baton.UnchangedSentence(s.app, t.Slot, d.Revision))
		s.setDeployed(&deployedRef{update: u, target: t, deployment: d.ID, unchanged: d.Revision})
		out.say("baton: %s is live: %s", d.Revision, h.slotURL(s.app, t.Slot))
		return 0
	}
	out.say("baton: deployment %s", d.ID)
	if d.State == baton.StateQueued {
		h.sayQueuedBehind(ctx, out, d)
	}
	d, err = h.follow(ctx, d, out)
	if err != nil {
		out.say("baton: stopped following %s: %v", d.ID, err)
		out.say("baton: the deployment goes on without this push (see `baton logs -f %s`); %s was not updated", d.ID, u.Ref)
		return 1
	}
	if d.State != baton.StateSucceeded {
		reason := d.Error
		if reason == "" {
			reason = "no reason recorded"
		}
		out.say("baton: deployment %s %s: %s", d.ID, d.State, reason)
		out.say("baton: %s was not updated; %s", u.Ref, h.stillServes(ctx, s.app, t.Slot))
		return 1
	}
	s.setDeployed(&deployedRef{update: u, target: t, deployment: d.ID})
	out.say("baton: %s is live: %s", d.Revision, h.slotURL(s.app, t.Slot))
	return 0
}

// sayRefused explains a deployment the coordinator would not accept; for a
// busy app it names who holds it and when to try again.
func (h *Handler) sayRefused(out *reply, app string, u refUpdate, opts pushOptions, err error) {
	var e *baton.Error
	if !errors.As(err, &e) {
		h.log.Error("git push deploy", "app", app, "err", err)
	}
	out.say("baton: push refused: %s", baton.ErrorMessage(err))
	if e == nil || e.Conflict == nil {
		return
	}
	cd := e.Conflict
	if hd := cd.Holder; hd != nil {
		out.say("baton:   holder:  deployment %s (%s%s)", hd.ID, hd.State, phaseSuffix(hd.Phase))
		out.say("baton:   author:  %s", orDash(hd.Author))
		out.say("baton:   commit:  %s %s", orDash(short(hd.Commit)), quoteOrEmpty(hd.Message))
		since, what := hd.CreatedAt, "queued since"
		if hd.StartedAt != nil {
			since, what = *hd.StartedAt, "running since"
		}
		out.say("baton:   %s %s (%s)", what, since.UTC().Format("2006-01-02 15:04:05 UTC"), h.now().Sub(since).Round(1e9))
	}
	out.say("baton:   queued behind it: %d", cd.QueueLength)
	retry := "later"
	if e.RetryAfterSeconds > 0 {
		retry = fmt.Sprintf("in about %ds", e.RetryAfterSeconds)
	}
	hint := ""
	if opts.Policy == baton.PolicyFail {
		hint = ", or push with -o on-conflict=queue to wait in line"
		if opts.PolicyFromApp {
			hint += fmt.Sprintf(" (this app's pushes refuse while it is busy: app option git_on_conflict=fail, changed with `baton apps set %s --git-on-conflict queue`)", app)
		}
	}
	out.say("baton: %s was not updated; retry %s%s", u.Ref, retry, hint)
}

// sayQueuedBehind tells the pusher what their deployment waits for.
func (h *Handler) sayQueuedBehind(ctx context.Context, out *reply, d baton.Deployment) {
	active, err := h.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: d.App, States: []baton.State{baton.StateRunning, baton.StateQueued}, Oldest: true})
	if err != nil {
		return
	}
	var ahead []baton.Deployment
	for _, a := range active {
		if a.ID != d.ID && a.Seq < d.Seq {
			ahead = append(ahead, a)
		}
	}
	if len(ahead) == 0 {
		return
	}
	out.say("baton: waiting behind %s", ahead[0].Describe(h.now()))
	if n := len(ahead) - 1; n > 0 {
		out.say("baton: and %d more queued before this one", n)
	}
}

func phaseSuffix(p baton.Phase) string {
	if p == baton.PhaseNone {
		return ""
	}
	return ", phase " + string(p)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func quoteOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("%q", s)
}

// short abbreviates a commit id for people.
func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
