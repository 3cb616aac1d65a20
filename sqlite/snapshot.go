package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/batonhq/baton"
)

// Snapshot writes a consistent copy of the database to dest, a file that
// must not exist yet, while the store keeps serving. It uses VACUUM INTO
// on a connection of its own: that is one read transaction, so writers
// (WAL mode) go on and the store's single connection is not held. A file
// copy of a live WAL database is not consistent; this is.
func (s *DB) Snapshot(ctx context.Context, dest string) error {
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot to %s: the file exists", dest)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+s.path+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("open sqlite for a snapshot: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dest); err != nil {
		os.Remove(dest)
		return fmt.Errorf("snapshot the database: %w", err)
	}
	return nil
}

// SchemaVersion is the newest schema (migration number) this binary
// knows; Open migrates a store up to it.
func SchemaVersion() int {
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	latest := 0
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		if v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0]); err == nil && v > latest {
			latest = v
		}
	}
	return latest
}

// FileInfo is what Inspect learns of a database file that is not open.
type FileInfo struct {
	// SchemaVersion is the newest migration applied to it.
	SchemaVersion int
	// Artifacts are the digests of the artifacts its revisions and its
	// unfinished deployments need, sorted.
	Artifacts []string
	// SecretSample is one secret setting with its value as stored
	// (sealed), for a check that a key opens the secrets; nil when there
	// are none.
	SecretSample *baton.Setting
}

// Inspect checks the database file at path (a snapshot, or one restored
// from a backup) and reads its schema version and the artifacts it needs.
// It never migrates or writes the file; a file that is not an intact
// baton database is an error.
func Inspect(ctx context.Context, path string) (FileInfo, error) {
	if _, err := os.Stat(path); err != nil {
		return FileInfo{}, err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return FileInfo{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var check string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil {
		return FileInfo{}, fmt.Errorf("check %s: %w", path, err)
	}
	if check != "ok" {
		return FileInfo{}, fmt.Errorf("database %s is damaged: %s", path, check)
	}
	var info FileInfo
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return FileInfo{}, fmt.Errorf("database %s is not a baton store: %w", path, err)
	}
	info.SchemaVersion = int(v.Int64)
	rows, err := db.QueryContext(ctx, `SELECT artifact_digest FROM revisions
		UNION SELECT artifact_digest FROM deployments WHERE state IN ('queued', 'running')`)
	if err != nil {
		return FileInfo{}, fmt.Errorf("read the artifacts of %s: %w", path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return FileInfo{}, err
		}
		if d != "" {
			info.Artifacts = append(info.Artifacts, d)
		}
	}
	if err := rows.Err(); err != nil {
		return FileInfo{}, err
	}
	sort.Strings(info.Artifacts)
	var st baton.Setting
	err = db.QueryRowContext(ctx, `SELECT app, slot, key, value FROM settings WHERE secret = 1 ORDER BY app, slot, key LIMIT 1`).
		Scan(&st.App, &st.Slot, &st.Key, &st.Value)
	switch {
	case err == nil:
		st.Secret = true
		info.SecretSample = &st
	case !errors.Is(err, sql.ErrNoRows):
		return FileInfo{}, fmt.Errorf("read the settings of %s: %w", path, err)
	}
	return info, nil
}
