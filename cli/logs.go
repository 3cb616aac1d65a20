package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/api"
)

func newLogsCmd(e *env) *cobra.Command {
	var followFlag bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "logs ID|APP",
		Short: "A deployment's log (phases, build and app output), or an app's instance output",
		Long: `baton logs ID prints a deployment's log; with -f it follows it live until the
deployment ends and exits with its result.

baton logs APP prints the recent output of the app's live instances; with -f
it follows the app's current deployment, then every next one, until Ctrl-C.

` + exitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !strings.HasPrefix(args[0], "d-") {
				if followFlag {
					return followApp(cmd.Context(), e, args[0])
				}
				return appLogs(cmd.Context(), e, args[0])
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
	cmd.Flags().BoolVarP(&followFlag, "follow", "f", false, "follow until the deployment ends")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "with -f, stop waiting after this long (exit 6)")
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

// appLogs prints the recent instance output of an app's live revisions.
func appLogs(ctx context.Context, e *env, app string) error {
	st, err := e.client().Status(ctx, app)
	if err != nil {
		return err
	}
	printed := false
	for _, s := range st.Slots {
		for _, r := range s.Revisions {
			text, err := e.client().RevisionLog(ctx, app, r.Name)
			if err != nil {
				continue
			}
			fmt.Fprintf(e.stdout, "==> %s (%s, %d%%)\n%s", r.Name, s.Name, r.Weight, text)
			printed = true
		}
	}
	if !printed {
		fmt.Fprintf(e.stdout, "%s has no running revision; deploy one with: baton deploy %s PATH\n", app, app)
	}
	return nil
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
