package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/selfsigned"
)

// writePEM writes a self-signed certificate and its key, and a key that
// belongs to no certificate; it returns their paths.
func writePEM(t *testing.T) (cert, key, otherKey string) {
	t.Helper()
	dir := t.TempDir()
	c, err := selfsigned.New("apps.localhost")
	if err != nil {
		t.Fatal(err)
	}
	other, err := selfsigned.New("another")
	if err != nil {
		t.Fatal(err)
	}
	if cert, key, err = c.WriteFiles(dir, "cert"); err != nil {
		t.Fatal(err)
	}
	otherKey = filepath.Join(dir, "other-key.pem")
	if err := os.WriteFile(otherKey, other.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key, otherKey
}

// TestServeProxyTLSFlagsRefusedAtStart: a half-given or unusable proxy
// certificate stops `baton serve` before it touches anything, with a
// message that says what is wrong.
func TestServeProxyTLSFlagsRefusedAtStart(t *testing.T) {
	cert, key, otherKey := writePEM(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate\n"), 0o600)
	tests := []struct {
		name  string
		flags []string
		want  []string
	}{
		{"cert without key", []string{"--proxy-tls-cert", cert}, []string{"--proxy-tls-cert needs --proxy-tls-key"}},
		{"key without cert", []string{"--proxy-tls-key", key}, []string{"--proxy-tls-key needs --proxy-tls-cert"}},
		{"missing file", []string{"--proxy-tls-cert", cert + ".nope", "--proxy-tls-key", key}, []string{cert + ".nope", "no such file"}},
		{"not PEM", []string{"--proxy-tls-cert", garbage, "--proxy-tls-key", key}, []string{garbage, "PEM"}},
		{"key of another certificate", []string{"--proxy-tls-cert", cert, "--proxy-tls-key", otherKey}, []string{"private key does not match"}},
		{"files swapped", []string{"--proxy-tls-cert", key, "--proxy-tls-key", cert}, []string{"--proxy-tls-cert " + key}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			var stdout, stderr bytes.Buffer
			args := append([]string{"serve", "--data", data, "--api", "127.0.0.1:0", "--proxy", "127.0.0.1:0"}, tt.flags...)
			// Bounded: a serve that started despite the bad flags must fail
			// the test, not hang it.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if code := Run(ctx, args, &stdout, &stderr); code != ExitError {
				t.Fatalf("exit %d, want %d; stderr %s", code, ExitError, &stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q does not say %q", stderr.String(), w)
				}
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data directory was created before the certificate was checked (%v)", err)
			}
		})
	}
}

// main starts 'baton serve' again tuned for serving (internal/schedtune),
// and nothing else: a short command does not pay for an exec.
func TestServes(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"serve"}, true},
		{[]string{"serve", "--data", "/tmp/x", "--proxy", ":8080"}, true},
		{[]string{"--url", "http://127.0.0.1:1", "serve"}, true},
		{[]string{"serve", "--help"}, true},
		{[]string{"deploy", "serve"}, false},
		{[]string{"status"}, false},
		{[]string{"--help"}, false},
		{[]string{"no-such-command"}, false},
		{nil, false},
	} {
		if got := Serves(tt.args); got != tt.want {
			t.Errorf("Serves(%q) = %v; want %v", tt.args, got, tt.want)
		}
	}
}
