package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/batonhq/baton/sqlite"
)

// TestSnapshotWhileWriting takes a snapshot while another goroutine keeps
// creating apps: the snapshot opens as an intact store of the current
// schema holding a prefix of the writes, and the writes never fail.
func TestSnapshotWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreateApp(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.CreateApp(ctx, fmt.Sprintf("app%d", i)); err != nil {
				writeErr = err
				return
			}
		}
	}()
	snap := filepath.Join(dir, "snap.db")
	err = db.Snapshot(ctx, snap)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if writeErr != nil {
		t.Fatalf("a write during the snapshot failed: %v", writeErr)
	}
	info, err := sqlite.Inspect(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	if info.SchemaVersion != sqlite.SchemaVersion() {
		t.Errorf("snapshot schema %d, want %d", info.SchemaVersion, sqlite.SchemaVersion())
	}
	if _, err := os.Stat(snap + "-wal"); err == nil {
		t.Error("the snapshot left a WAL file beside it")
	}
	copyDB, err := sqlite.Open(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	if _, err := copyDB.App(ctx, "before"); err != nil {
		t.Errorf("the snapshot lacks the app created before it: %v", err)
	}
	if err := db.Snapshot(ctx, snap); err == nil {
		t.Error("a snapshot over an existing file succeeded")
	}
}

func TestInspectRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	if err := os.WriteFile(path, []byte("not a database at all, just text that is long enough"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Inspect(context.Background(), path); err == nil {
		t.Fatal("Inspect accepted a file that is not a database")
	}
}

// TestOpenRefusesNewerSchema: a binary older than the store (a newer one
// migrated it) refuses to open it, naming both schemas, and leaves it as
// it is.
func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "baton.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	newer := sqlite.SchemaVersion() + 1
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, newer); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	_, err = sqlite.Open(ctx, path)
	if err == nil {
		t.Fatal("an older baton opened a store of a newer schema")
	}
	for _, want := range []string{fmt.Sprintf("schema %d", newer), fmt.Sprintf("schema %d", sqlite.SchemaVersion())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if info, err := sqlite.Inspect(ctx, path); err != nil || info.SchemaVersion != newer {
		t.Errorf("the refused store changed: %+v %v", info, err)
	}
}
