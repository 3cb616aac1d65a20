package ociimage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
)

// uploadIdle is how long an upload may go without a request before the
// next new upload removes it.
const uploadIdle = time.Hour

// upload is a blob being pushed, in uploads/<id> until it is complete.
type upload struct {
	mu      sync.Mutex
	id      string
	repo    string
	path    string
	f       *os.File
	h       hash.Hash
	size    int64
	touched time.Time
	done    bool
}

// newUpload starts an upload for repo, first removing abandoned ones.
func (s *Store) newUpload(repo string) (*upload, error) {
	s.reapUploads(time.Now().Add(-uploadIdle))
	path := tempName(filepath.Join(s.dir, "uploads"), "upload")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start upload: %w", err)
	}
	u := &upload{id: strings.TrimPrefix(filepath.Base(path), ".upload-"), repo: repo, path: path, f: f, h: sha256.New(), touched: time.Now()}
	s.mu.Lock()
	s.uploads[u.id] = u
	s.mu.Unlock()
	return u, nil
}

// reapUploads removes the uploads untouched since before.
func (s *Store) reapUploads(before time.Time) {
	s.mu.Lock()
	var stale []*upload
	for _, u := range s.uploads {
		if u.mu.TryLock() {
			if u.touched.Before(before) {
				stale = append(stale, u)
			}
			u.mu.Unlock()
		}
	}
	s.mu.Unlock()
	for _, u := range stale {
		u.mu.Lock()
		s.endUpload(u)
		u.mu.Unlock()
	}
}

// getUpload returns repo's upload id, locked; the caller unlocks it.
func (s *Store) getUpload(repo, id string) (*upload, error) {
	s.mu.Lock()
	u := s.uploads[id]
	s.mu.Unlock()
	if u == nil || u.repo != repo {
		return nil, newRegError(http.StatusNotFound, codeBlobUploadUnknown, "upload %s is not known here (it may have been abandoned); start the push again", quote(id))
	}
	u.mu.Lock()
	if u.done {
		u.mu.Unlock()
		return nil, newRegError(http.StatusNotFound, codeBlobUploadUnknown, "upload %s is over; start the push again", quote(id))
	}
	u.touched = time.Now()
	return u, nil
}

// endUpload forgets u and removes its file. The caller holds u.mu.
func (s *Store) endUpload(u *upload) {
	if u.done {
		return
	}
	u.done = true
	s.mu.Lock()
	delete(s.uploads, u.id)
	s.mu.Unlock()
	u.f.Close()
	os.Remove(u.path)
}

// write appends r to u, up to MaxLayerBytes in all.
func (s *Store) writeUpload(u *upload, r io.Reader) error {
	limit := s.lim.MaxLayerBytes
	n, err := io.Copy(io.MultiWriter(u.f, u.h), io.LimitReader(r, limit-u.size+1))
	u.size += n
	if err != nil {
		return newRegError(http.StatusBadRequest, codeBlobUploadInvalid, "reading the upload failed: %v", err)
	}
	if u.size > limit {
		return newRegError(http.StatusRequestEntityTooLarge, codeSizeInvalid, "blob is larger than %s (limit); make the image's layers smaller or raise the server's layer limit", baton.FormatSize(limit))
	}
	return nil
}

// finishUpload checks u against digest and moves it into blobs/.
func (s *Store) finishUpload(u *upload, digest string) error {
	hexd, err := parseDigest(digest)
	if err != nil {
		return newRegError(http.StatusBadRequest, codeDigestInvalid, "%s", baton.ErrorMessage(err))
	}
	if got := "sha256:" + hex.EncodeToString(u.h.Sum(nil)); got != digest {
		return newRegError(http.StatusBadRequest, codeDigestInvalid, "uploaded blob hashes to %s, not %s as pushed; push it again", got, digest)
	}
	if err := u.f.Sync(); err != nil {
		return fmt.Errorf("finish upload: %w", err)
	}
	if s.hasBlob(hexd) {
		return nil
	}
	if err := os.Rename(u.path, s.blobPath(hexd)); err != nil {
		return fmt.Errorf("finish upload: %w", err)
	}
	return nil
}

// upload serves /v2/<repo>/blobs/uploads/[<id>].
func (g *registry) upload(w http.ResponseWriter, r *http.Request, rt route) error {
	s := g.s
	if rt.arg == "" {
		if r.Method != http.MethodPost {
			return newRegError(http.StatusMethodNotAllowed, codeUnsupported, "start an upload with POST")
		}
		u, err := s.newUpload(rt.repo)
		if err != nil {
			return err
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		// A digest on the POST is a monolithic upload; a mount request
		// falls back to an ordinary upload (clients HEAD blobs first, and
		// blobs are shared by digest anyway).
		if d := r.URL.Query().Get("digest"); d != "" {
			return g.completeUpload(w, r, u, d)
		}
		return g.uploadAccepted(w, u, http.StatusAccepted)
	}
	u, err := s.getUpload(rt.repo, rt.arg)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		return g.uploadAccepted(w, u, http.StatusNoContent)
	case http.MethodDelete:
		s.endUpload(u)
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodPatch:
		if cr := r.Header.Get("Content-Range"); cr != "" {
			start, _, _ := strings.Cut(strings.TrimPrefix(cr, "bytes="), "-")
			if n, err := strconv.ParseInt(start, 10, 64); err != nil || n != u.size {
				w.Header().Set("Range", rangeHeader(u.size))
				return newRegError(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "chunk starts at %s but the upload has %d bytes; resume from there", quote(start), u.size)
			}
		}
		if err := s.writeUpload(u, r.Body); err != nil {
			s.endUpload(u)
			return err
		}
		return g.uploadAccepted(w, u, http.StatusAccepted)
	case http.MethodPut:
		return g.completeUpload(w, r, u, r.URL.Query().Get("digest"))
	}
	return newRegError(http.StatusMethodNotAllowed, codeUnsupported, "%s is not an upload method", r.Method)
}

// completeUpload appends the request body, checks the digest and stores
// the blob; u is ended whatever happens. The caller holds u.mu.
func (g *registry) completeUpload(w http.ResponseWriter, r *http.Request, u *upload, digest string) error {
	defer g.s.endUpload(u)
	if digest == "" {
		return newRegError(http.StatusBadRequest, codeDigestInvalid, "finish an upload with ?digest=sha256:…")
	}
	if err := g.s.writeUpload(u, r.Body); err != nil {
		return err
	}
	if err := g.s.finishUpload(u, digest); err != nil {
		return err
	}
	w.Header().Set("Location", "/v2/"+u.repo+"/blobs/"+digest)
	w.Header().Set("Docker-Content-Digest", digest)
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (g *registry) uploadAccepted(w http.ResponseWriter, u *upload, status int) error {
	w.Header().Set("Location", "/v2/"+u.repo+"/blobs/uploads/"+u.id)
	w.Header().Set("Docker-Upload-UUID", u.id)
	w.Header().Set("Range", rangeHeader(u.size))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
	return nil
}

// rangeHeader is the Range an upload of size bytes reports: "0-<last>".
func rangeHeader(size int64) string {
	if size == 0 {
		return "0-0"
	}
	return fmt.Sprintf("0-%d", size-1)
}
