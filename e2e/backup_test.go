package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backup"
	"github.com/batonhq/baton/pgtest"
)

// TestBackupRestore backs a serving baton up under load (no request
// fails) while one app deploys in a loop, restores the archive into a new
// data directory, starts a second baton on it on other ports with the
// image registry gone, and finds every app serving the same revisions:
// shop (two slots, a secret setting the app sees), multi (three revisions
// sharing traffic), img (a container image, started from the archive's
// copy), with the same deployment history and audit, the tokens working
// and status --check clean.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := startBaton(t)
	c := b.client()
	p := newProxyClient(b.proxyAddr)

	// shop: production with a secret setting, and a staging slot.
	if _, err := c.CreateApp(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSlot(ctx, "shop", "staging"); err != nil {
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
	if d := waitFinal(t, c, deploy(t, c, "shop", appDir(t, "s1"), api.DeployOptions{Slot: "staging"}).ID); d.State != baton.StateSucceeded {
		t.Fatalf("staging deploy: %s %s", d.State, d.Error)
	}
	// multi: three revisions share production's traffic.
	revs := multipleApp(t, b, "multi", 3)
	if d, err := c.SetTraffic(ctx, "multi", "production", map[string]int{revs[0]: 50, revs[1]: 30, revs[2]: 20}, ""); err != nil {
		t.Fatal(err)
	} else if final := waitFinal(t, c, d.ID); final.State != baton.StateSucceeded {
		t.Fatalf("traffic: %s %s", final.State, final.Error)
	}
	// img: a container image pulled from a registry, which is gone when
	// the restored baton starts.
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	regHost := strings.TrimPrefix(reg.URL, "http://")
	pushTo(t, regHost+"/hello:iv1", helloImage(t, "iv1", nil))
	if _, err := c.CreateApp(ctx, "img"); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, b, "deploy", "img", "--image", regHost+"/hello:iv1", "--insecure-registry", "--wait"); code != 0 {
		t.Fatalf("deploy --image: exit %d\n%s", code, out)
	}
	waitServes(t, p, "img.localhost", "iv1")
	waitServes(t, p, "shop-staging.localhost", "s1")

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
	quiet := []string{"shop", "multi", "img"} // no deploys from here on
	wantHistory := map[string][]baton.Deployment{}
	wantRouting := map[string]map[string]int{}
	for _, app := range quiet {
		if wantHistory[app], err = c.Deployments(ctx, app, 100); err != nil {
			t.Fatal(err)
		}
		wantRouting[app] = routingOf(t, c, app)
	}
	wantImageRev, wantImage := liveImage(t, c, "img", baton.ProductionSlot)
	if wantImage == nil {
		t.Fatal("img serves no image revision")
	}

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
	loopRan := make(chan struct{})
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
			if i == 0 {
				close(loopRan)
			}
		}
	}()
	<-loopRan // the backup starts with the loop going
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
	if out, code := runCLI(t, b, "backup", archive+".dump", "--store-dump"); code != 1 || !strings.Contains(out, "PostgreSQL") {
		t.Errorf("backup --store-dump of a SQLite store: exit %d\n%s", code, out)
	}
	m, err := backup.ReadManifest(archive)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Images) != 1 || m.Images[0].Digest != wantImage.Digest || len(m.MissingImages) > 0 || len(m.MissingArtifacts) > 0 {
		t.Errorf("manifest images %+v (missing %v), artifacts missing %v; want %s", m.Images, m.MissingImages, m.MissingArtifacts, wantImage.Digest)
	}
	// The original's audit after the backup: the restored one must match
	// it entry for entry as far as it goes.
	afterAudit, err := c.Audit(ctx, 1000)
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
	if code != 0 || !strings.Contains(out, "baton serve --data "+restored) || !strings.Contains(out, "1 images") {
		t.Fatalf("baton restore: exit %d\n%s", code, out)
	}

	// The registry goes: the restored baton has the image from the archive.
	reg.Close()
	b2 := (&batonProc{t: t, data: restored, apiAddr: freeAddr(t), proxyAddr: freeAddr(t)}).launch()
	c2 := b2.client()
	// Read before anything is done on it (its audit grows after).
	gotAudit, err := c2.Audit(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	p2 := newProxyClient(b2.proxyAddr)
	var body string
	eventually(t, 60*time.Second, "the restored baton serves shop v2", func() bool {
		status, b, err := p2.get("shop.localhost", "/")
		body = b
		return err == nil && status == 200 && version(b) == "v2"
	})
	if !strings.Contains(body, `"DB_PASSWORD":"backup-s3cret"`) || !strings.Contains(body, `"GREETING":"hi"`) {
		t.Errorf("the restored app lacks its settings: %s", body)
	}
	waitServes(t, p2, "shop-staging.localhost", "s1")
	waitServes(t, p2, "img.localhost", "iv1")
	eventually(t, 60*time.Second, "the restored baton serves busy", func() bool {
		status, b, err := p2.get("busy.localhost", "/")
		return err == nil && status == 200 && strings.HasPrefix(version(b), "b")
	})
	versions := map[string]bool{}
	eventually(t, 60*time.Second, "the restored multi answers from v1, v2 and v3", func() bool {
		if status, b, err := p2.get("multi.localhost", "/"); err == nil && status == 200 {
			versions[version(b)] = true
		}
		return versions["v1"] && versions["v2"] && versions["v3"]
	})
	if rev, img := liveImage(t, c2, "img", baton.ProductionSlot); rev != wantImageRev || img == nil || img.Digest != wantImage.Digest {
		t.Errorf("img after restore runs %s %+v, want %s %+v", rev, img, wantImageRev, wantImage)
	}
	for _, app := range quiet {
		got, err := c2.Deployments(ctx, app, 100)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := jsonOf(t, got), jsonOf(t, wantHistory[app]); g != w {
			t.Errorf("history of %s after restore:\n%s\nwant\n%s", app, g, w)
		}
		if g, w := routingOf(t, c2, app), wantRouting[app]; !maps.Equal(g, w) {
			t.Errorf("routing of %s after restore %v, want %v", app, g, w)
		}
	}
	settings, err := c2.Settings(ctx, "shop", baton.ProductionSlot)
	if err != nil {
		t.Fatal(err)
	}
	if len(settings) != 2 {
		t.Errorf("settings after restore: %+v", settings)
	}
	if missing := missingAudit(gotAudit, wantAudit); len(missing) > 0 || len(wantAudit) == 0 {
		t.Errorf("audit after restore lacks %d of %d entries: %v", len(missing), len(wantAudit), missing)
	}
	byID := map[int64]baton.AuditEntry{}
	for _, e := range afterAudit {
		byID[e.ID] = e
	}
	for _, e := range gotAudit {
		if w, ok := byID[e.ID]; !ok || jsonOf(t, e) != jsonOf(t, w) {
			t.Errorf("restored audit entry %s\nis not the original's %s", jsonOf(t, e), jsonOf(t, w))
		}
	}
	if _, err := b2.clientWith(ci.Secret).WhoAmI(ctx); err != nil {
		t.Errorf("the ci token does not work on the restored baton: %v", err)
	}
	eventually(t, 30*time.Second, "status --check is clean on the restored baton", func() bool {
		_, code := runCLI(t, b2, "status", "--check")
		return code == 0
	})
}

// jsonOf is v as JSON, for comparing API listings whole.
func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
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
// tools; with --store-dump it holds a pg_dump of the store instead, which
// baton restore --store loads (psql) into an empty database, refusing one
// that is not, and a baton then serves from it on the restored data
// directory: the same revision answers, with the same history.
func TestBackupPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	b := startBaton(t, "--store", dsn)
	c := b.client()
	if _, err := c.CreateApp(ctx, "pgapp"); err != nil {
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
	if m.Store != "postgres" || m.Artifacts() < 1 || !m.KeyIncluded || m.StoreDump {
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

	// --store-dump: pg_dump (the postgresql package's, the server's
	// major version) into the archive.
	wantHistory, err := c.Deployments(ctx, "pgapp", 100)
	if err != nil {
		t.Fatal(err)
	}
	dumped := filepath.Join(t.TempDir(), "dumped.tar.gz")
	out, code = runCLI(t, b, "backup", dumped, "--include-key", "--store-dump")
	if code != 0 || !strings.Contains(out, "as a pg_dump") {
		t.Fatalf("baton backup --store-dump: exit %d\n%s", code, out)
	}
	if m, err := backup.ReadManifest(dumped); err != nil || !m.StoreDump || m.Store != "postgres" {
		t.Fatalf("manifest of the dump: %+v, %v", m, err)
	}
	plain := filepath.Join(t.TempDir(), "restored-dump")
	out, code = runCLI(t, b, "restore", dumped, "--data", plain)
	if code != 0 || !strings.Contains(out, "psql") {
		t.Fatalf("baton restore of the dump: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(plain, backup.StoreDumpName)); err != nil {
		t.Errorf("restored without --store, the dump is not in the data directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(plain, backup.PostgresNote)); err == nil {
		t.Error("a backup with the store's dump says the database is not in it")
	}
	// --store loads the dump with psql, only into an empty database.
	restored = filepath.Join(t.TempDir(), "restored-store")
	if out, code := runCLI(t, b, "restore", dumped, "--data", restored, "--store", dsn); code != 1 || !strings.Contains(out, "empty database") {
		t.Errorf("restore --store into the serving database: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(restored); err == nil {
		t.Error("a refused restore created the data directory")
	}
	newDSN := pgtest.NewDatabase(t)
	out, code = runCLI(t, b, "restore", dumped, "--data", restored, "--store", newDSN)
	if code != 0 || !strings.Contains(out, "baton serve --store") {
		t.Fatalf("baton restore --store: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(restored, backup.StoreDumpName)); err == nil {
		t.Error("the dump loaded with --store was kept in the data directory")
	}
	b2 := (&batonProc{t: t, data: restored, apiAddr: freeAddr(t), proxyAddr: freeAddr(t), extra: []string{"--store", newDSN}}).launch()
	waitServes(t, newProxyClient(b2.proxyAddr), "pgapp.localhost", "v1")
	got, err := b2.client().Deployments(ctx, "pgapp", 100)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := jsonOf(t, got), jsonOf(t, wantHistory); g != w {
		t.Errorf("history from the dump:\n%s\nwant\n%s", g, w)
	}
}

// TestBackupKilledLeavesNoWholeFile: kill -9 of `baton backup`, and then
// of the baton server, in the middle of a backup (the server holds each
// backup after its manifest: test hook) leaves no FILE. The killed CLI
// leaves a hidden partial file that does not read as a backup; with the
// server killed, the CLI fails and removes its partial file; the server
// started again keeps nothing of the backup in its data directory.
func TestBackupKilledLeavesNoWholeFile(t *testing.T) {
	t.Parallel()
	b := (&batonProc{t: t, data: t.TempDir(), apiAddr: freeAddr(t), proxyAddr: freeAddr(t),
		env: []string{"BATON_TEST_BACKUP_PAUSE=5m"}}).launch()
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "kept"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "kept", appDir(t, "v1"))
	dir := t.TempDir()
	backupCLI := func(path string) *exec.Cmd {
		cmd := exec.Command(batonBin, "backup", path)
		cmd.Env = append(os.Environ(), "BATON_URL=http://"+b.apiAddr)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		return cmd
	}
	// partialFile waits for a file in dir, besides those in old, that
	// holds the start of the archive (the manifest came).
	partialFile := func(old ...string) string {
		var partial string
		eventually(t, 20*time.Second, "the partial backup file has the archive's start", func() bool {
			des, _ := os.ReadDir(dir)
			for _, de := range des {
				if fi, err := de.Info(); err == nil && fi.Size() > 0 && !slices.Contains(old, de.Name()) {
					partial = de.Name()
					return true
				}
			}
			return false
		})
		return partial
	}

	// The CLI killed.
	path := filepath.Join(dir, "b.tar.gz")
	cmd := backupCLI(path)
	partial := partialFile()
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a killed backup left FILE")
	}
	if !strings.HasPrefix(partial, ".") {
		t.Errorf("the partial file %s is not hidden", partial)
	}
	if _, err := backup.ReadManifest(filepath.Join(dir, partial)); err == nil {
		t.Error("the partial file reads as a whole backup")
	}

	// The server killed.
	path = filepath.Join(dir, "c.tar.gz")
	cmd = backupCLI(path)
	partialFile(partial)
	b.stop(syscall.SIGKILL)
	if err := cmd.Wait(); err == nil {
		t.Error("baton backup exited 0 with the server killed during the backup")
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a backup cut by a killed server left FILE")
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 || des[0].Name() != partial {
		t.Errorf("after the server was killed, %s holds %v, want only the first partial file %s", dir, des, partial)
	}
	// Started again, baton removes what the backup left in DATA/tmp.
	b.start()
	if des, _ := os.ReadDir(filepath.Join(b.data, "tmp")); len(des) > 0 {
		t.Errorf("DATA/tmp holds %v after a restart", des)
	}
}
