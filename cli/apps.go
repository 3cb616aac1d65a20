package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/spf13/cobra"
)

// orDefaultPolicy is an option's policy as its effect: "" is queue.
func orDefaultPolicy(p baton.Policy) string {
	if p == "" {
		return string(baton.PolicyQueue) + " (default)"
	}
	return string(p)
}

func newAppsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "apps", Short: "Create, list and delete apps"}
	create := &cobra.Command{
		Use:   "create APP",
		Short: "Create an app (its name is a DNS label; it is served at APP.DOMAIN)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := e.client().CreateApp(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "created app %s; deploy it with: baton deploy %s PATH\n", a.Name, a.Name)
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List apps and what each slot serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			apps, err := e.client().Apps(cmd.Context())
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(apps)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "APP\tSLOT\tLIVE REVISION\tCREATED")
			for _, a := range apps {
				// The app's name and date on its first slot's row only.
				name, created := a.Name, a.CreatedAt.Local().Format("2006-01-02 15:04")
				for _, s := range a.Slots {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, s.Name, dash(s.LiveRevision), created)
					name, created = "", ""
				}
			}
			return tw.Flush()
		},
	}
	addJSON(list, e)
	del := &cobra.Command{
		Use:   "delete APP",
		Short: "Delete an app: cancel its deployments, stop its instances, remove its files",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.client().DeleteApp(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted app %s\n", args[0])
			return nil
		},
	}
	var mode, kuduPolicy, gitPolicy, registryPolicy string
	set := &cobra.Command{
		Use:   "set APP",
		Short: "Change an app's options (--revision-mode, --kudu-on-conflict, --git-on-conflict, --registry-on-conflict)",
		Long: `Change an app's options. They are baton's own, kept on the app: unlike
settings (baton config set) they are not in the app's environment and
changing one creates no revision.`,
		Example: `  baton apps set hello --revision-mode multiple
  baton apps set hello --kudu-on-conflict fail     # Kudu deploys that name no on_conflict get 409 while busy
  baton apps set hello --git-on-conflict ''        # git pushes queue again (the default)
  baton apps set hello --registry-on-conflict fail # podman push to baton's registry is refused while busy`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch api.AppChange
			flags := cmd.Flags()
			if flags.Changed("revision-mode") {
				ch.RevisionMode = &mode
			}
			if flags.Changed("kudu-on-conflict") {
				ch.KuduOnConflict = &kuduPolicy
			}
			if flags.Changed("git-on-conflict") {
				ch.GitOnConflict = &gitPolicy
			}
			if flags.Changed("registry-on-conflict") {
				ch.RegistryOnConflict = &registryPolicy
			}
			if ch == (api.AppChange{}) {
				return fmt.Errorf("nothing to set: give --revision-mode, --kudu-on-conflict, --git-on-conflict or --registry-on-conflict")
			}
			a, err := e.client().UpdateApp(cmd.Context(), args[0], ch)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "app %s: revision mode %s, Kudu deploys on conflict %s, git pushes on conflict %s, image pushes on conflict %s\n",
				a.Name, a.RevisionMode, orDefaultPolicy(a.Options.KuduOnConflict), orDefaultPolicy(a.Options.GitOnConflict), orDefaultPolicy(a.Options.RegistryOnConflict))
			return nil
		},
	}
	set.Flags().StringVar(&mode, "revision-mode", "", "single: a deployment takes 100 % and deactivates the previous revision; multiple: revisions stay active with weights")
	set.Flags().StringVar(&kuduPolicy, "kudu-on-conflict", "", "conflict policy of Kudu API deploys whose request names no on_conflict: "+baton.PolicyChoices()+"; '' for the default (queue)")
	set.Flags().StringVar(&gitPolicy, "git-on-conflict", "", "conflict policy of git pushes without -o on-conflict: "+baton.PolicyChoices()+"; '' for the default (queue)")
	set.Flags().StringVar(&registryPolicy, "registry-on-conflict", "", "conflict policy of images pushed to baton's registry (podman push, skopeo copy): "+baton.PolicyChoices()+"; '' for the default (queue)")
	cmd.AddCommand(create, list, del, set)
	return cmd
}
