package postgres_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/batonhq/baton/postgres"
	"github.com/jackc/pgx/v5"
)

// TestMigrationsRace: controllers starting together on an empty database
// all open it; the migrations run once.
func TestMigrationsRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := newDatabase(t)
	const n = 4
	dbs := make([]*postgres.DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	startGun := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGun
			dbs[i], errs[i] = postgres.Open(ctx, dsn)
		}()
	}
	close(startGun)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		defer dbs[i].Close()
	}
	if got, want := appliedMigrations(t, dsn), migrationFiles(t); got != want {
		t.Fatalf("schema_migrations has %d rows, want one per migration file (%d)", got, want)
	}
	// Each store works.
	for i, db := range dbs {
		if _, err := db.CreateApp(ctx, "app"+string(rune('a'+i))); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
}

// TestReopenKeepsData: opening a migrated database again applies nothing
// and keeps its data.
func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := newDatabase(t)
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateApp(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openDSN(t, dsn)
	if _, err := db.App(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	if got, want := appliedMigrations(t, dsn), migrationFiles(t); got != want {
		t.Fatalf("schema_migrations has %d rows after reopening, want %d", got, want)
	}
}

func appliedMigrations(t *testing.T, dsn string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func migrationFiles(t *testing.T) int {
	t.Helper()
	names, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	return len(names)
}

// TestOpenRefusesNewerSchema: a database a newer baton migrated (a
// migration this binary does not have) is refused, naming both schemas,
// instead of being run on.
func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := newDatabase(t)
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (9999, 'from the future')`)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, dsn)
	if err == nil || !strings.Contains(err.Error(), "schema 9999") {
		t.Fatalf("open a store of schema 9999: %v, want a refusal naming it", err)
	}
}
