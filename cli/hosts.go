package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
)

func newHostsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "The hosts sharing the store: address, state, apps and instances; drain and undrain",
		Long: `List every host (baton serve) sharing the store: the address other hosts
reach it at (--advertise), its peer listener, its state, the apps it owns
and the app instances it runs.

States: live; draining while it stops, or "draining (requested)" from
'baton hosts drain' until 'baton hosts undrain' (its instances move to the
other hosts, and it takes no new ones); lost once it missed its heartbeats
(its apps and instances move to the others).`,
		Example: `  baton hosts
  baton hosts drain h2      # before a reboot: its instances move to the other hosts
  baton hosts undrain h2    # after it: it takes instances again`,
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
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%d\t%s\n", h.ID, dash(h.Advertise), hostPeer(h), hostState(h),
					h.Silence.Round(time.Second), h.Instances, apps)
			}
			return tw.Flush()
		},
	}
	addJSON(cmd, e)
	cmd.AddCommand(newHostDrainCmd(e, true), newHostDrainCmd(e, false))
	return cmd
}

// hostPeer is a host's peer listener as `baton hosts` shows it, marking
// a host of an older baton that sends no peer key: while one is live, the
// peer listeners also serve requests without the key.
func hostPeer(h baton.Host) string {
	if h.Peer != "" && !h.SendsPeerKey {
		return h.Peer + " (sends no peer key: older baton)"
	}
	return dash(h.Peer)
}

// hostState is a host's state as `baton hosts` shows it: a host an
// operator asked to drain is draining until undrained, whatever its
// heartbeat says, unless it is lost.
func hostState(h baton.Host) string {
	if h.DrainRequested && h.State != baton.HostLost {
		return string(baton.HostDraining) + " (requested)"
	}
	return h.State.String()
}

// newHostDrainCmd is `baton hosts drain` (drain) or `baton hosts undrain`.
func newHostDrainCmd(e *env, drain bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drain HOST",
		Short: "Move a host's instances to the other hosts and give it no new ones, for a reboot or an upgrade",
		Long: `Ask a host to drain: baton starts its instances on the other live hosts,
each health-checked before it gets traffic, then drains and stops them on
this one, so that no request fails. Until 'baton hosts undrain HOST' it
takes no instances, also after a restart; its proxy goes on routing (to the
other hosts), so take it out of the load balancer in front before you stop
it. 'baton hosts' shows it as "draining (requested)" and its instances
going to 0.`,
		Example: `  baton hosts drain h2
  baton hosts               # h2: draining (requested), instances 0 once moved
  baton hosts undrain h2`,
		Args: cobra.ExactArgs(1),
	}
	if !drain {
		cmd.Use = "undrain HOST"
		cmd.Short = "Let a drained host take instances again"
		cmd.Long = `End a drain ('baton hosts drain HOST'): the host is live again and baton
places instances on it as on any live host. 'baton hosts' shows it live
and its instances; 'baton status APP' shows where an app's instances run.`
		cmd.Example = `  baton hosts undrain h2
  baton hosts`
	}
	cmd.RunE = func(c *cobra.Command, args []string) error {
		h, err := e.client().DrainHost(c.Context(), args[0], drain)
		if err != nil {
			return err
		}
		if e.asJSON {
			return e.printJSON(h)
		}
		if drain {
			fmt.Fprintf(e.stdout, "host %s is %s: its instances (%d now) move to the other hosts; watch them with: baton hosts; bring it back with: baton hosts undrain %s\n",
				h.ID, hostState(h), h.Instances, h.ID)
		} else {
			fmt.Fprintf(e.stdout, "host %s is %s: it takes instances again; watch them with: baton hosts\n", h.ID, hostState(h))
		}
		return nil
	}
	addJSON(cmd, e)
	return cmd
}
