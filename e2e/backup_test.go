package e2e

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backup"
	"github.com/batonhq/baton/pgtest"
)

// TestBackupRestore backs a serving baton up under load (no request
// fails), restores the archive into a new data directory, starts a second
// baton on it, and finds the same live revision answering with its secret
// setting, the same history and audit entries, and the tokens working.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "shop", appDir(t, "v1"))
	d, err := c.SetSettings(ctx, "shop", baton.ProductionSlot, []baton.Setting{
		{Key: "DB_PASSWORD", Value: "backup-s3cret", Secret: true}, {Key: "GREETING", Value: "hi"}}, baton.PolicyQueue)
	if err != nil {
		t.Fatal(err)
	}
	if final := waitFinal(t, c, d.ID); final.State != baton.StateSucceeded {
		t.Fatalf("settings change: %s %s", final.State, final.Error)
	}
	mustSucceed(t, c, "shop", appDir(t, "v2"))
	ci, err := c.CreateToken(ctx, api.TokenRequest{Name: "ci", Scope: baton.ScopeDeploy, Apps: []string{"shop"}})
	if err != nil {
		t.Fatal(err)
	}

	// The backup's own audit entry is written once it is done: the
	// archive holds everything before it.
	wantAudit, err := c.Audit(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}

	p := newProxyClient(b.proxyAddr)
	l := startLoad(t, p, "shop.localhost", 4)
	eventually(t, 10*time.Second, "load reaches v2", func() bool { return l.count("v2") > 0 })
	// Another app deploys in a loop meanwhile: the snapshot may hold a
	// running or queued deployment, which the restored baton recovers.
	if _, err := c.CreateApp(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "busy", appDir(t, "b0"))
	loopDirs := []string{appDir(t, "b1"), appDir(t, "b2")}
	stopLoop, loopDone := make(chan struct{}), make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stopLoop:
				loopDone <- nil
				return
			default:
			}
			res, err := deployErr(c, "busy", loopDirs[i%2], api.DeployOptions{})
			if err == nil {
				_, err = c.Follow(ctx, res.Deployment.ID, func(api.Event) {})
			}
			if err != nil {
				loopDone <- err
				return
			}
		}
	}()
	archive := filepath.Join(t.TempDir(), "baton.tar.gz")
	out, code := runCLI(t, b, "backup", archive)
	close(stopLoop)
	if err := <-loopDone; err != nil {
		t.Fatalf("deploy loop during the backup: %v", err)
	}
	if code != 0 || !strings.Contains(out, "artifacts") {
		t.Fatalf("baton backup: exit %d\n%s", code, out)
	}
	seen := l.count("v2")
	eventually(t, 10*time.Second, "load goes on after the backup", func() bool { return l.count("v2") > seen })
	if _, failures := l.finish(); len(failures) > 0 {
		t.Fatalf("%d requests failed during the backup, first: %s", len(failures), failures[0])
	}
	if out, code := runCLI(t, b, "backup", archive); code != 1 || !strings.Contains(out, "exists") {
		t.Errorf("backup over an existing file: exit %d\n%s", code, out)
	}

	wantApp, err := c.App(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	wantHistory, err := c.Deployments(ctx, "shop", 100)
	if err != nil {
		t.Fatal(err)
	}

	// Refusals: a data directory in use, and no key for secrets.
	if out, code := runCLI(t, b, "restore", archive, "--data", b.data); code != 1 || !strings.Contains(out, "not empty") {
		t.Errorf("restore onto a used data directory: exit %d\n%s", code, out)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if out, code := runCLI(t, b, "restore", archive, "--data", restored); code != 1 || !strings.Contains(out, "--key") {
		t.Errorf("restore without the key: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(restored); err == nil {
		t.Error("a refused restore created the data directory")
	}
	out, code = runCLI(t, b, "restore", archive, "--data", restored, "--key", filepath.Join(b.data, "secret.key"))
	if code != 0 || !strings.Contains(out, "baton serve --data "+restored) {
		t.Fatalf("baton restore: exit %d\n%s", code, out)
	}

	b2 := (&batonProc{t: t, data: restored, apiAddr: freeAddr(t), proxyAddr: freeAddr(t)}).launch()
	c2 := b2.client()
	p2 := newProxyClient(b2.proxyAddr)
	var body string
	eventually(t, 60*time.Second, "the restored baton serves shop v2", func() bool {
		status, b, err := p2.get("shop.localhost", "/")
		body = b
		return err == nil && status == 200 && version(b) == "v2"
	})
	eventually(t, 60*time.Second, "the restored baton serves busy", func() bool {
		status, b, err := p2.get("busy.localhost", "/")
		return err == nil && status == 200 && strings.HasPrefix(version(b), "b")
	})
	if !strings.Contains(body, `"DB_PASSWORD":"backup-s3cret"`) || !strings.Contains(body, `"GREETING":"hi"`) {
		t.Errorf("the restored app lacks its settings: %s", body)
	}
	gotApp, err := c2.App(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := gotApp.Slots[0].LiveRevision, wantApp.Slots[0].LiveRevision; got != want {
		t.Errorf("live revision after restore %s, want %s", got, want)
	}
	gotHistory, err := c2.Deployments(ctx, "shop", 100)
	if err != nil {
		t.Fatal(err)
	}
	if ids(gotHistory) != ids(wantHistory) {
		t.Errorf("history after restore:\n%s\nwant\n%s", ids(gotHistory), ids(wantHistory))
	}
	settings, err := c2.Settings(ctx, "shop", baton.ProductionSlot)
	if err != nil {
		t.Fatal(err)
	}
	if len(settings) != 2 {
		t.Errorf("settings after restore: %+v", settings)
	}
	gotAudit, err := c2.Audit(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if missing := missingAudit(gotAudit, wantAudit); len(missing) > 0 || len(wantAudit) == 0 {
		t.Errorf("audit after restore lacks %d of %d entries: %v", len(missing), len(wantAudit), missing)
	}
	if _, err := b2.clientWith(ci.Secret).WhoAmI(ctx); err != nil {
		t.Errorf("the ci token does not work on the restored baton: %v", err)
	}
	eventually(t, 30*time.Second, "status --check is clean on the restored baton", func() bool {
		_, code := runCLI(t, b2, "status", "--check")
		return code == 0
	})
}

// ids lists deployments as "id state" lines.
func ids(ds []baton.Deployment) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.ID + " " + string(d.State) + "\n")
	}
	return b.String()
}

// missingAudit lists the entries of want that got lacks.
func missingAudit(got, want []baton.AuditEntry) []string {
	have := map[int64]string{}
	for _, e := range got {
		have[e.ID] = e.Action + " " + e.Target + " " + e.Outcome
	}
	var out []string
	for _, e := range want {
		if line := e.Action + " " + e.Target + " " + e.Outcome; have[e.ID] != line {
			out = append(out, line)
		}
	}
	return out
}

// TestBackupPostgres: with a PostgreSQL store, the archive holds the
// artifacts and the note that the database is backed up with its own
// tools, and restores into a data directory with both.
func TestBackupPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	b := startBaton(t, "--store", dsn)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "pgapp"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "pgapp", appDir(t, "v1"))
	archive := filepath.Join(t.TempDir(), "pg.tar.gz")
	out, code := runCLI(t, b, "backup", archive, "--include-key")
	if code != 0 || !strings.Contains(out, "pg_dump") {
		t.Fatalf("baton backup: exit %d\n%s", code, out)
	}
	m, err := backup.ReadManifest(archive)
	if err != nil {
		t.Fatal(err)
	}
	if m.Store != "postgres" || m.Artifacts() < 1 || !m.KeyIncluded {
		t.Errorf("manifest: %+v", m)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	out, code = runCLI(t, b, "restore", archive, "--data", restored)
	if code != 0 || !strings.Contains(out, "--store postgres://") {
		t.Fatalf("baton restore: exit %d\n%s", code, out)
	}
	for _, name := range []string{backup.PostgresNote, "secret.key"} {
		if _, err := os.Stat(filepath.Join(restored, name)); err != nil {
			t.Errorf("restored data directory lacks %s: %v", name, err)
		}
	}
}

// TestBackupKilledLeavesNoWholeFile: `baton backup` killed with SIGKILL
// while the archive streams leaves no FILE, only a hidden partial file
// that does not read as a backup.
func TestBackupKilledLeavesNoWholeFile(t *testing.T) {
	t.Parallel()
	var archive bytes.Buffer
	if _, err := backup.Write(context.Background(), &archive, backup.Source{ArtifactDir: t.TempDir(), Version: "test"}); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/gzip")
		w.Write(archive.Bytes()[:archive.Len()/2])
		http.NewResponseController(w).Flush()
		select { // the rest never comes while the CLI lives
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	dir := t.TempDir()
	path := filepath.Join(dir, "b.tar.gz")
	cmd := exec.Command(batonBin, "backup", path)
	cmd.Env = append(os.Environ(), "BATON_URL="+srv.URL)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	var partial string
	eventually(t, 20*time.Second, "the partial backup file has the first half", func() bool {
		des, _ := os.ReadDir(dir)
		for _, de := range des {
			if fi, err := de.Info(); err == nil && fi.Size() >= int64(archive.Len()/2) {
				partial = filepath.Join(dir, de.Name())
				return true
			}
		}
		return false
	})
	cmd.Process.Kill()
	cmd.Wait()
	killed = true
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a killed backup left FILE")
	}
	if !strings.HasPrefix(filepath.Base(partial), ".") {
		t.Errorf("the partial file %s is not hidden", partial)
	}
	if _, err := backup.ReadManifest(partial); err == nil {
		t.Error("the partial file reads as a whole backup")
	}
}
