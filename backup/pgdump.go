package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"

	"github.com/batonhq/baton"
)

// PGDump returns a Source.StoreDump that runs pg_dump on the PostgreSQL
// database dsn names (a postgres:// URL, as baton serve --store takes
// it), writing plain SQL that psql loads into an empty database. The
// password, if the URL has one, goes to pg_dump in its environment, not
// on its command line.
func PGDump(dsn string) func(ctx context.Context, path string) error {
	return func(ctx context.Context, path string) error {
		bin, err := exec.LookPath("pg_dump")
		if err != nil {
			return baton.Errorf(baton.EUNAVAILABLE, "--store-dump needs pg_dump, which is not installed on the baton server (not on its PATH): install PostgreSQL's client tools of the database server's major version (Debian: the postgresql-client package), or leave --store-dump out and back the database up with its own tools")
		}
		conn, env, err := pgConn(dsn)
		if err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, bin, "--format=plain", "--no-owner", "--no-privileges", "--file="+path, "--dbname="+conn)
		cmd.Env = append(os.Environ(), env...)
		var stderr bytes.Buffer
		cmd.Stderr = &limitedBuffer{b: &stderr, max: 8 << 10}
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				msg = err.Error()
			}
			return baton.Errorf(baton.EUNAVAILABLE, "pg_dump of the store failed: %s", msg)
		}
		return nil
	}
}

// pgConn turns baton's PostgreSQL URL into what pg_dump takes: the URL
// without its password and without pgx's own pool settings, and the
// password as PGPASSWORD.
func pgConn(dsn string) (conn string, env []string, err error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, baton.Errorf(baton.EINVALID, "--store-dump needs a postgres:// store URL")
	}
	if pw, ok := u.User.Password(); ok {
		env = append(env, "PGPASSWORD="+pw)
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), env, nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// pgLoad loads the dump at path into the PostgreSQL database dsn names,
// which must hold no tables, with psql in one transaction: on failure the
// database is left as it was.
func pgLoad(ctx context.Context, dsn, path string) error {
	bin, err := exec.LookPath("psql")
	if err != nil {
		return fmt.Errorf("--store needs psql, which is not installed here (not on the PATH): install PostgreSQL's client tools (Debian: the postgresql-client package), or restore without --store and load %s yourself", StoreDumpName)
	}
	conn, env, err := pgConn(dsn)
	if err != nil {
		return err
	}
	psql := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, append([]string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname=" + conn}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout = &limitedBuffer{b: &stdout, max: 8 << 10}
		cmd.Stderr = &limitedBuffer{b: &stderr, max: 8 << 10}
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return "", context.Cause(ctx)
			}
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				msg = err.Error()
			}
			return "", errors.New(msg)
		}
		return strings.TrimSpace(stdout.String()), nil
	}
	n, err := psql("-t", "-A", "-c", "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
	if err != nil {
		return fmt.Errorf("--store: %s", err)
	}
	if n != "0" {
		return fmt.Errorf("--store: the database holds %s tables: load the backup only into a new, empty database (createdb), so that nothing of another store is mixed in or overwritten", n)
	}
	if _, err := psql("--single-transaction", "-f", path); err != nil {
		return fmt.Errorf("--store: psql could not load the store dump (the database is left as it was): %s", err)
	}
	return nil
}

// NextSteps says what to do after restoring m into dir; store is the
// database the restore loaded the store into (RestoreOptions.Store), if
// any.
func NextSteps(m Manifest, dir, store string) string {
	switch {
	case store != "":
		shown := store
		if u, err := url.Parse(store); err == nil {
			shown = u.Redacted()
		}
		return fmt.Sprintf("The store is loaded into %s. Start it with: baton serve --store %s --data %s", shown, shown, dir)
	case m.Store == "postgres" && m.StoreDump:
		return fmt.Sprintf("The PostgreSQL store is in the backup as a pg_dump: load %[1]s/%[2]s into a new, empty database (createdb NEWDB; psql -v ON_ERROR_STOP=1 --single-transaction -d postgres://.../NEWDB -f %[1]s/%[2]s), or restore again with --store postgres://.../NEWDB; then: baton serve --store postgres://.../NEWDB --data %[1]s",
			dir, StoreDumpName)
	case m.Store == "postgres":
		return "Restore the PostgreSQL database with its own tools, then: baton serve --store postgres://... --data " + dir
	}
	return "Start it with: baton serve --data " + dir
}
