package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

func newStatusCmd(e *env) *cobra.Command {
	var check, watch bool
	cmd := &cobra.Command{
		Use:   "status [APP]",
		Short: "What runs, what is queued, what serves, and any conflicts (with the command that fixes each)",
		Long: `Show an app's slots, active revisions with traffic and instance health and
where each comes from (commit, author, message, deploy time), the running
operation, the queue, the last 10 operations and the app's conflicts.
Without APP, one line per app.

-w (--watch) follows the event stream: the status, then a line per change
(deployment queued, phase, finished; routing; health; conflicts; freeze)
as it happens, until Ctrl-C; with --json, one JSON event per line.

--check exits 2 when there is any conflict (0 when none), for CI:
  baton status hello --check || exit 1

` + exitCodesHelp,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if watch {
				app := ""
				if len(args) == 1 {
					app = args[0]
				}
				return watchStatus(ctx, e, app)
			}
			var all []baton.AppStatus
			if len(args) == 1 {
				st, err := e.client().Status(ctx, args[0])
				if err != nil {
					return err
				}
				all = []baton.AppStatus{st}
				if e.asJSON {
					if err := e.printJSON(st); err != nil {
						return err
					}
				} else {
					printStatus(e.stdout, st, liveDeployments(ctx, e.client(), st), time.Now())
				}
			} else {
				var err error
				if all, err = e.client().AllStatus(ctx); err != nil {
					return err
				}
				if e.asJSON {
					if err := e.printJSON(all); err != nil {
						return err
					}
				} else {
					printStatusLines(e.stdout, all)
				}
			}
			if check {
				n := 0
				for _, st := range all {
					n += len(st.Conflicts)
				}
				if n > 0 {
					return &exitError{ExitConflicts, fmt.Errorf("%d conflict(s) found", n)}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "exit 2 if there is any conflict")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow changes as they happen (the event stream) until Ctrl-C")
	cmd.MarkFlagsMutuallyExclusive("watch", "check")
	addJSON(cmd, e)
	return cmd
}

// printStatusLines prints one line per app.
func printStatusLines(w io.Writer, all []baton.AppStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tLIVE\tRUNNING\tQUEUED\tCONFLICTS")
	for _, st := range all {
		var live []string
		for _, s := range st.Slots {
			for _, r := range s.Revisions {
				if r.Weight > 0 {
					live = append(live, fmt.Sprintf("%s:%s %d%%", s.Name, r.Name, r.Weight))
				}
			}
		}
		running := "-"
		if st.Running != nil {
			running = fmt.Sprintf("%s %s (%s)", st.Running.Kind, st.Running.ID, st.Running.Phase)
		}
		conflicts := "-"
		if len(st.Conflicts) > 0 {
			var codes []string
			for _, c := range st.Conflicts {
				codes = append(codes, c.Code)
			}
			conflicts = strings.Join(codes, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", st.App, dash(strings.Join(live, " ")), running, len(st.Queue), conflicts)
	}
	tw.Flush()
}

// liveDeployments returns, for each active revision, the operation that
// created it (deployment or settings change): from the recent history, or
// asked for when it is older.
func liveDeployments(ctx context.Context, c *api.Client, st baton.AppStatus) map[string]baton.Deployment {
	out := map[string]baton.Deployment{}
	for _, d := range st.Recent {
		if _, seen := out[d.Revision]; d.Revision != "" && !seen && (d.Kind == baton.KindDeploy || d.Kind == baton.KindConfig || d.Kind == "") {
			out[d.Revision] = d
		}
	}
	for _, s := range st.Slots {
		for _, r := range s.Revisions {
			if _, ok := out[r.Name]; ok {
				continue
			}
			rev, err := c.Revision(ctx, st.App, r.Name)
			if err != nil || rev.Deployment == "" {
				continue
			}
			if d, err := c.Deployment(ctx, rev.Deployment); err == nil {
				out[r.Name] = d
			}
		}
	}
	return out
}

// healthyOf counts the instances that serve: healthy and not crash-looping
// (an instance between two crashes may just have passed its check).
func healthyOf(r baton.RevisionStatus) int {
	if len(r.Instances) == 0 {
		return r.Healthy
	}
	n := 0
	for _, in := range r.Instances {
		if in.Healthy && !in.CrashLooping {
			n++
		}
	}
	return n
}

// printStatus prints one app's status as aligned sections; live holds the
// operation that created each active revision (liveDeployments).
func printStatus(w io.Writer, st baton.AppStatus, live map[string]baton.Deployment, now time.Time) {
	fmt.Fprintf(w, "%s  (revision mode %s)\n", st.App, st.RevisionMode)
	if st.Frozen != nil {
		fmt.Fprintf(w, "FROZEN since %s by %s: %s\n", st.Frozen.At.Local().Format("2006-01-02 15:04"), st.Frozen.By, st.Frozen.Reason)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSLOT\tHOST\tREVISION\tTRAFFIC\tHEALTHY\tINSTANCES")
	for _, s := range st.Slots {
		if len(s.Revisions) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\n", s.Name, s.Host)
		}
		for _, r := range s.Revisions {
			var inst []string
			for _, in := range r.Instances {
				state := "ok"
				if !in.Healthy {
					state = "unhealthy"
				}
				if in.CrashLooping {
					state = "crash-looping"
				}
				if in.Restarts > 0 {
					state += fmt.Sprintf(" %d restarts", in.Restarts)
				}
				inst = append(inst, in.Addr+" "+state)
			}
			if r.State != "" {
				inst = append([]string{r.State}, inst...)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d%%\t%d/%d\t%s\n", s.Name, s.Host, r.Name, r.Weight, healthyOf(r), len(r.Instances), dash(strings.Join(inst, "; ")))
		}
	}
	tw.Flush()
	printPlacement(w, st)
	printDomains(w, st, now)
	printLive(w, st, live)
	if d := st.Running; d != nil {
		fmt.Fprintf(w, "\nRUNNING  %s %s  phase %s  for %ds  by %s  commit %s\n", d.Kind, d.ID, d.Phase, st.RunningForSeconds, dash(d.Author), dash(short(d.Commit, 10)))
	} else {
		fmt.Fprintln(w, "\nRUNNING  nothing")
	}
	if r := st.Routing; r != nil {
		var acks []string
		for _, a := range r.Acks {
			acks = append(acks, fmt.Sprintf("%s %d", a.Controller, a.Generation))
		}
		fmt.Fprintf(w, "\nROUTING  generation %d (owner %s), applied by host: %s\n", r.Generation, dash(st.Controller), dash(strings.Join(acks, ", ")))
	}
	if u := st.Disk; u != nil {
		fmt.Fprintf(w, "\nDISK     %s: revisions %s, logs %s, artifacts %s; %d revisions kept for rollback\n",
			baton.FormatSize(u.Total), baton.FormatSize(u.Revisions), baton.FormatSize(u.Logs), baton.FormatSize(u.Artifacts), u.Kept)
	}
	if len(st.Queue) > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nQUEUED\tKIND\tAUTHOR\tPOLICY\tSINCE")
		for _, d := range st.Queue {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Kind, dash(d.Author), d.Policy, d.CreatedAt.Local().Format("15:04:05"))
		}
		tw.Flush()
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTIME\tSTATUS\tKIND\tREVISION\tCOMMIT\tDURATION\tMESSAGE")
	for _, d := range st.Recent {
		msg := summary(d)
		if d.Error != "" && d.State != baton.StateSucceeded {
			msg = dash(msg) + " — " + d.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.CreatedAt.Local().Format("01-02 15:04:05"), d.State, d.Kind, dash(d.Revision),
			shortCommit(d.Commit), durationText(d, now), short(dash(msg), 70))
	}
	tw.Flush()
	if len(st.Conflicts) == 0 {
		fmt.Fprintln(w, "\nCONFLICTS  none")
		return
	}
	fmt.Fprintln(w, "\nCONFLICTS")
	for _, c := range st.Conflicts {
		fmt.Fprintf(w, "  %s: %s\n    fix: %s\n", c.Code, c.Message, c.Fix)
	}
}

// printPlacement shows each slot's scale (`baton scale`) when set, and
// where each revision's instances run when several hosts share the store:
//
//	SCALE  production: 3 instances, at most 1 per host
//	HOSTS  production hello--000003: 3 instances: 1 on h1 (healthy), 1 on h2 (healthy), 1 on h3 (starting)
func printPlacement(w io.Writer, st baton.AppStatus) {
	var lines []string
	for _, s := range st.Slots {
		if sc := s.Scale; sc != nil {
			lines = append(lines, fmt.Sprintf("SCALE  %s: %s", s.Name, api.ScaleRequest{Instances: sc.Instances, MaxPerHost: sc.MaxPerHost}))
		}
	}
	for _, s := range st.Slots {
		for _, r := range s.Revisions {
			if len(r.Hosts) > 0 {
				lines = append(lines, fmt.Sprintf("HOSTS  %s %s: %s", s.Name, r.Name, describeHosts(r.Hosts)))
			}
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "\n"+strings.Join(lines, "\n"))
	}
}

// describeHosts says where a revision's instances run and how each host's
// share stands: "3 instances: 1 on h1 (healthy), 2 on h2 (failed: port in
// use)".
func describeHosts(ps []baton.Placement) string {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b baton.Placement) int { return strings.Compare(a.Host, b.Host) })
	n := 0
	parts := make([]string, len(ps))
	for i, p := range ps {
		n += p.Instances
		state := string(p.State)
		if p.Message != "" {
			state += ": " + p.Message
		}
		parts[i] = fmt.Sprintf("%d on %s (%s)", p.Instances, p.Host, state)
	}
	total := fmt.Sprintf("%d instances", n)
	if n == 1 {
		total = "1 instance"
	}
	return total + ": " + strings.Join(parts, ", ")
}

// printLive shows, per slot, where each active revision comes from: its
// commit, author, message and when it was deployed.
func printLive(w io.Writer, st baton.AppStatus, live map[string]baton.Deployment) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := false
	for _, s := range st.Slots {
		for _, r := range s.Revisions {
			d, ok := live[r.Name]
			if !ok {
				continue
			}
			if !header {
				fmt.Fprintln(tw, "\nSLOT\tREVISION\tDEPLOYED\tBY\tCOMMIT\tMESSAGE")
				header = true
			}
			at := d.CreatedAt
			if d.FinishedAt != nil {
				at = *d.FinishedAt
			}
			msg := summary(d)
			if d.Kind == baton.KindConfig {
				msg = "settings change: " + dash(msg)
			}
			if r.Image != nil {
				msg = "image " + dash(r.Image.Ref) + " " + r.Image.Digest[:min(len(r.Image.Digest), 19)]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, r.Name, at.Local().Format("2006-01-02 15:04:05"), dash(d.Author),
				shortCommit(d.Commit), dash(short(msg, 70)))
		}
	}
	tw.Flush()
}

func newWaitCmd(e *env) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait APP|DEPLOYMENT-ID",
		Short: "Block until an app has nothing running or queued, or until one deployment ends",
		Long: `Replace "wait 14 minutes between deployments": 'baton wait APP' returns as
soon as the app has no running or queued operation; 'baton wait ID' returns
when that deployment ends and exits with its result.

` + exitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			target := args[0]
			if strings.HasPrefix(target, "d-") {
				d, err := e.client().Follow(ctx, target, func(api.Event) {})
				if err != nil {
					if ctx.Err() == context.DeadlineExceeded {
						return &exitError{ExitTimeout, fmt.Errorf("%s %s did not end within %s", noun(d.Kind), target, timeout)}
					}
					if errors.Is(ctx.Err(), context.Canceled) {
						return interrupted(e, target, d.Kind)
					}
					return err
				}
				if err := resultError(d); err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, succeeded(d))
				return nil
			}
			if err := e.client().WaitIdle(ctx, target); err != nil {
				if ctx.Err() != nil {
					return &exitError{ExitTimeout, fmt.Errorf("%s still has work running or queued after %s; see `baton status %s`", target, timeout, target)}
				}
				return err
			}
			fmt.Fprintf(e.stdout, "%s is idle\n", target)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (exit 6); 0 waits forever")
	return cmd
}

func newFreezeCmds(e *env) []*cobra.Command {
	var reason string
	var cancelRunning bool
	freeze := &cobra.Command{
		Use:   "freeze APP --reason TEXT",
		Short: "Refuse new deployments of an app (423) until unfreeze; --cancel-running stops the current one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := e.client().Freeze(cmd.Context(), args[0], reason, cancelRunning)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s is frozen: %s\n", a.Name, a.Frozen.Reason)
			return nil
		},
	}
	freeze.Flags().StringVar(&reason, "reason", "", "why (quoted to everyone refused)")
	freeze.Flags().BoolVar(&cancelRunning, "cancel-running", false, "also cancel the running and queued operations (emergency stop)")
	unfreeze := &cobra.Command{
		Use:   "unfreeze APP",
		Short: "Let an app deploy again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := e.client().Unfreeze(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s is no longer frozen\n", args[0])
			return nil
		},
	}
	return []*cobra.Command{freeze, unfreeze}
}

// printDomains lists the names the app is served at when it has custom
// domains or certificates to show: each with its slot and certificate.
func printDomains(w io.Writer, st baton.AppStatus, now time.Time) {
	show := false
	for _, d := range st.Domains {
		show = show || d.Custom || d.Certificate != nil
	}
	if !show {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nDOMAIN\tSLOT\tCERTIFICATE\tEXPIRES\tLAST ERROR")
	for _, d := range st.Domains {
		cert, expires, lastErr := "-", "-", "-"
		if c := d.Certificate; c != nil {
			switch {
			case c.Static:
				cert = "static (" + dash(c.Issuer) + ")"
			case c.Issuer != "":
				cert = c.Issuer
			default:
				cert = "pending"
			}
			if c.NotAfter != nil {
				expires = c.NotAfter.Local().Format("2006-01-02 15:04") + " (in " + c.NotAfter.Sub(now).Round(time.Second).String() + ")"
			}
			if c.LastError != "" {
				lastErr = short(c.LastError, 60)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Name, d.Slot, cert, expires, lastErr)
	}
	tw.Flush()
}
