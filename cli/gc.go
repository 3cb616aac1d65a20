package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
)

func newGCCmd(e *env) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove old revisions' files and artifacts the retention policy no longer keeps",
		Long: `Collect now what baton otherwise collects after every operation and on start:
the unpacked folders (with build outputs) and instance logs of revisions
beyond the policy, and artifacts no kept revision names. The policy is the
server's (baton serve --retain-revisions, --disk-budget): per slot the newest
revisions that went live stay rollbackable; what serves and what a queued or
running operation names always stays. Deployment records and their logs stay.

--dry-run prints what would go without removing anything. Needs an admin
token. An app with an operation running or queued is left for the next
collection (listed as skipped).`,
		Example: `  baton gc --dry-run
  baton gc
  baton gc --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			rep, err := e.client().GC(c.Context(), dryRun)
			if err != nil {
				return err
			}
			if e.asJSON {
				return e.printJSON(rep)
			}
			printGC(e, rep)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be removed; remove nothing")
	addJSON(cmd, e)
	return cmd
}

func printGC(e *env, rep baton.GCReport) {
	w := e.stdout
	verb := "removed"
	if rep.DryRun {
		verb = "would remove"
	}
	budget := "no disk budget"
	if rep.Policy.DiskBudget > 0 {
		budget = "disk budget " + baton.FormatSize(rep.Policy.DiskBudget)
	}
	fmt.Fprintf(w, "policy: newest %d revisions per slot, %s\n", rep.Policy.Revisions, budget)
	fmt.Fprintf(w, "%s %d revision folders, %d instance logs, %d artifacts: %s reclaimed (%s before, %s after)\n",
		verb, len(rep.Plan.RemoveFiles), len(rep.Plan.RemoveLogs), len(rep.Plan.RemoveArtifacts),
		baton.FormatSize(rep.Reclaimed), baton.FormatSize(rep.Before), baton.FormatSize(rep.After))
	if rep.DryRun && len(rep.Plan.RemoveFiles) > 0 {
		fmt.Fprintf(w, "revision folders: %s\n", strings.Join(rep.Plan.RemoveFiles, " "))
	}
	if rep.Plan.OverBudget > 0 {
		fmt.Fprintf(w, "still %s over the disk budget: what is left serves, is queued, or is a slot's newest rollback target\n", baton.FormatSize(rep.Plan.OverBudget))
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(w, "skipped (an operation runs or waits; collected after it): %s\n", strings.Join(rep.Skipped, ", "))
	}
	apps := make([]string, 0, len(rep.Apps))
	for a := range rep.Apps {
		apps = append(apps, a)
	}
	sort.Strings(apps)
	if len(apps) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nAPP\tDISK\tREVISIONS\tLOGS\tARTIFACTS\tKEPT")
	for _, a := range apps {
		u := rep.Apps[a]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", a, baton.FormatSize(u.Total), baton.FormatSize(u.Revisions), baton.FormatSize(u.Logs), baton.FormatSize(u.Artifacts), u.Kept)
	}
	tw.Flush()
}
