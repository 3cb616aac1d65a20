package artifact

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/batonhq/baton"
)

func TestDetectType(t *testing.T) {
	var emptyZip bytes.Buffer
	if err := zip.NewWriter(&emptyZip).Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string // "" means EUNPROCESSABLE
	}{
		{"zip", makeZip(t, file("a", "x")), KindZip},
		{"empty zip", emptyZip.Bytes(), KindZip},
		{"tar.gz", makeTarGz(t, file("a", "x")), KindTarGz},
		{"gzip magic only", []byte{0x1f, 0x8b}, KindTarGz},
		{"plain tar", make([]byte, 1024), ""},
		{"text", []byte("hello world"), ""},
		{"one byte", []byte("P"), ""},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "artifact")
			if err := os.WriteFile(p, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := DetectType(p)
			if tt.want == "" {
				wantCode(t, err, baton.EUNPROCESSABLE)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("DetectType = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestDetectTypeMissing(t *testing.T) {
	if _, err := DetectType(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("DetectType of a missing file succeeded")
	}
}
