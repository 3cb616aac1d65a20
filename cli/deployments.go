package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
)

func newDeploymentsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "deployments", Aliases: []string{"deployment", "deps"}, Short: "List, show and cancel deployments"}
	var limit int
	list := &cobra.Command{
		Use:   "list APP",
		Short: "An app's operations, newest first: deployments, swaps, settings, traffic, stabilize, revision operations, each with its kind and a summary",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ds, err := e.client().Deployments(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(ds)
			}
			printDeployments(e.stdout, ds, time.Now())
			return nil
		},
	}
	list.Flags().IntVar(&limit, "limit", 20, "how many to show")
	addJSON(list, e)
	show := &cobra.Command{
		Use:   "show ID",
		Short: "One deployment in detail",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := e.client().Deployment(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(d)
			}
			printDeployment(e, d)
			return nil
		},
	}
	addJSON(show, e)
	var reason string
	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a queued or running deployment (the live revision keeps serving)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := e.client().Cancel(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s %s is %s%s\n", noun(d.Kind), d.ID, d.State, because(d))
			return nil
		},
	}
	cancel.Flags().StringVar(&reason, "reason", "", "why (recorded in the deployment and the audit log)")
	cmd.AddCommand(list, show, cancel)
	return cmd
}

// printDeployments is the history table: every operation with its kind
// and a one-line summary of what it did (for a deployment, its message).
func printDeployments(w io.Writer, ds []baton.Deployment, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tID\tSTATE\tKIND\tPHASE\tREVISION\tCOMMIT\tDURATION\tSUMMARY")
	for _, d := range ds {
		phase := d.Phase // where it is, or where it ended when it did not succeed
		if d.State == baton.StateSucceeded {
			phase = ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.CreatedAt.Local().Format("2006-01-02 15:04:05"), d.ID, d.State, dash(string(d.Kind)),
			dash(string(phase)), dash(d.Revision), shortCommit(d.Commit), durationText(d, now), dash(short(summary(d), 70)))
	}
	tw.Flush()
}

func printDeployment(e *env, d baton.Deployment) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, dash(v)) }
	row("id", d.ID)
	row("app", d.App+" / "+d.Slot)
	row("kind", string(d.Kind))
	row("summary", summary(d))
	row("state", string(d.State))
	row("phase", string(d.Phase))
	row("revision", d.Revision)
	row("policy", string(d.Policy))
	row("commit", d.Commit)
	row("author", d.Author)
	row("message", d.Message)
	row("created", d.CreatedAt.Local().Format(time.RFC3339))
	if d.StartedAt != nil {
		row("started", d.StartedAt.Local().Format(time.RFC3339))
	}
	if d.FinishedAt != nil {
		row("finished", d.FinishedAt.Local().Format(time.RFC3339))
	}
	row("duration", durationText(d, time.Now()))
	row("error", d.Error)
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func oneLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

func durationText(d baton.Deployment, now time.Time) string {
	if d.StartedAt == nil {
		return "-"
	}
	return d.Duration(now).Round(100 * time.Millisecond).String()
}
