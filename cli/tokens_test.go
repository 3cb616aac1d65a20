package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestResolveToken: --token, then BATON_TOKEN, then the admin token file
// of the data directory — but only for a server on this machine.
func TestResolveToken(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte("baton_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BATON_DATA", dir)
	t.Setenv("BATON_TOKEN", "")
	tests := []struct {
		name, flag, env, url string
		want, from           string
	}{
		{"flag wins", "baton_flag", "baton_env", "http://127.0.0.1:7070", "baton_flag", "--token"},
		{"then the environment", "", "baton_env", "http://127.0.0.1:7070", "baton_env", "BATON_TOKEN"},
		{"then the local file", "", "", "http://127.0.0.1:7070", "baton_file", filepath.Join(dir, "admin.token")},
		{"localhost is local", "", "", "http://localhost:7070", "baton_file", filepath.Join(dir, "admin.token")},
		{"IPv6 loopback is local", "", "", "http://[::1]:7070", "baton_file", filepath.Join(dir, "admin.token")},
		{"never to a remote server", "", "", "https://baton.example.com", "", ""},
		{"nor to a LAN address", "", "", "http://10.0.0.5:7070", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("BATON_TOKEN", tt.env)
			got, from := resolveToken(tt.flag, tt.url)
			if got != tt.want || from != tt.from {
				t.Fatalf("resolveToken = %q from %q, want %q from %q", got, from, tt.want, tt.from)
			}
		})
	}
}
