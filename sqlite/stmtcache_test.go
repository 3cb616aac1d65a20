package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// cachedConn runs fn on the writer's one connection.
func cachedConn(t *testing.T, s *DB, fn func(c *cachingConn)) {
	t.Helper()
	conn, err := s.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Raw(func(dc any) error { fn(dc.(*cachingConn)); return nil }); err != nil {
		t.Fatal(err)
	}
}

// openWithApps opens a store in a temp folder with the apps named.
func openWithApps(t *testing.T, apps ...string) *DB {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, name := range apps {
		if _, err := s.CreateApp(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestStatementsArePreparedOnce(t *testing.T) {
	ctx := context.Background()
	s := openWithApps(t, "a", "b", "c")
	const q = `SELECT name FROM apps WHERE name = ?`
	var first any // the statement prepared first
	for _, name := range []string{"a", "b", "c"} {
		var got string
		if err := s.db.QueryRowContext(ctx, q, name).Scan(&got); err != nil || got != name {
			t.Fatalf("%s: got %q, %v", name, got, err)
		}
		cachedConn(t, s, func(c *cachingConn) {
			cs := c.stmts[q]
			if cs == nil {
				t.Fatalf("%q is not cached", q)
			}
			if cs.busy {
				t.Errorf("%q still busy after its row was read", q)
			}
			if first == nil {
				first = cs.stmt
			} else if cs.stmt != first {
				t.Errorf("%q prepared again", q)
			}
		})
	}
}

// The same query inside the loop over its own rows gets a statement of
// its own: sharing one would reset the outer rows.
func TestSameQueryNestedInItsRows(t *testing.T) {
	ctx := context.Background()
	s := openWithApps(t, "a", "b", "c")
	const q = `SELECT name FROM apps WHERE name >= ? ORDER BY name`
	var pairs []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		outer, err := tx.QueryContext(ctx, q, "")
		if err != nil {
			return err
		}
		defer outer.Close()
		for outer.Next() {
			var o string
			if err := outer.Scan(&o); err != nil {
				return err
			}
			inner, err := tx.QueryContext(ctx, q, o)
			if err != nil {
				return err
			}
			for inner.Next() {
				var i string
				if err := inner.Scan(&i); err != nil {
					inner.Close()
					return err
				}
				pairs = append(pairs, o+i)
			}
			if err := inner.Close(); err != nil {
				return err
			}
		}
		return outer.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(pairs), "[aa ab ac bb bc cc]"; got != want {
		t.Fatalf("pairs %s, want %s", got, want)
	}
}

func TestStatementCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	s := openWithApps(t)
	for i := range 2*maxCachedStmts + 10 {
		var n int
		if err := s.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT %d + ?`, i), 1).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("SELECT %d + 1: %d, %v", i, n, err)
		}
	}
	cachedConn(t, s, func(c *cachingConn) {
		if len(c.stmts) > maxCachedStmts {
			t.Errorf("%d statements cached, at most %d", len(c.stmts), maxCachedStmts)
		}
	})
}
