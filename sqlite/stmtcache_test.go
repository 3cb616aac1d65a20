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
	s := openWithApps(t, "a")
	// Rows open on the writer's connection while the cache overflows:
	// their statement is dropped from it, and closed once they close.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const q = `SELECT name FROM apps`
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var open *cachedStmt
	conn.Raw(func(dc any) error { open = dc.(*cachingConn).stmts[q]; return nil })
	if open == nil || !open.busy {
		t.Fatalf("%q: cached %+v, want cached and busy", q, open)
	}
	for i := range 2*maxCachedStmts + 10 {
		var n int
		if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT %d + ?`, i), 1).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("SELECT %d + 1: %d, %v", i, n, err)
		}
	}
	conn.Raw(func(dc any) error {
		c := dc.(*cachingConn)
		if len(c.stmts) > maxCachedStmts {
			t.Errorf("%d statements cached, at most %d", len(c.stmts), maxCachedStmts)
		}
		if c.stmts[q] == open {
			t.Errorf("%q still cached after %d others", q, 2*maxCachedStmts+10)
		}
		return nil
	})
	if open.closed {
		t.Fatalf("%q closed while its rows are open", q)
	}
	var name string
	if !rows.Next() || rows.Scan(&name) != nil || name != "a" {
		t.Fatalf("the open rows after the cache overflowed: %q, %v", name, rows.Err())
	}
	rows.Close()
	if !open.closed {
		t.Fatalf("%q, dropped from the cache while busy, not closed when its rows closed", q)
	}
}
