package e2e

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

func zipOf(t testing.TB, entries map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range entries {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	zw.Close()
	return buf.Bytes()
}

func tarGzOf(t testing.TB, hdrs []*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// TestBadArtifacts: each hostile or broken artifact gives a clear error,
// leaves the live revision serving, writes nothing outside the temp area,
// and the temp area is cleaned up.
func TestBadArtifacts(t *testing.T) {
	t.Parallel()
	b := startBaton(t, "--max-upload", "1048576")
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "hello", appDir(t, "v1"))
	manifest := "[run]\ncommand = \"./hello\"\n"
	cases := []struct {
		name, contentType string
		body              []byte
		wantUpload        string // error code at upload, or "" when the deployment itself fails
		wantText          string
	}{
		{"corrupt gzip", "application/gzip", append([]byte{0x1f, 0x8b, 8, 0}, bytes.Repeat([]byte{0xff}, 200)...), "", "corrupt"},
		{"not an archive", "application/zip", []byte("hello, I am text"), baton.EUNPROCESSABLE, "neither a zip"},
		{"zip slip", "application/zip", zipOf(t, map[string]string{"baton.toml": manifest, "../../escaped-zipslip": "x"}), "", "escapes"},
		{"absolute path", "application/zip", zipOf(t, map[string]string{"baton.toml": manifest, "/tmp/escaped-absolute": "x"}), "", "escaped-absolute"},
		{"escaping symlink", "application/gzip", tarGzOf(t, []*tar.Header{
			{Name: "baton.toml", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
			{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "../../../../etc", Mode: 0o777},
		}), "", "link"},
		{"over the upload limit", "application/zip", zipOf(t, map[string]string{"big": strings.Repeat("random-ish ", 1)}), "", ""},
	}
	// The last case is replaced by a body over --max-upload (1 MiB).
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = byte(i*7919 + i/13)
	}
	cases[len(cases)-1].body, cases[len(cases)-1].wantUpload, cases[len(cases)-1].wantText = big, baton.ETOOLARGE, "limit"

	p := newProxyClient(b.proxyAddr)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Deploy(ctx, "hello", bytes.NewReader(tc.body), api.DeployOptions{ContentType: tc.contentType})
			if tc.wantUpload != "" {
				if baton.ErrorCode(err) != tc.wantUpload || !strings.Contains(baton.ErrorMessage(err), tc.wantText) {
					t.Fatalf("upload error = %v, want code %s mentioning %q", err, tc.wantUpload, tc.wantText)
				}
				return
			}
			if err != nil {
				t.Fatalf("upload refused: %v", err)
			}
			d := waitFinal(t, c, res.ID)
			if d.State != baton.StateFailed || !strings.Contains(d.Error, tc.wantText) {
				t.Fatalf("deployment = %s %q, want failed mentioning %q", d.State, d.Error, tc.wantText)
			}
			if d.Revision != "" {
				t.Errorf("a revision %s was created for a bad artifact", d.Revision)
			}
			status, body, err := p.get("hello.localhost", "/")
			if err != nil || status != 200 || version(body) != "v1" {
				t.Fatalf("live revision after bad artifact: %d %s %v", status, body, err)
			}
		})
	}
	// Nothing escaped anywhere under the test's temp root, and the temp
	// area is empty.
	root := filepath.Dir(b.data)
	filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(e.Name(), "escaped-") {
			t.Errorf("file escaped the revision folder: %s", path)
		}
		return nil
	})
	for _, p := range []string{"/tmp/escaped-absolute", filepath.Join(b.data, "escaped-zipslip")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(b.data, "tmp")); len(entries) > 0 {
		t.Errorf("temp area not cleaned: %v", entries)
	}
	if entries, _ := os.ReadDir(filepath.Join(b.data, "apps", "hello", "revisions")); len(entries) != 1 {
		t.Errorf("revision folders = %v, want only the live one", entries)
	}
}
