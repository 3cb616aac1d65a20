package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton/backup"
)

func run(args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// TestServiceUnitVerifies: the unit `service install --print` prints has
// the sandboxing and restart settings, and systemd-analyze verify passes
// on it (when systemd is installed).
func TestServiceUnitVerifies(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "my baton")
	unit, stderr, code := run("service", "install", "--print", "--bin", exe, "--data", data, "--user", "root")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Type=notify", "NotifyAccess=all", "ExecReload=/bin/kill -USR2 $MAINPID", "Restart=on-failure",
		"KillMode=process", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "NoNewPrivileges=true", "ProtectSystem=strict",
		`ReadWritePaths="` + data + `"`, `--data "` + data + `"`, "WantedBy=multi-user.target"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	path := filepath.Join(t.TempDir(), "baton.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestServiceInstallWritesUnit(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := run("service", "install", "--dir", dir, "--name", "batontest", "--bin", "/usr/local/bin/baton")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	fi, err := os.Stat(filepath.Join(dir, "batontest.service"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("unit file: %v %v", fi, err)
	}
	if !strings.Contains(stdout, "systemctl daemon-reload && systemctl enable --now batontest") {
		t.Errorf("no next steps: %s", stdout)
	}
	if _, stderr, code := run("service", "install", "--print", "--data", "rel/dir"); code != 1 || !strings.Contains(stderr, "absolute") {
		t.Errorf("relative --data: exit %d: %s", code, stderr)
	}
}

func TestVersionJSON(t *testing.T) {
	stdout, stderr, code := run("version", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version == "" || !strings.HasPrefix(v.GoVersion, "go") || v.SchemaVersion < 1 {
		t.Errorf("version: %+v", v)
	}
}

// TestBackupWritesOnlyWholeArchives: an archive cut off by the server
// leaves neither FILE nor a partial file; a whole one becomes FILE.
func TestBackupWritesOnlyWholeArchives(t *testing.T) {
	var whole bytes.Buffer
	if _, err := backup.Write(context.Background(), &whole, backup.Source{ArtifactDir: t.TempDir(), Version: "test"}); err != nil {
		t.Fatal(err)
	}
	f := newFakeAPI(t)
	var cut atomic.Bool
	cut.Store(true)
	f.mux.HandleFunc("POST /api/v1/backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/gzip")
		if cut.Load() {
			w.Write(whole.Bytes()[:whole.Len()/2])
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Write(whole.Bytes())
	})
	dir := t.TempDir()
	path := filepath.Join(dir, "b.tar.gz")
	if _, stderr, code := f.run(context.Background(), "backup", path); code != 1 || !strings.Contains(stderr, "cut off") {
		t.Errorf("cut archive: exit %d: %s", code, stderr)
	}
	if des, _ := os.ReadDir(dir); len(des) > 0 {
		t.Errorf("a cut backup left %s", des[0].Name())
	}
	cut.Store(false)
	stdout, stderr, code := f.run(context.Background(), "backup", path)
	if code != 0 || !strings.Contains(stdout, "pg_dump") {
		t.Fatalf("whole archive: exit %d: %s%s", code, stdout, stderr)
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Errorf("after a backup the folder holds %d files", len(des))
	}
	if _, stderr, code := f.run(context.Background(), "backup", path); code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("backup over an existing file: exit %d: %s", code, stderr)
	}
	if _, stderr, code := run("restore", path); code != 1 || !strings.Contains(stderr, "--data") {
		t.Errorf("restore without --data: exit %d: %s", code, stderr)
	}
}
