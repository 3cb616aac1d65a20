package backup_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/batonhq/baton/backup"
	"github.com/batonhq/baton/ociimage"
)

// layer is a one-file image layer.
func layer(t *testing.T, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// putImage builds a linux/amd64 image of the layers, puts its blobs in
// store and adopts it as ref; it returns its manifest digest and blobs.
func putImage(t *testing.T, store *ociimage.Store, ref string, layers ...[]byte) (string, []string) {
	t.Helper()
	img := empty.Image
	for _, l := range layers {
		tl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, tl); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Entrypoint = []string{"/app/run"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		d, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutBlob(d.String(), rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	raw, _ := img.RawConfigFile()
	if err := store.PutBlob(m.Config.Digest.String(), bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	raw, _ = img.RawManifest()
	d, _ := img.Digest()
	if err := store.PutBlob(d.String(), bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Adopt(d.String(), ref); err != nil {
		t.Fatal(err)
	}
	blobs, err := store.BlobDigests(d.String())
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), blobs
}

// addRevision adds a revision row naming digest, as a second connection
// would.
func addRevision(t *testing.T, f *fixture, name string, number int, digest string) {
	t.Helper()
	raw, err := sql.Open("sqlite", filepath.Join(f.dir, "baton.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO revisions (name, app, number, slot, deployment, artifact_digest, created_at)
		VALUES (?, 'hello', ?, 'production', 'd-1', ?, 0)`, name, number, digest); err != nil {
		t.Fatal(err)
	}
}

// TestBackupImages: the images the store's revisions name are in the
// archive, each blob once however many images share it, and a restore
// holds them again (with their refs) so image revisions start without a
// registry; an image no revision names is left out, one that is not held
// is listed as missing.
func TestBackupImages(t *testing.T) {
	f := newFixture(t)
	store, err := ociimage.Open(filepath.Join(f.dir, "images"), ociimage.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	base := layer(t, "app/run", "#!/bin/sh\necho shared base\n")
	v1, blobs1 := putImage(t, store, "registry.test/hello:v1", base, layer(t, "app/version.txt", "v1\n"))
	v2, blobs2 := putImage(t, store, "registry.test/hello:v2", base, layer(t, "app/version.txt", "v2\n"))
	unused, _ := putImage(t, store, "registry.test/other:v1", layer(t, "app/run", "other"))
	gone := "sha256:" + strings.Repeat("ab", 32)
	addRevision(t, f, "hello--000002", 2, v1)
	addRevision(t, f, "hello--000003", 3, v2)
	addRevision(t, f, "hello--000004", 4, gone)

	src := f.source(true)
	src.Images = store
	var buf bytes.Buffer
	m, err := backup.Write(context.Background(), &buf, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Images) != 2 || len(m.MissingImages) != 1 || m.MissingImages[0] != gone {
		t.Fatalf("manifest images %+v, missing %v", m.Images, m.MissingImages)
	}
	distinct := map[string]bool{}
	for _, b := range append(append([]string{}, blobs1...), blobs2...) {
		distinct[b] = true
	}
	var blobEntries int
	for _, file := range m.Files {
		if strings.HasPrefix(file.Name, backup.ImageBlobsDir) {
			blobEntries++
		}
	}
	if len(distinct) != len(blobs1)+len(blobs2)-1 || blobEntries != len(distinct) {
		t.Errorf("%d image blob entries for %d distinct blobs (%d and %d per image, one layer shared)", blobEntries, len(distinct), len(blobs1), len(blobs2))
	}
	if !strings.Contains(m.Summary(), "2 images") {
		t.Errorf("summary %q", m.Summary())
	}

	dir := filepath.Join(t.TempDir(), "data")
	if _, err := restore(buf.Bytes(), backup.RestoreOptions{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	got, err := ociimage.Open(filepath.Join(dir, "images"), ociimage.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for d, ref := range map[string]string{v1: "registry.test/hello:v1", v2: "registry.test/hello:v2"} {
		img, err := got.Image(d)
		if err != nil {
			t.Fatalf("restored image store lacks %s: %v", d, err)
		}
		if img.Ref != ref {
			t.Errorf("restored %s has ref %q, want %q", d, img.Ref, ref)
		}
		fs, err := got.ReadFile(context.Background(), d, "/app/run")
		if err != nil || !strings.Contains(string(fs), "shared base") {
			t.Errorf("restored image %s: /app/run %q, %v", d, fs, err)
		}
	}
	if _, err := got.Image(unused); err == nil {
		t.Error("an image no revision names was backed up")
	}

	// With PostgreSQL (no snapshot to read revisions from), every image
	// held goes in.
	src.Snapshot = nil
	buf.Reset()
	if m, err = backup.Write(context.Background(), &buf, src); err != nil {
		t.Fatal(err)
	}
	if len(m.Images) != 3 || len(m.MissingImages) > 0 {
		t.Errorf("PostgreSQL backup images %+v, missing %v; want all 3 held", m.Images, m.MissingImages)
	}
}

// TestBackupImageBlobDamaged: an archive whose image blob does not match
// its digest is refused and leaves nothing.
func TestBackupImageBlobDamaged(t *testing.T) {
	f := newFixture(t)
	store, err := ociimage.Open(filepath.Join(f.dir, "images"), ociimage.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// An incompressible layer, so that a byte changed in the archive
	// lands in it.
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = byte(i*7919 + i/251)
	}
	d, _ := putImage(t, store, "registry.test/hello:v1", layer(t, "app/run", string(big)))
	addRevision(t, f, "hello--000002", 2, d)
	src := f.source(true)
	src.Images = store
	var buf bytes.Buffer
	if _, err := backup.Write(context.Background(), &buf, src); err != nil {
		t.Fatal(err)
	}
	// Rewritten with one image blob changed: gzip and tar are whole,
	// only the blob's digest tells.
	bad := rewrite(t, buf.Bytes(), func(name string, body []byte) []byte {
		if strings.HasPrefix(name, backup.ImageBlobsDir) && len(body) > 1000 {
			body = bytes.Clone(body)
			body[500] ^= 1
		}
		return body
	})
	parent := t.TempDir()
	_, err = restore(bad, backup.RestoreOptions{DataDir: filepath.Join(parent, "data")})
	if err == nil || !strings.Contains(err.Error(), "does not match its digest") {
		t.Fatalf("restore of a changed blob: %v", err)
	}
	if l := leftovers(t, parent); len(l) > 0 {
		t.Errorf("a failed restore left %v", l)
	}
}

// rewrite reads a tar.gz archive and writes it again with each entry's
// body passed through change.
func rewrite(t *testing.T, archive []byte, change func(name string, body []byte) []byte) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		body = change(hdr.Name, body)
		hdr.Size = int64(len(body))
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
