package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
)

func newSlotsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "slots", Short: "Create, list, configure and delete deployment slots"}
	cmd.AddCommand(&cobra.Command{
		Use:   "create APP SLOT",
		Short: "Create a slot, served at APP-SLOT.DOMAIN",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := e.client().CreateSlot(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "created slot %s of %s; deploy to it with: baton deploy %s PATH --slot %s\n", args[1], args[0], args[0], args[1])
			return nil
		},
	})
	list := &cobra.Command{
		Use:   "list APP",
		Short: "An app's slots",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			slots, err := e.client().Slots(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(slots)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SLOT\tLIVE REVISION\tAUTO SWAP TO")
			for _, s := range slots {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, dash(s.LiveRevision), dash(s.AutoSwapTo))
			}
			return tw.Flush()
		},
	}
	addJSON(list, e)
	var autoSwap string
	set := &cobra.Command{
		Use:   "set APP SLOT",
		Short: "Configure a slot (--auto-swap-to SLOT, or '' to turn it off)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("auto-swap-to") {
				return fmt.Errorf("nothing to set: give --auto-swap-to SLOT (or --auto-swap-to '' to turn it off)")
			}
			s, err := e.client().SetAutoSwap(cmd.Context(), args[0], args[1], autoSwap)
			if err != nil {
				return err
			}
			if s.AutoSwapTo == "" {
				fmt.Fprintf(e.stdout, "slot %s of %s: auto swap off\n", s.Name, s.App)
			} else {
				fmt.Fprintf(e.stdout, "slot %s of %s: auto swap to %s after each successful deployment\n", s.Name, s.App, s.AutoSwapTo)
			}
			return nil
		},
	}
	set.Flags().StringVar(&autoSwap, "auto-swap-to", "", "after each successful deployment into this slot, swap it into that slot")
	cmd.AddCommand(list, set, &cobra.Command{
		Use:   "delete APP SLOT",
		Short: "Delete a slot (not production): stops what it runs, removes its settings",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.client().DeleteSlot(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted slot %s of %s\n", args[1], args[0])
			return nil
		},
	})
	return cmd
}

func newConfigCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Slot settings (environment variables), sticky or travelling with the revision"}
	var slot string
	var sticky, secret, noWait bool
	set := &cobra.Command{
		Use:   "set APP KEY=VALUE...",
		Short: "Set settings; the slot's live revision restarts as a new revision with them",
		Long: `Set settings of a slot. A sticky setting stays with the slot when it is
swapped; the others travel with the revision. A secret is never shown in full.
The change goes through the app's queue and lock like a deployment and
restarts the slot's live revision as a new revision with zero downtime, on
the build output it has: the build runs again only when a changed setting is
one the manifest names as build-time ([build] env = ["NAME", …]), and a build
sees only those settings.`,
		Example: `  baton config set hello FEATURE=on
  baton config set hello DB_URL=postgres://staging --slot staging --sticky --secret`,
		Args: cobra.MinimumNArgs(2),
	}
	pol := policyFlag(set)
	set.RunE = func(cmd *cobra.Command, args []string) error {
		var settings []baton.Setting
		for _, a := range args[1:] {
			k, v, ok := strings.Cut(a, "=")
			if !ok {
				return fmt.Errorf("%q is not KEY=VALUE", a)
			}
			settings = append(settings, baton.Setting{Key: k, Value: v, Sticky: sticky, Secret: secret})
		}
		p, err := baton.ParsePolicy(*pol)
		if err != nil {
			return err
		}
		d, err := e.client().SetSettings(cmd.Context(), args[0], slot, settings, p)
		if err != nil {
			return err
		}
		return e.afterOp(cmd, d, noWait)
	}
	set.Flags().StringVar(&slot, "slot", baton.ProductionSlot, "slot")
	set.Flags().BoolVar(&sticky, "sticky", false, "the setting stays with the slot on swap")
	set.Flags().BoolVar(&secret, "secret", false, "never show the value in full")
	set.Flags().BoolVar(&noWait, "no-wait", false, "return once queued instead of following the restart")
	list := &cobra.Command{
		Use:   "list APP",
		Short: "A slot's settings (secrets masked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			settings, err := e.client().Settings(cmd.Context(), args[0], slot)
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(settings)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tVALUE\tSTICKY\tSECRET")
			for _, s := range settings {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%v\n", s.Key, s.Value, s.Sticky, s.Secret)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&slot, "slot", baton.ProductionSlot, "slot")
	addJSON(list, e)
	unset := &cobra.Command{
		Use:   "unset APP KEY",
		Short: "Remove a setting (restarts the live revision as a new revision)",
		Args:  cobra.ExactArgs(2),
	}
	upol := policyFlag(unset)
	unset.RunE = func(cmd *cobra.Command, args []string) error {
		p, err := baton.ParsePolicy(*upol)
		if err != nil {
			return err
		}
		d, err := e.client().UnsetSetting(cmd.Context(), args[0], slot, args[1], p)
		if err != nil {
			return err
		}
		return e.afterOp(cmd, d, noWait)
	}
	unset.Flags().StringVar(&slot, "slot", baton.ProductionSlot, "slot")
	unset.Flags().BoolVar(&noWait, "no-wait", false, "return once queued")
	cmd.AddCommand(set, list, unset)
	return cmd
}

// afterOp follows a queued operation to its end unless noWait.
func (e *env) afterOp(cmd *cobra.Command, d baton.Deployment, noWait bool) error {
	if noWait {
		fmt.Fprintf(e.stdout, "%s %s queued; follow it with: baton logs -f %s\n", d.Kind, d.ID, d.ID)
		return nil
	}
	return follow(cmd.Context(), e, d.ID, 30*time.Minute)
}
