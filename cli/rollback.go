package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/batonhq/baton"
	"github.com/spf13/cobra"
)

func newRollbackCmd(e *env) *cobra.Command {
	var slot string
	var rp baton.RollbackParams
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "rollback APP",
		Short: "Put an earlier revision live again (default: the one that served before the current one)",
		Long: `Roll a slot back in one step. Without --to, the revision that served the slot
before the current one comes back; --to names a revision (APP--000004) or the
deployment that created it (d-…). It is an ordinary operation: it waits its
turn (--on-conflict), starts the revision and health-checks it, then switches
the slot to it at 100 % and drains the rest. A revision whose folder was
pruned is unpacked and built again from its stored artifact.

The revision runs with the settings it was deployed with; --current-settings
runs its code with the slot's settings of now, as a new revision.

A frozen app still allows rollback (freeze stops new code, not recovery). A
target that cannot be rolled back to is refused at once (exit 5) with the
revisions that can.

` + exitCodesHelp,
		Example: `  baton rollback hello --wait
  baton rollback hello --to hello--000004
  baton rollback hello --slot staging --to d-1a2b3c4d5e6f --current-settings`,
		Args: cobra.ExactArgs(1),
	}
	pol := policyFlag(cmd)
	cmd.RunE = func(c *cobra.Command, args []string) error {
		p, err := baton.ParsePolicy(*pol)
		if err != nil {
			return err
		}
		d, err := e.client().Rollback(c.Context(), args[0], slot, rp, p, os.Getenv("USER"))
		if err != nil {
			return err
		}
		if !wait {
			if e.asJSON {
				return e.printJSON(d)
			}
			fmt.Fprintf(e.stdout, "rollback %s of %s/%s to %s %s; follow it with: baton logs -f %s\n", d.ID, d.App, d.Slot, d.Revision, d.State, d.ID)
			return nil
		}
		fmt.Fprintf(e.stderr, "rollback %s queued for %s/%s\n", d.ID, d.App, d.Slot)
		return follow(c.Context(), e, d.ID, timeout)
	}
	f := cmd.Flags()
	f.StringVar(&slot, "slot", baton.ProductionSlot, "slot to roll back")
	f.StringVar(&rp.To, "to", "", "revision (APP--NNNNNN) or deployment id to go back to (default: the one before the current)")
	f.BoolVar(&rp.CurrentSettings, "current-settings", false, "run the old code with the slot's settings of now (a new revision)")
	f.BoolVar(&wait, "wait", false, "follow the rollback's phases and log; exit with its result")
	f.DurationVar(&timeout, "timeout", 0, "with --wait, give up waiting after this long (exit 6); 0 waits forever")
	addJSON(cmd, e)
	return cmd
}
