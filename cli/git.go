package cli

import (
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/gitdeploy"
)

func newGitRemoteCmd(e *env) *cobra.Command {
	var withToken bool
	cmd := &cobra.Command{
		Use:   "git-remote APP",
		Short: "Print the git remote URL that deploys APP on push",
		Long: `Print the URL of APP's git repository on baton. A push of branch main to it
deploys the pushed commit; the push prints the phases and the URL that now
serves it. 'git push -o on-conflict=fail' refuses instead of queueing when
another deployment runs.

git authenticates with a baton token (scope deploy) as its password: give it
to a git credential helper, or put it in the URL with --with-token (git then
keeps it in .git/config in clear text).`,
		Example: `  git remote add baton $(baton git-remote hello)
  git -c credential.helper='!f() { echo username=baton; echo "password=$BATON_TOKEN"; }; f' push baton main
  git remote add baton $(baton git-remote hello --with-token)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := e.client().App(cmd.Context(), args[0]); err != nil {
				return err
			}
			remote := gitdeploy.RemoteURL(e.url, args[0])
			if withToken {
				u, err := url.Parse(remote)
				if err != nil {
					return err
				}
				tok, _ := resolveToken(e.token, e.url)
				u.User = url.UserPassword("baton", tok)
				remote = u.String()
			}
			fmt.Fprintln(e.stdout, remote)
			return nil
		},
	}
	cmd.Flags().BoolVar(&withToken, "with-token", false, "put the CLI's token in the URL as the password")
	return cmd
}

func newControllersCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "controllers",
		Short: "The baton serve processes sharing the store, with their last heartbeat",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := e.client().Controllers(cmd.Context())
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(cs)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CONTROLLER\tAPI\tSTARTED\tLAST SEEN")
			for _, c := range cs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\n", c.ID, c.Addr, c.StartedAt.Local().Format("2006-01-02 15:04:05"), c.Silence.Round(time.Second))
			}
			return tw.Flush()
		},
	}
	addJSON(cmd, e)
	return cmd
}
