package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

func newLogsCmd(e *env) *cobra.Command {
	var followFlag, deployments bool
	var timeout time.Duration
	var o api.AppLogOptions
	cmd := &cobra.Command{
		Use:   "logs ID|APP",
		Short: "An app's instance output (stdout and stderr), or a deployment's log",
		Long: `baton logs APP prints the output (stdout and stderr) of the app's live
instances, each line with its time, revision and instance; --slot, --revision
and --since select. With -f it follows the app's output live, across
deployments and swaps (a new revision's output appears as it starts), until
Ctrl-C.

--since takes a duration back from now (10m, 2h) or an RFC 3339 time
(2026-12-06T16:00:00Z); --since 0s means now: no earlier lines, so with -f
only the output that comes from now on.

baton logs APP -f --deployments follows the app's deployments instead: the
running one's log, then every next one, until Ctrl-C.

baton logs ID prints a deployment's log (phases, build and release output);
with -f it follows it live until the deployment ends and exits with its
result.

Instance output is kept per revision, rotated at --instance-log-max of baton
serve (4 MiB; the revision keeps at most twice that), and removed with the
revision by collection. Secret setting values are masked.

` + exitCodesHelp,
		Example: `  baton logs hello --since 10m
  baton logs hello -f --since 0s
  baton logs hello -f --slot staging
  baton logs hello --revision hello--000004
  baton logs hello -f --deployments
  baton logs d-3f2a9c1b7e44 -f`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !strings.HasPrefix(args[0], "d-") {
				if o.Since != "" {
					// Checked here, read by the server against its clock.
					if _, err := baton.ParseSince(o.Since, time.Now()); err != nil {
						return err
					}
				}
				switch {
				case deployments && followFlag:
					return followApp(cmd.Context(), e, args[0])
				case deployments:
					return fmt.Errorf("--deployments goes with -f; `baton deployments list %s` lists them", args[0])
				case followFlag:
					return followAppOutput(cmd.Context(), e, args[0], o)
				}
				return appLogs(cmd.Context(), e, args[0], o)
			}
			if followFlag {
				return follow(cmd.Context(), e, args[0], timeout)
			}
			text, err := e.client().Log(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprint(e.stdout, text)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&followFlag, "follow", "f", false, "follow: an app's output until Ctrl-C, a deployment's log until it ends")
	cmd.Flags().BoolVar(&deployments, "deployments", false, "with -f and an APP: follow the app's deployment logs instead of its output")
	cmd.Flags().StringVar(&o.Slot, "slot", "", "only the revisions active in this slot")
	cmd.Flags().StringVar(&o.Revision, "revision", "", "only this revision (active or not)")
	cmd.Flags().StringVar(&o.Since, "since", "", "only lines from this on: a duration back from now (10m, 2h; 0s: only new lines) or an RFC 3339 time")
	cmd.Flags().IntVar(&o.Limit, "tail", 0, "only the newest N lines (default 1000)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "with -f and a deployment ID, stop waiting after this long (exit 6)")
	addJSON(cmd, e)
	return cmd
}

func newLocksCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "locks", Short: "Inspect and (rarely) break app locks"}
	list := &cobra.Command{
		Use:   "list",
		Short: "Every lock: key, holder, fencing token, expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ls, err := e.client().Locks(cmd.Context())
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(ls)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tHOLDER\tTOKEN\tACQUIRED\tEXPIRES")
			for _, l := range ls {
				exp := l.ExpiresAt.Local().Format("15:04:05")
				if l.Expired(time.Now()) {
					exp += " (expired)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", l.Key, l.Holder, l.Token, l.AcquiredAt.Local().Format("15:04:05"), exp)
			}
			return tw.Flush()
		},
	}
	addJSON(list, e)
	var reason string
	brk := &cobra.Command{
		Use:   "break APP",
		Short: "Break an app's lock by hand (audited; never needed for recovery)",
		Long: `Break an app's lock. The deployment holding it is stopped and fails with
reason "lock broken". baton recovers stuck and crashed deployments by itself
(leases expire, restarts fail interrupted work); this exists for the operator
who must act now. Recorded in the audit log.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := e.client().BreakLock(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "broke the lock of %s held by %s (token %d)\n", args[0], l.Holder, l.Token)
			return nil
		},
	}
	brk.Flags().StringVar(&reason, "reason", "", "why (recorded)")
	cmd.AddCommand(list, brk)
	return cmd
}

func newResourcesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "resources", Short: "Shared resources declared by release steps ([release] resources)"}
	list := &cobra.Command{
		Use:   "list",
		Short: "Each resource: who holds its lock and who waits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rs, err := e.client().Resources(cmd.Context())
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(rs)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RESOURCE\tHOLDER\tAPP\tPHASE\tWAITERS")
			for _, r := range rs {
				holder, app, phase := "-", "-", "-"
				if r.Holder != nil {
					holder, app, phase = r.Holder.ID, r.Holder.App, string(r.Holder.Phase)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, holder, app, phase, dash(strings.Join(r.Waiters, ",")))
			}
			return tw.Flush()
		},
	}
	addJSON(list, e)
	cmd.AddCommand(list)
	return cmd
}

// appLogs prints the selected instance output of an app.
func appLogs(ctx context.Context, e *env, app string, o api.AppLogOptions) error {
	lines, err := e.client().AppLogs(ctx, app, o)
	if err != nil {
		return err
	}
	if e.asJSON {
		return e.printJSON(lines)
	}
	for _, l := range lines {
		printAppLogLine(e, l)
	}
	if len(lines) == 0 && o.Revision == "" && o.Since == "" {
		fmt.Fprintf(e.stderr, "no output from %s's live instances; is a revision running? (`baton status %s`)\n", app, app)
	}
	return nil
}

// followAppOutput prints the app's output as it comes, until Ctrl-C,
// which ends it without an error.
func followAppOutput(ctx context.Context, e *env, app string, o api.AppLogOptions) error {
	fmt.Fprintf(e.stderr, "following the output of %s (Ctrl-C to stop)\n", app)
	err := e.client().FollowAppLogs(ctx, app, o, func(l baton.AppLogLine) {
		if e.asJSON {
			b, _ := json.Marshal(l)
			fmt.Fprintf(e.stdout, "%s\n", b)
			return
		}
		printAppLogLine(e, l)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// printAppLogLine prints "TIME REVISION[INSTANCE] TEXT".
func printAppLogLine(e *env, l baton.AppLogLine) {
	at := "-"
	if !l.Time.IsZero() {
		at = l.Time.Local().Format("2006-01-02T15:04:05.000Z07:00")
	}
	fmt.Fprintf(e.stdout, "%s %s[%d] %s\n", at, l.Revision, l.Instance, l.Text)
}

// followApp follows the app's running operation, then each next one,
// until Ctrl-C, which ends it without an error.
func followApp(ctx context.Context, e *env, app string) error {
	err := followAppLoop(ctx, e, app)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func followAppLoop(ctx context.Context, e *env, app string) error {
	st, err := e.client().Status(ctx, app)
	if err != nil {
		return err
	}
	var seq int64
	next := st.Running
	if next == nil && len(st.Queue) > 0 {
		next = &st.Queue[0]
	}
	if next == nil && len(st.Recent) > 0 {
		seq = st.Recent[0].Seq // only what comes after the newest
	}
	for {
		if next == nil {
			fmt.Fprintf(e.stderr, "waiting for the next deployment of %s (Ctrl-C to stop)\n", app)
			for next == nil {
				d, ok, err := e.client().NextDeployment(ctx, app, seq)
				if err != nil {
					return err
				}
				if ok {
					next = &d
				}
			}
		}
		fmt.Fprintf(e.stderr, "==> %s %s\n", next.Kind, next.ID)
		if _, err := e.client().Follow(ctx, next.ID, func(ev api.Event) {
			if ev.Name == "log" {
				fmt.Fprintln(e.stdout, ev.Data)
			}
		}); err != nil {
			return err
		}
		seq = next.Seq
		next = nil
	}
}
