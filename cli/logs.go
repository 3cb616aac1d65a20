package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newLogsCmd(e *env) *cobra.Command {
	var followFlag bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "A deployment's log: phases with timestamps, build and app output",
		Long:  "Print a deployment's log. With -f, follow it live until the deployment ends and exit with its result.\n\n" + exitCodesHelp,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
