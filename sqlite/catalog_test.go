package sqlite

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/batonhq/baton"
)

func openDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// listApps is db.Apps, failing the test on an error.
func listApps(t *testing.T, db *DB) []baton.App {
	t.Helper()
	apps, err := db.Apps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return apps
}

// TestAppListFollowsEveryChange changes apps and slots behind the store's
// methods, column by column and row by row, and checks that the list
// after each change is what a fresh read gives: a change the catalog's
// version did not see would leave the old list served.
func TestAppListFollowsEveryChange(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	for _, name := range []string{"a", "b"} {
		if _, err := db.CreateApp(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, change := range []string{
		`INSERT INTO apps (name, created_at) VALUES ('c', 1)`,
		`UPDATE apps SET revision_mode = 'multiple' WHERE name = 'a'`,
		`UPDATE apps SET frozen_reason = 'audit', frozen_by = 'ops', frozen_at = 2 WHERE name = 'b'`,
		`UPDATE apps SET controller = 'host-2', routing_generation = routing_generation + 1 WHERE name = 'a'`,
		`UPDATE apps SET kudu_on_conflict = 'cancel', git_on_conflict = 'fail', registry_on_conflict = 'supersede' WHERE name = 'c'`,
		`INSERT INTO slots (app, name, created_at) VALUES ('a', 'staging', 3)`,
		`UPDATE slots SET live_revision = 'a--000001' WHERE app = 'a' AND name = 'production'`,
		`UPDATE slots SET auto_swap_to = 'production' WHERE app = 'a' AND name = 'staging'`,
		`DELETE FROM slots WHERE app = 'a' AND name = 'staging'`,
		`DELETE FROM apps WHERE name = 'b'`,
	} {
		listApps(t, db) // kept at the version before the change
		if _, err := db.db.ExecContext(ctx, change); err != nil {
			t.Fatalf("%s: %v", change, err)
		}
		got := listApps(t, db)
		db.catalog.mu.Lock()
		db.catalog.apps = nil
		db.catalog.mu.Unlock()
		if want := listApps(t, db); !reflect.DeepEqual(got, want) {
			t.Errorf("after %s the list is\n%+v\na fresh read gives\n%+v", change, got, want)
		}
	}
}

// TestAppListIsReusedAndCopied: while nothing changes the list comes from
// the catalog, and what a caller does to its copy stays in its copy.
func TestAppListIsReusedAndCopied(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	if _, err := db.CreateApp(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetFrozen(ctx, "a", &baton.Freeze{Reason: "audit", By: "ops"}); err != nil {
		t.Fatal(err)
	}
	first := listApps(t, db)
	want := listApps(t, db)
	if !reflect.DeepEqual(first, want) {
		t.Fatalf("two reads with no change between them differ:\n%+v\n%+v", first, want)
	}
	first[0].Name = "changed"
	first[0].Slots[0].LiveRevision = "changed"
	first[0].Slots = append(first[0].Slots, baton.Slot{App: "a", Name: "added"})
	first[0].Frozen.Reason = "changed"
	if got := listApps(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("a caller's changes to its list reached the next read:\n%+v\nwant\n%+v", got, want)
	}

	// The kept list is what the next read gives: mark it, read again.
	db.catalog.mu.Lock()
	db.catalog.apps[0].Slots[0].AutoSwapTo = "from-the-catalog"
	db.catalog.mu.Unlock()
	if got := listApps(t, db); got[0].Slots[0].AutoSwapTo != "from-the-catalog" {
		t.Errorf("a read with no change before it stepped the rows again (got %+v)", got[0].Slots[0])
	}
}
