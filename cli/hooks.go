package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

func newHooksCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hooks",
		Short: "Webhooks: signed JSON events when deployments and operations end (admin)",
		Long: `Webhooks POST a JSON event (id, type, time, app, slot, deployment with its
provenance and outcome) to an http(s) URL when a deployment or operation ends.
Types are KIND.STATE: deployment.succeeded, deployment.failed,
deployment.cancelled, swap.succeeded, swap.failed, rollback.*, …;
conflict.CODE when a conflict appears in an app's status (conflict.app_frozen,
conflict.traffic_on_unhealthy_revision, …; looked for every 5 s); "ping" is
the test event. With a secret, the body is signed with HMAC-SHA256 in
X-Baton-Signature-256 ("sha256=HEX"), as GitHub's X-Hub-Signature-256.
X-Baton-Delivery carries the event id, the same on every attempt: receivers
drop repeats. Deliveries are queued in baton's store, so they survive a
restart, and are retried with back-off (1 s doubling up to 5 min, 8
attempts); they never hold up a deployment.`,
	}
	var req api.HookRequest
	var events string
	add := &cobra.Command{
		Use:   "add URL",
		Short: "Add a webhook",
		Example: `  baton hooks add https://ci.example/baton --events deployment.succeeded,deployment.failed,swap.* --secret "$HOOK_SECRET"
  baton hooks add http://chat.internal/hook --app web`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.URL = args[0]
			for _, ev := range strings.Split(events, ",") {
				if ev = strings.TrimSpace(ev); ev != "" {
					req.Events = append(req.Events, ev)
				}
			}
			h, err := e.client().CreateHook(cmd.Context(), req)
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(h)
			}
			fmt.Fprintf(e.stdout, "added webhook %s → %s (%s)\n", h.ID, h.URL, hookScope(h))
			if !h.Signed {
				fmt.Fprintln(e.stderr, "warning: no --secret: receivers cannot tell these events from forged ones")
			}
			return nil
		},
	}
	add.Flags().StringVar(&req.App, "app", "", "only events of this app (default: every app)")
	add.Flags().StringVar(&events, "events", "", "comma-separated event types, exact or KIND.* (default: every event)")
	add.Flags().StringVar(&req.Secret, "secret", "", "sign bodies with HMAC-SHA256 under this secret (X-Baton-Signature-256)")
	addJSON(add, e)

	list := &cobra.Command{
		Use:   "list",
		Short: "Every webhook: id, URL, app, events, signed, source",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hs, err := e.client().Hooks(cmd.Context())
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(hs)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tURL\tAPP\tEVENTS\tSIGNED\tSOURCE")
			for _, h := range hs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\n", h.ID, h.URL, dash(h.App), dash(strings.Join(h.Events, ",")), h.Signed, h.Source)
			}
			return tw.Flush()
		},
	}
	addJSON(list, e)

	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a webhook and its deliveries (audited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.client().RemoveHook(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "removed webhook %s\n", args[0])
			return nil
		},
	}

	test := &cobra.Command{
		Use:   "test ID",
		Short: `Send a "ping" event to a webhook now; see it with: baton hooks deliveries ID`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := e.client().TestHook(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "queued ping %s for %s; `baton hooks deliveries %s` shows how it went\n", id, args[0], args[0])
			return nil
		},
	}

	var limit int
	deliveries := &cobra.Command{
		Use:   "deliveries [ID]",
		Short: "The newest deliveries (of one webhook): event, state, attempts, last status and error",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hook := ""
			if len(args) == 1 {
				hook = args[0]
			}
			ds, err := e.client().Deliveries(cmd.Context(), hook, limit)
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(ds)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "HOOK\tEVENT\tTYPE\tSTATE\tATTEMPTS\tSTATUS\tLAST ATTEMPT\tNEXT\tERROR")
			for _, d := range ds {
				status := "-"
				if d.LastStatus != 0 {
					status = fmt.Sprint(d.LastStatus)
				}
				next := "-"
				if d.State == baton.DeliveryPending && d.NextAttemptAt != nil {
					next = d.NextAttemptAt.Local().Format(time.TimeOnly)
				}
				last := "-"
				if d.LastAttemptAt != nil {
					last = d.LastAttemptAt.Local().Format(time.TimeOnly)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", d.HookID, d.EventID, d.EventType, d.State, d.Attempts, status, last, next, dash(d.LastError))
			}
			return tw.Flush()
		},
	}
	deliveries.Flags().IntVar(&limit, "limit", 50, "at most this many, newest first")
	addJSON(deliveries, e)

	cmd.AddCommand(add, list, remove, test, deliveries)
	return cmd
}

// hookScope says which events a hook gets.
func hookScope(h baton.Hook) string {
	app, events := "every app", "every event"
	if h.App != "" {
		app = "app " + h.App
	}
	if len(h.Events) > 0 {
		events = strings.Join(h.Events, ",")
	}
	return app + ", " + events
}
