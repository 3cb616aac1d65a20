package ociimage

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

func TestRemoveKeepsSharedBlobs(t *testing.T) {
	s := newStore(t, Limits{})
	base := []entry{fileE("lib/libc", "libc")}
	a := hold(t, s, runImage(t, base, []entry{fileE("run", "a")}))
	b := hold(t, s, runImage(t, base, []entry{fileE("run", "b")}))
	aBlobs, _ := s.BlobDigests(a.Digest)
	bBlobs, _ := s.BlobDigests(b.Digest)
	if len(aBlobs) != 4 || aBlobs[0] != a.Digest || aBlobs[1] != a.ID {
		t.Fatalf("BlobDigests = %v", aBlobs)
	}
	if n := len(blobNames(t, s)); n != 7 { // 2 manifests, 2 configs, 3 layers
		t.Errorf("%d blobs, want 7 (the base layer once)", n)
	}
	if _, err := s.Rootfs(context.Background(), a.Digest); err != nil {
		t.Fatal(err)
	}
	before, err := s.Usage()
	if err != nil || before == 0 {
		t.Fatalf("Usage = %d, %v", before, err)
	}
	if err := s.Remove(a.Digest); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.Remove(a.Digest), baton.ENOTFOUND)
	_, err = s.Image(a.Digest)
	wantCode(t, err, baton.ENOTFOUND, "not held")
	if _, err := os.Stat(s.rootfsPath(strings.TrimPrefix(a.Digest, "sha256:"))); !os.IsNotExist(err) {
		t.Errorf("rootfs of the removed image: %v", err)
	}
	for _, d := range bBlobs {
		rc, err := s.OpenBlob(d)
		if err != nil {
			t.Errorf("blob %s of the kept image: %v", d, err)
			continue
		}
		rc.Close()
	}
	if n := len(blobNames(t, s)); n != 4 {
		t.Errorf("%d blobs after Remove, want 4", n)
	}
	if after, _ := s.Usage(); after >= before {
		t.Errorf("Usage %d after Remove, was %d", after, before)
	}
	if ds, _ := s.Digests(); !slices.Equal(ds, []string{b.Digest}) {
		t.Errorf("Digests = %v", ds)
	}
}

// TestAdoptMovesImageBetweenStores is how controllers share an image: the
// blobs by digest, then Adopt.
func TestAdoptMovesImageBetweenStores(t *testing.T) {
	from := newStore(t, Limits{})
	to := newStore(t, Limits{})
	img := hold(t, from, runImage(t, []entry{fileE("run", "x")}))
	ds, err := from.BlobDigests(img.Digest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = to.Adopt(img.Digest, "")
	wantCode(t, err, baton.ENOTFOUND)
	for i, d := range ds {
		if i == len(ds)-1 {
			_, err := to.Adopt(img.Digest, "")
			wantCode(t, err, baton.ENOTFOUND, short(d))
		}
		rc, err := from.OpenBlob(d)
		if err != nil {
			t.Fatal(err)
		}
		err = to.PutBlob(d, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := to.Adopt(img.Digest, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != img.Digest || got.ID != img.ID || got.Size != img.Size {
		t.Errorf("Adopt = %+v, want %+v", got, img)
	}
	if _, err := to.Rootfs(context.Background(), got.Digest); err != nil {
		t.Fatal(err)
	}
}

func TestPutBlob(t *testing.T) {
	s := newStore(t, Limits{MaxLayerBytes: 10})
	d := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("hello")))
	wantCode(t, s.PutBlob(d, strings.NewReader("hellO")), baton.EUNPROCESSABLE, "does not match its digest")
	wantCode(t, s.PutBlob(d, strings.NewReader(strings.Repeat("x", 11))), baton.ETOOLARGE, "larger than 10 B")
	wantCode(t, s.PutBlob("md5:abc", strings.NewReader("hello")), baton.EINVALID, "sha256")
	wantCode(t, s.PutBlob("sha256:../../etc", strings.NewReader("hello")), baton.EINVALID)
	if blobs := blobNames(t, s); len(blobs) != 0 {
		t.Fatalf("refused blobs left %v", blobs)
	}
	if err := s.PutBlob(d, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	rc, err := s.OpenBlob(d)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "hello" {
		t.Errorf("blob = %q", data)
	}
	_, err = s.OpenBlob(fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("nope"))))
	wantCode(t, err, baton.ENOTFOUND)
	os.Remove(s.blobPath(strings.TrimPrefix(d, "sha256:")))
}

// TestPullTamperedLayer serves a layer whose bytes do not match the
// manifest: the pull fails and keeps nothing.
func TestPullTamperedLayer(t *testing.T) {
	img := runImage(t, []entry{fileE("run", strings.Repeat("x", 4096))})
	ls, _ := img.Layers()
	ld, _ := ls[0].Digest()
	reg := ggcrregistry.New(ggcrregistry.Logger(discardLogger()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+ld.String()) {
			rec := httptest.NewRecorder()
			reg.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			body[len(body)/2] ^= 0xff
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/app:v1"
	push(t, img, ref)
	s := newStore(t, Limits{})
	_, err := s.Pull(context.Background(), ref, PullOptions{Insecure: true})
	wantCode(t, err, baton.EUNPROCESSABLE, short(ld.String()))
	if blobs := blobNames(t, s); len(blobs) != 0 {
		t.Errorf("failed pull left blobs %v", blobs)
	}
}

func TestOpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	img := hold(t, s, runImage(t, []entry{fileE("run", "x")}))
	for _, p := range []string{"blobs/sha256/.abc-123", "images/.x.json-1", "rootfs/.abc-1/etc/passwd", "uploads/.upload-1", "tmp/.load-1/index.json", "tags/app/.v1-1"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err = Open(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkNoLeftovers(t, s)
	if entries, _ := os.ReadDir(filepath.Join(dir, "tags", "app")); len(entries) != 0 {
		t.Errorf("tags left: %v", entries)
	}
	if _, err := s.Image(img.Digest); err != nil {
		t.Errorf("held image lost: %v", err)
	}
}

func TestPruneBlobs(t *testing.T) {
	s := newStore(t, Limits{})
	img := hold(t, s, runImage(t, []entry{fileE("run", "x")}))
	var orphans []string
	for _, body := range []string{"old orphan", "new orphan"} {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(body)))
		if err := s.PutBlob(d, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		orphans = append(orphans, d)
	}
	long := time.Now().Add(-2 * time.Hour)
	os.Chtimes(s.blobPath(strings.TrimPrefix(orphans[0], "sha256:")), long, long)
	for _, d := range append([]string{}, mustBlobDigests(t, s, img.Digest)...) {
		os.Chtimes(s.blobPath(strings.TrimPrefix(d, "sha256:")), long, long)
	}
	n, err := s.PruneBlobs(time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("PruneBlobs = %d, %v; want 1", n, err)
	}
	if _, err := s.OpenBlob(orphans[0]); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Errorf("old orphan kept: %v", err)
	}
	if rc, err := s.OpenBlob(orphans[1]); err != nil {
		t.Errorf("new orphan: %v", err)
	} else {
		rc.Close()
	}
	if _, err := s.Rootfs(context.Background(), img.Digest); err != nil {
		t.Errorf("held image after PruneBlobs: %v", err)
	}
	os.Remove(s.blobPath(strings.TrimPrefix(orphans[1], "sha256:")))
}

func mustBlobDigests(t *testing.T, s *Store, digest string) []string {
	t.Helper()
	ds, err := s.BlobDigests(digest)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}
