package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/buildinfo"
	"github.com/batonhq/baton/sqlite"
)

// versionInfo is what `baton version --json` prints.
type versionInfo struct {
	buildinfo.Info
	// SchemaVersion is the newest SQLite store schema this binary knows.
	SchemaVersion int `json:"schema_version"`
}

func newVersionCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print baton's version, commit, build time, Go version and store schema",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := versionInfo{Info: buildinfo.Read(), SchemaVersion: sqlite.SchemaVersion()}
			if e.asJSON {
				return e.printJSON(v)
			}
			fmt.Fprintf(e.stdout, "version:  %s\n", v.Version)
			if v.Commit != "" {
				mod := ""
				if v.Modified {
					mod = " (with uncommitted changes)"
				}
				fmt.Fprintf(e.stdout, "commit:   %s%s\n", v.Commit, mod)
			}
			if v.BuildTime != "" {
				fmt.Fprintf(e.stdout, "built:    %s\n", v.BuildTime)
			}
			fmt.Fprintf(e.stdout, "go:       %s\n", v.GoVersion)
			fmt.Fprintf(e.stdout, "schema:   %d (SQLite store)\n", v.SchemaVersion)
			return nil
		},
	}
	addJSON(cmd, e)
	return cmd
}
