package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
)

func newSwapCmd(e *env) *cobra.Command {
	var from, to string
	var preview, wait bool
	var previewTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "swap APP --from SLOT [--to production]",
		Short: "Swap two slots: warm the source's revision with the target's settings, then switch both at once",
		Long: `Swap the live revisions of two slots, after App Service's slot swap:

  1. the source slot's revision starts with the TARGET's sticky settings
     (non-sticky settings travel with the revision);
  2. each new instance is warmed up: GET of each [warmup] path (or setting
     BATON_SWAP_WARMUP_PATH) with header Baton-Warmup: 1, no redirects
     followed, up to 5 attempts; [warmup] statuses / BATON_SWAP_WARMUP_STATUSES
     restrict the accepted statuses (a path that redirects, e.g. to a login
     page, needs its 302 listed there, or a warm-up path that answers itself);
  3. with --preview it stops in phase awaiting-completion: the source host
     serves the new code with the target's settings until
     'baton swap complete ID' or 'baton swap cancel ID'; the app's other
     operations wait meanwhile, so a preview left open is cancelled after
     --preview-timeout (default 1h; the audit log records it) and status
     reports it as conflict swap_preview_open until then;
  4. the target's revision starts with the source's sticky settings, both
     slots switch in one atomic step, and the old instances drain.

Any failure before the switch stops what was started: nothing changes.

` + exitCodesHelp,
		Example: `  baton swap hello --from staging --wait
  baton swap hello --from staging --preview
  baton swap hello --from staging --preview --preview-timeout 15m`,
		Args: cobra.ExactArgs(1),
	}
	pol := policyFlag(cmd)
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if from == "" {
			return fmt.Errorf("give the source slot with --from (e.g. --from staging)")
		}
		p, err := baton.ParsePolicy(*pol)
		if err != nil {
			return err
		}
		sp := baton.SwapParams{Source: from, Target: to, Preview: preview}
		if c.Flags().Changed("preview-timeout") {
			if !preview {
				return fmt.Errorf("--preview-timeout needs --preview")
			}
			sp.PreviewTimeout = previewTimeout.String()
		}
		d, err := e.client().SwapWith(c.Context(), args[0], sp, p)
		if err != nil {
			return err
		}
		if preview && !wait {
			fmt.Fprintf(e.stdout, "swap %s queued; once warmed up it waits up to %s for 'baton swap complete %s' (or cancel)\n", d.ID, previewTimeout, d.ID)
			return nil
		}
		if !wait {
			fmt.Fprintf(e.stdout, "swap %s queued; follow it with: baton logs -f %s\n", d.ID, d.ID)
			return nil
		}
		return follow(c.Context(), e, d.ID, 0)
	}
	cmd.Flags().StringVar(&from, "from", "", "source slot")
	cmd.Flags().StringVar(&to, "to", baton.ProductionSlot, "target slot")
	cmd.Flags().BoolVar(&preview, "preview", false, "stop before switching so the result can be inspected on the source host")
	cmd.Flags().DurationVar(&previewTimeout, "preview-timeout", baton.DefaultPreviewTimeout, "with --preview: cancel the preview if it is not completed within this time")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the swap to its end; exit with its result")
	cmd.AddCommand(&cobra.Command{
		Use:   "complete ID",
		Short: "Continue a swap waiting in preview",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			d, err := e.client().CompleteSwap(c.Context(), args[0])
			if err != nil {
				return err
			}
			if err := resultError(d); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, succeeded(d))
			return nil
		},
	}, &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a swap (in preview: the source slot gets its own settings back)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			d, err := e.client().Cancel(c.Context(), args[0], "")
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "swap %s is %s%s\n", d.ID, d.State, because(d))
			return nil
		},
	})
	return cmd
}
