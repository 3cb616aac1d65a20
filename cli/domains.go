package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
)

func newDomainsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domains",
		Short: "Add, list and remove an app's custom domains",
		Long: `A custom domain is a name, like shop.example.com, that one slot of one app
serves besides its own APP.DOMAIN / APP-SLOT.DOMAIN. Point the name's DNS at
the baton hosts; with --acme-email on baton serve, baton obtains and renews
its certificate by itself. A domain stays with its slot when slots swap:
a swap moves revisions, not names.`,
	}
	var slot string
	add := &cobra.Command{
		Use:   "add APP NAME",
		Short: "Serve NAME from a slot of APP (production unless --slot)",
		Example: `  baton domains add shop shop.example.com
  baton domains add shop preview.shop.example.com --slot staging`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := e.client().AddDomain(cmd.Context(), args[0], slot, args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s now serves slot %s of %s; point its DNS (A/AAAA or CNAME) at the baton hosts, and check with: baton status %s\n",
				d.Name, d.Slot, d.App, d.App)
			return nil
		},
	}
	add.Flags().StringVar(&slot, "slot", baton.ProductionSlot, "the slot that serves the domain")
	list := &cobra.Command{
		Use:   "list [APP]",
		Short: "Custom domains of APP, or of every app",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := ""
			if len(args) == 1 {
				app = args[0]
			}
			ds, err := e.client().Domains(cmd.Context(), app)
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(ds)
			}
			if len(ds) == 0 {
				fmt.Fprintln(e.stdout, "no custom domains; add one with: baton domains add APP NAME [--slot SLOT]")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DOMAIN\tAPP\tSLOT\tADDED")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Name, d.App, d.Slot, d.CreatedAt.Local().Format("2006-01-02 15:04"))
			}
			return tw.Flush()
		},
	}
	addJSON(list, e)
	remove := &cobra.Command{
		Use:   "remove APP NAME",
		Short: "Stop serving NAME (its certificate is no longer renewed)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.client().RemoveDomain(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s no longer serves %s\n", args[0], args[1])
			return nil
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}
