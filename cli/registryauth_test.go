package cli

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
)

func TestRegistryCredentials(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth.json")
	auth := base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))
	if err := os.WriteFile(file, []byte(`{"auths": {"registry.example.com:5000": {"auth": "`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	user, pass, err := registryCredentials("registry.example.com:5000/team/hello:v2", file)
	if err != nil || user != "ci" || pass != "s3cret" {
		t.Fatalf("got %q %q %v, want ci s3cret", user, pass, err)
	}
	user, pass, err = registryCredentials("other.example.com/hello:v2", file)
	if err != nil || user != "" || pass != "" {
		t.Fatalf("another registry: got %q %q %v, want none", user, pass, err)
	}
	if _, _, err := registryCredentials("hello:v2", filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("a missing auth file gave no error")
	}
}
