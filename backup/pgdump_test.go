package backup

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

func TestPGConn(t *testing.T) {
	for _, tc := range []struct {
		dsn, conn string
		env       []string
	}{
		{"postgres://baton@127.0.0.1:5432/db", "postgres://baton@127.0.0.1:5432/db", nil},
		{"postgres://baton:s3cret@db.example:5432/db?sslmode=require&pool_max_conns=20", "postgres://baton@db.example:5432/db?sslmode=require", []string{"PGPASSWORD=s3cret"}},
		{"postgresql://u:p%40ss@h/d", "postgresql://u@h/d", []string{"PGPASSWORD=p@ss"}},
	} {
		conn, env, err := pgConn(tc.dsn)
		if err != nil || conn != tc.conn || !slices.Equal(env, tc.env) {
			t.Errorf("pgConn(%q) = %q, %v, %v; want %q, %v", tc.dsn, conn, env, err, tc.conn, tc.env)
		}
	}
	if _, _, err := pgConn("sqlite"); baton.ErrorCode(err) != baton.EINVALID {
		t.Errorf("pgConn of a non-URL: %v", err)
	}
}

// TestPGDumpMissing: without pg_dump on the PATH, the dump fails with a
// sentence that says what to install.
func TestPGDumpMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := PGDump("postgres://baton@127.0.0.1:1/db")(context.Background(), filepath.Join(t.TempDir(), "store.sql"))
	if baton.ErrorCode(err) != baton.EUNAVAILABLE || !strings.Contains(err.Error(), "pg_dump") || !strings.Contains(err.Error(), "postgresql-client") {
		t.Errorf("dump without pg_dump: %v", err)
	}
}

// TestPGDumpFails: pg_dump that cannot reach the database fails with its
// own words.
func TestPGDumpFails(t *testing.T) {
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Fatal("pg_dump is not installed: install the postgresql package (test.sh does)")
	}
	err := PGDump("postgres://baton@127.0.0.1:1/db")(context.Background(), filepath.Join(t.TempDir(), "store.sql"))
	if baton.ErrorCode(err) != baton.EUNAVAILABLE || !strings.Contains(err.Error(), "pg_dump of the store failed") || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("dump of an unreachable database: %v", err)
	}
}
