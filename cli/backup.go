package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backup"
)

func newBackupCmd(e *env) *cobra.Command {
	var o api.BackupOptions
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a backup of the server to FILE (tar.gz), while it serves",
		Long: `Write a backup of the baton server to FILE, a tar.gz archive, while it
keeps serving: a consistent snapshot of its SQLite store (deployment
history, settings, tokens, audit), the artifacts and container images its
revisions need (each image blob once), and a manifest with the store's
schema and baton's version. A restored baton starts image revisions from
the archive's images, without any registry. Needs an admin token.

Secret settings are in the store sealed with the server's key
(DATA/secret.key). The key is in the archive only with --include-key;
otherwise keep the key file safe yourself: a restore needs it.

With a PostgreSQL store, the archive holds the artifacts and images and a
note: back the database up with PostgreSQL's own tools. With --store-dump
the server runs pg_dump (it must be installed on the server, of the
database's major version) and the archive holds the dump as store.sql.

The archive is written to a temporary file beside FILE and checked before
it is renamed to FILE: a FILE that exists is a whole backup.`,
		Example: `  baton backup /backups/baton-$(date +%F).tar.gz
  baton backup all.tar.gz --include-key
  baton backup pg.tar.gz --store-dump      # PostgreSQL store: pg_dump too
  baton restore all.tar.gz --data /var/lib/baton-new`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("%s exists: give a new file name (baton does not overwrite a backup)", path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-")
			if err != nil {
				return err
			}
			done := false
			defer func() {
				if !done {
					tmp.Close()
					os.Remove(tmp.Name())
				}
			}()
			if _, err := e.client().Backup(cmd.Context(), o, tmp); err != nil {
				return err
			}
			if err := tmp.Sync(); err != nil {
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			m, err := backup.ReadManifest(tmp.Name())
			if err != nil {
				return fmt.Errorf("the backup the server sent does not check out: %w", err)
			}
			// Link, unlike rename, does not replace a FILE made meanwhile.
			if err := os.Link(tmp.Name(), path); err != nil {
				return fmt.Errorf("put the backup in place: %w", err)
			}
			done = true
			os.Remove(tmp.Name())
			if e.asJSON {
				return e.printJSON(m)
			}
			fmt.Fprintf(e.stdout, "backup %s: %s\n", path, m.Summary())
			if len(m.MissingArtifacts) > 0 {
				fmt.Fprintf(e.stderr, "warning: %d artifacts the store names were not on the server's disk; the revisions using them cannot start after a restore\n", len(m.MissingArtifacts))
			}
			if len(m.MissingImages) > 0 {
				fmt.Fprintf(e.stderr, "warning: %d images the store names were not held by the server; the revisions using them need their registry after a restore\n", len(m.MissingImages))
			}
			if !m.KeyIncluded {
				fmt.Fprintln(e.stdout, "The secret key is not in it: keep the server's secret.key; a restore needs it (--key).")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.IncludeKey, "include-key", false, "put the key that seals secret settings in the archive (whoever reads the archive then reads the secrets)")
	cmd.Flags().BoolVar(&o.StoreDump, "store-dump", false, "with a PostgreSQL store: run pg_dump on the server and put the dump in the archive (store.sql)")
	addJSON(cmd, e)
	return cmd
}

func newRestoreCmd(e *env) *cobra.Command {
	var o backup.RestoreOptions
	cmd := &cobra.Command{
		Use:   "restore FILE --data DIR",
		Short: "Restore a backup into a new data directory",
		Long: `Restore a backup made by 'baton backup' into DIR, which must not exist or
be empty; then 'baton serve --data DIR' starts every app's live revision
again, with its history, settings, tokens and audit log. Runs on this
machine; needs no server.

The backup is unpacked into a temporary folder beside DIR and renamed to
DIR once every file checks out: a damaged or cut archive leaves nothing.
A backup of a newer store schema than this baton knows is refused.

A backup of a PostgreSQL store holds no database, or with --store-dump a
pg_dump of it: --store URL loads that into a new, empty database with
psql (in one transaction) as it restores; without --store it is left in
DIR/store.sql for you to load. Then 'baton serve --store URL --data DIR'.

A backup made without --include-key needs the key file of the baton it
came from (--key), or --no-key to restore without it: secret settings then
no longer open.`,
		Example: `  baton restore backup.tar.gz --data /var/lib/baton --key /safe/secret.key
  baton serve --data /var/lib/baton
  baton restore pg.tar.gz --data /var/lib/baton --store postgres://baton@db/baton_new`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.DataDir == "" {
				return errors.New("--data DIR is required: the new data directory to restore into")
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			m, err := backup.Restore(cmd.Context(), f, o)
			if err != nil {
				return fmt.Errorf("restore %s: %w", args[0], err)
			}
			if e.asJSON {
				return e.printJSON(m)
			}
			fmt.Fprintf(e.stdout, "restored %s into %s: %s\n", args[0], o.DataDir, m.Summary())
			fmt.Fprintln(e.stdout, backup.NextSteps(m, o.DataDir, o.Store))
			return nil
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data", "", "the data directory to create (must not exist, or be empty)")
	cmd.Flags().StringVar(&o.KeyFile, "key", "", "the secret key file of the baton the backup came from (for a backup without --include-key)")
	cmd.Flags().StringVar(&o.Store, "store", "", "postgres:// URL of a new, empty database to load the backup's store dump into (a backup made with --store-dump; needs psql)")
	cmd.Flags().BoolVar(&o.NoKey, "no-key", false, "restore a backup without its key and without --key: secret settings will not open")
	cmd.MarkFlagsMutuallyExclusive("key", "no-key")
	addJSON(cmd, e)
	return cmd
}
