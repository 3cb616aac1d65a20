package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/gitdeploy"
)

func newGitRemoteCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "git-remote APP",
		Short: "Print the git remote URL that deploys APP on push",
		Long: `Print the URL of APP's git repository on baton. A push of branch main to it
deploys the pushed commit; the push prints the phases and the URL that now
serves it. 'git push -o on-conflict=fail' refuses instead of queueing when
another deployment runs.`,
		Example: `  git remote add baton $(baton git-remote hello)
  git push baton main`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := e.client().App(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, gitdeploy.RemoteURL(e.url, args[0]))
			return nil
		},
	}
}
