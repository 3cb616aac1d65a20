package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
)

// opDone finishes an operation command: an operation that ran and failed
// is exit 3 (cancelled 4), a refusal exit 5, and one the server still runs
// (it answered 202 after its wait) is followed to its end.
func (e *env) opDone(ctx context.Context, d baton.Deployment, err error) error {
	if err := opOutcome(d, err); err != nil {
		return err
	}
	if !d.State.Final() {
		return follow(ctx, e, d.ID, 0)
	}
	return nil
}

// policyFlag adds --on-conflict to an operation command.
func policyFlag(cmd *cobra.Command) *string {
	return cmd.Flags().String("on-conflict", string(baton.PolicyQueue), "when the app is busy: "+baton.PolicyChoices())
}

func newRevisionsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "revisions", Aliases: []string{"revision", "revs"}, Short: "List, inspect, activate, deactivate and restart revisions"}
	list := &cobra.Command{
		Use:   "list APP",
		Short: "An app's revisions: slot, active, traffic, healthy instances",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			revs, err := e.client().Revisions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(revs)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REVISION\tSLOT\tACTIVE\tTRAFFIC\tHEALTHY\tCREATED\tDEPLOYMENT")
			for _, r := range revs {
				active, traffic, healthy := "no", "-", "-"
				if r.Active {
					active, traffic = "yes", fmt.Sprintf("%d%%", r.Weight)
					healthy = fmt.Sprintf("%d/%d", r.HealthyInstances, r.Instances)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Slot, active, traffic, healthy, r.CreatedAt.Local().Format("2006-01-02 15:04:05"), r.Deployment)
			}
			return tw.Flush()
		},
	}
	addJSON(list, e)
	show := &cobra.Command{
		Use:   "show APP REVISION",
		Short: "One revision",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.client().Revision(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(r)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "revision\t%s\nslot\t%s\nactive\t%v\ntraffic\t%d%%\nhealthy\t%d/%d\ndeployment\t%s\nartifact\t%s\ncreated\t%s\n",
				r.Name, r.Slot, r.Active, r.Weight, r.HealthyInstances, r.Instances, r.Deployment, r.ArtifactDigest, r.CreatedAt.Local().Format("2006-01-02 15:04:05"))
			return tw.Flush()
		},
	}
	addJSON(show, e)
	cmd.AddCommand(list, show)
	for _, op := range []struct{ name, short string }{
		{"activate", "Start an inactive revision (with 0 % traffic) in its slot or --slot"},
		{"deactivate", "Stop a revision that has no traffic (its files stay for reactivation)"},
		{"restart", "Restart a revision's instances with no downtime"},
	} {
		var slot string
		c := &cobra.Command{
			Use:   op.name + " APP REVISION",
			Short: op.short,
			Args:  cobra.ExactArgs(2),
			RunE:  nil,
		}
		pol := policyFlag(c)
		name := op.name
		c.RunE = func(cmd *cobra.Command, args []string) error {
			p, err := baton.ParsePolicy(*pol)
			if err != nil {
				return err
			}
			d, err := e.client().RevisionOp(cmd.Context(), args[0], args[1], name, slot, p)
			if err := e.opDone(cmd.Context(), d, err); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s %s: done (%s)\n", name, args[1], d.ID)
			return nil
		}
		if name == "activate" {
			c.Flags().StringVar(&slot, "slot", "", "slot to activate it in (default: the slot it last ran in)")
		}
		cmd.AddCommand(c)
	}
	return cmd
}

func newTrafficCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "traffic", Short: "Split a slot's traffic between active revisions"}
	var slot string
	set := &cobra.Command{
		Use:   "set APP REVISION=PERCENT...",
		Short: "Set weights (whole percents summing to 100; 'latest' names the newest active revision)",
		Long: `Set the traffic weights of a slot's active revisions. Weights are whole
percents that sum to exactly 100, only on active revisions with a healthy
instance; in single revision mode only one revision may hold traffic.
Revisions not named get 0 % but stay active.

A client keeps the revision it first got through the baton_revision cookie
while that revision has traffic; the request header 'Baton-Revision: NAME'
pins any active revision (for testing).`,
		Example: `  baton traffic set hello hello--000012=80 hello--000013=20
  baton traffic set hello latest=100`,
		Args: cobra.MinimumNArgs(2),
	}
	pol := policyFlag(set)
	set.RunE = func(cmd *cobra.Command, args []string) error {
		weights := map[string]int{}
		for _, a := range args[1:] {
			rev, pct, ok := strings.Cut(a, "=")
			n, err := strconv.Atoi(strings.TrimSuffix(pct, "%"))
			if !ok || err != nil {
				return fmt.Errorf("%q is not REVISION=PERCENT (e.g. %s--000003=20)", a, args[0])
			}
			weights[rev] += n
		}
		p, err := baton.ParsePolicy(*pol)
		if err != nil {
			return err
		}
		d, err := e.client().SetTraffic(cmd.Context(), args[0], slot, weights, p)
		if err := e.opDone(cmd.Context(), d, err); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "traffic of %s/%s set: %s (%s)\n", args[0], slot, summary(d), d.ID)
		return nil
	}
	set.Flags().StringVar(&slot, "slot", baton.ProductionSlot, "slot")
	cmd.AddCommand(set)
	return cmd
}

func newStabilizeCmd(e *env) *cobra.Command {
	var slot, rev string
	cmd := &cobra.Command{
		Use:   "stabilize APP",
		Short: "Give one revision 100 % and deactivate the others (default: the newest healthy one)",
		Long: `Recover from split or conflicting revisions in one step: the chosen revision
(default: the newest active revision with a healthy instance) gets 100 % of
the slot, every other revision drains and stops. Reports what it changed.`,
		Args: cobra.ExactArgs(1),
	}
	pol := policyFlag(cmd)
	cmd.RunE = func(c *cobra.Command, args []string) error {
		p, err := baton.ParsePolicy(*pol)
		if err != nil {
			return err
		}
		d, err := e.client().Stabilize(c.Context(), args[0], slot, rev, p)
		if err := e.opDone(c.Context(), d, err); err != nil {
			return err
		}
		log, _ := e.client().Log(c.Context(), d.ID)
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "stabilize:") || strings.Contains(line, "stopped") {
				fmt.Fprintln(e.stdout, line)
			}
		}
		fmt.Fprintln(e.stdout, succeeded(d))
		return nil
	}
	cmd.Flags().StringVar(&slot, "slot", baton.ProductionSlot, "slot")
	cmd.Flags().StringVar(&rev, "revision", "", "revision to keep (default: newest healthy)")
	return cmd
}
