package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

func newScaleCmd(e *env) *cobra.Command {
	var o api.ScaleOptions
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "scale APP --instances N",
		Short: "Set how many instances each revision of a slot runs, and how many of them one host may run",
		Long: `Set a slot's scale: every revision serving the slot runs --instances
instances, spread over the live hosts sharing the store (spread first, then
the least loaded host; a scale change moves nothing it need not), with at
most --max-per-host of them on one host (0: no cap). It is an ordinary
operation: it waits its turn (--on-conflict), added instances pass their
health check before they get traffic, and removed ones drain before they
stop, so nothing fails on the way. The slot keeps its scale across
deployments, in place of the manifest's [run] instances and max_per_host.

A frozen app still allows scale (freeze stops new code, not capacity).
More instances than the live hosts can hold under --max-per-host fail the
operation, saying what to change (fewer instances, a higher cap, a host).
'baton status APP' shows the slot's scale and the hosts each revision's
instances run on.

` + exitCodesHelp,
		Example: `  baton scale hello --instances 3 --wait
  baton scale hello --instances 6 --max-per-host 2    # at least 3 hosts
  baton scale hello --slot staging --instances 1 -m "staging is idle"`,
		Args: cobra.ExactArgs(1),
	}
	pol := policyFlag(cmd)
	cmd.RunE = func(c *cobra.Command, args []string) error {
		app := args[0]
		if !c.Flags().Changed("instances") {
			return fmt.Errorf("how many instances? give --instances N (1 to %d), e.g. baton scale %s --instances 3", baton.MaxScaleInstances, app)
		}
		if o.Instances < 1 || o.Instances > baton.MaxScaleInstances {
			return fmt.Errorf("--instances %d: give from 1 to %d instances per revision, e.g. --instances 3", o.Instances, baton.MaxScaleInstances)
		}
		if o.MaxPerHost < 0 || o.MaxPerHost > baton.MaxScaleInstances {
			return fmt.Errorf("--max-per-host %d: give from 1 to %d, or 0 for no cap", o.MaxPerHost, baton.MaxScaleInstances)
		}
		p, err := baton.ParsePolicy(*pol)
		if err != nil {
			return err
		}
		o.Policy, o.Author = p, os.Getenv("USER")
		d, err := e.client().Scale(c.Context(), app, o)
		if err != nil {
			return err
		}
		what := o.ScaleRequest.String()
		if !wait {
			if e.asJSON {
				return e.printJSON(d)
			}
			fmt.Fprintf(e.stdout, "scale %s of %s/%s to %s is %s; follow it with: baton logs -f %s\n", d.ID, d.App, d.Slot, what, d.State, d.ID)
			return nil
		}
		fmt.Fprintf(e.stderr, "scale %s of %s/%s to %s queued\n", d.ID, d.App, d.Slot, what)
		if err := follow(c.Context(), e, d.ID, timeout); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "scale %s succeeded: each revision of %s/%s runs %s; where they run: baton status %s\n", d.ID, d.App, d.Slot, what, d.App)
		return nil
	}
	f := cmd.Flags()
	f.StringVar(&o.Slot, "slot", baton.ProductionSlot, "slot to scale")
	f.IntVar(&o.Instances, "instances", 0, fmt.Sprintf("instances each revision of the slot runs, 1 to %d (required)", baton.MaxScaleInstances))
	f.IntVar(&o.MaxPerHost, "max-per-host", 0, "at most this many instances of a revision on one host; 0: no cap")
	f.StringVarP(&o.Message, "message", "m", "", "why, for the history (baton deployments list)")
	f.BoolVar(&wait, "wait", false, "follow the scale's phases and log; exit with its result")
	f.DurationVar(&timeout, "timeout", 0, "with --wait, give up waiting after this long (exit 6); 0 waits forever")
	addJSON(cmd, e)
	return cmd
}
