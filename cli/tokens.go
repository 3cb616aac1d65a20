package cli

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// resolveToken picks the token the CLI sends and says where it came from:
// --token, else BATON_TOKEN, else — only for a server on this machine —
// the admin token file of its data directory ($BATON_DATA, default
// ./baton-data). A remote server never gets a local admin token by
// accident.
func resolveToken(flag, serverURL string) (token, from string) {
	if flag != "" {
		return flag, "--token"
	}
	if t := strings.TrimSpace(os.Getenv("BATON_TOKEN")); t != "" {
		return t, "BATON_TOKEN"
	}
	if !loopbackURL(serverURL) {
		return "", ""
	}
	dir := os.Getenv("BATON_DATA")
	if dir == "" {
		dir = "baton-data"
	}
	path := filepath.Join(dir, "admin.token")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", ""
	}
	return strings.TrimSpace(string(b)), path
}

// loopbackURL reports whether u names a server on this machine.
func loopbackURL(u string) bool {
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := parsed.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tokenHint follows a 401: what the CLI sent and how to send something
// better.
func tokenHint(from string) string {
	if from == "" {
		return "hint: no token was sent; pass --token or set BATON_TOKEN (on the baton host the admin token is in DATA/admin.token, which the CLI reads itself when BATON_DATA names DATA or DATA is ./baton-data)"
	}
	return fmt.Sprintf("hint: the token from %s was refused; check it, or ask an admin for one (`baton tokens create NAME --scope deploy`)", from)
}

func newTokensCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "Create, list and revoke access tokens (admin)"}
	var req api.TokenRequest
	var scope string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token; prints its secret, shown only this once",
		Long: `Create an access token. Scopes nest: read (everything that only reads,
including /metrics), deploy (also deploy, cancel, swap, traffic, settings and
revision operations, for every app or, with --app, for those apps only), admin
(also apps, tokens, locks, freezes and the audit log).

The secret goes to stdout alone, so TOKEN=$(baton tokens create …) captures it;
baton keeps only its hash and cannot show it again.`,
		Example: `  baton tokens create ci --scope deploy --app hello --expires 720h
  baton tokens create grafana --scope read`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name, req.Scope = args[0], baton.Scope(scope)
			t, err := e.client().CreateToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(t)
			}
			fmt.Fprintf(e.stderr, "created token %s (%s); this is the only time its secret is shown:\n", t.Name, describeScope(t.Token))
			fmt.Fprintln(e.stdout, t.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&scope, "scope", "", "read, deploy or admin (required)")
	create.Flags().StringSliceVar(&req.Apps, "app", nil, "limit a deploy token to this app (repeat for more); default every app")
	create.Flags().StringVar(&req.ExpiresIn, "expires", "", "lifetime, like 720h; default never")
	_ = create.MarkFlagRequired("scope")
	addJSON(create, e)
	list := &cobra.Command{
		Use:   "list",
		Short: "Every token: name, scope, apps, created, last used, expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := e.client().Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(ts)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSCOPE\tCREATED\tLAST USED\tEXPIRES")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, describeScope(t), t.CreatedAt.Local().Format("2006-01-02 15:04"),
					orDash(t.LastUsedAt), orDash(t.ExpiresAt))
			}
			return tw.Flush()
		},
	}
	addJSON(list, e)
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token at once (the last admin token cannot be revoked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.client().RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked token %s\n", args[0])
			return nil
		},
	}
	whoami := &cobra.Command{
		Use:   "whoami",
		Short: "The token this CLI sends, and what it may do",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := e.client()
			t, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(t)
			}
			fmt.Fprintf(e.stdout, "token %s (%s), from %s\n", t.Name, describeScope(t), e.tokenFrom)
			return nil
		},
	}
	addJSON(whoami, e)
	cmd.AddCommand(create, list, revoke, whoami)
	return cmd
}

// describeScope is a token's scope with its apps and expiry, in words.
func describeScope(t baton.Token) string {
	out := "scope " + string(t.Scope)
	if len(t.Apps) > 0 {
		out += " for " + strings.Join(t.Apps, ", ")
	}
	if t.ExpiresAt != nil {
		out += ", expires " + t.ExpiresAt.Local().Format("2006-01-02 15:04")
	}
	return out
}

func orDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func newAuditCmd(e *env) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The audit log, newest first: who did what, from where, and the outcome (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			es, err := e.client().Audit(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(es)
			}
			rows := [][]string{{"TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "FROM", "DETAIL"}}
			for _, a := range es {
				rows = append(rows, []string{a.Time.Local().Format("2006-01-02 15:04:05"), a.Actor, a.Action,
					a.Target, a.Outcome, a.Remote, dash(oneLine(a.Detail))})
			}
			if printFitted(e.stdout, rows, e.termWidth(), 6) {
				fmt.Fprintln(e.stderr, "(details cut to fit the terminal; -o json shows everything)")
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many entries")
	addJSON(cmd, e)
	return cmd
}
