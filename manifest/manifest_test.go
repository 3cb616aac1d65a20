package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

// writeFiles writes name → content into a new folder and returns it.
func writeFiles(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		source  string // want Source and no error, or:
		wantErr string // part of the EUNPROCESSABLE message
	}{
		{"baton.toml", map[string]string{"baton.toml": "[run]\ncommand = \"./a\""}, "baton.toml", ""},
		{"baton.toml wins over Procfile", map[string]string{"baton.toml": "[run]\ncommand = \"./a\"", "Procfile": "web: ./b"}, "baton.toml", ""},
		{"Procfile", map[string]string{"Procfile": "web: ./b"}, "Procfile", ""},
		{"invalid baton.toml is not skipped", map[string]string{"baton.toml": "[run]\n", "Procfile": "web: ./b"}, "", "[run] command is missing"},
		{"Procfile without web", map[string]string{"Procfile": "worker: ./w"}, "", "no baton.toml or Procfile with a web: line at the artifact root, and no convention applies"},
		{"invalid Procfile", map[string]string{"Procfile": "web: a\nweb: b"}, "", "second web: line"},
		{"nothing", map[string]string{"README.md": "hi"}, "", "no baton.toml or Procfile with a web: line"},
		{"too large", map[string]string{"baton.toml": "[run]\ncommand = \"./a\"\n" + strings.Repeat("#", maxFileSize)}, "", "larger than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Load(writeFiles(t, tt.files))
			if tt.wantErr != "" {
				if baton.ErrorCode(err) != baton.EUNPROCESSABLE || !strings.Contains(baton.ErrorMessage(err), tt.wantErr) {
					t.Fatalf("Load = %v, want %s containing %q", err, baton.EUNPROCESSABLE, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Source != tt.source || m.Run.Instances != 1 || m.Health.Path != "/" {
				t.Fatalf("Load = %+v, want Source %q with defaults", m, tt.source)
			}
		})
	}
}

func TestLoadFolderNamedBatonToml(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "baton.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); baton.ErrorCode(err) != baton.EUNPROCESSABLE {
		t.Fatalf("Load = %v, want %s", err, baton.EUNPROCESSABLE)
	}
}

func TestLoadSymlinkOutside(t *testing.T) {
	outside := writeFiles(t, map[string]string{"baton.toml": "[run]\ncommand = \"./a\""})
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "baton.toml"), filepath.Join(dir, "baton.toml")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); baton.ErrorCode(err) != baton.EUNPROCESSABLE {
		t.Fatalf("Load through a link leading outside = %v, want %s", err, baton.EUNPROCESSABLE)
	}
}

func TestLoadMissingFolder(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("Load of a missing folder succeeded")
	}
}
