package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newHostsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "The hosts sharing the store: address, state, apps and instances",
		Long: `List every host (baton serve) sharing the store: the address other hosts
reach it at (--advertise), its peer listener, its state (live; draining
while it stops; lost once it missed its heartbeats: its apps move to the
others), the apps it owns and the app instances it runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hs, err := e.client().Hosts(cmd.Context())
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(hs)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "HOST\tADDRESS\tPEER\tSTATE\tLAST SEEN\tINSTANCES\tAPPS")
			for _, h := range hs {
				apps := strings.Join(h.Apps, ",")
				if apps == "" {
					apps = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%d\t%s\n", h.ID, dash(h.Advertise), dash(h.Peer), h.State,
					h.Silence.Round(time.Second), h.Instances, apps)
			}
			return tw.Flush()
		},
	}
	addJSON(cmd, e)
	return cmd
}
