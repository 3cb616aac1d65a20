package ociimage

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RegistryHooks connect the registry to the rest of baton.
type RegistryHooks struct {
	// Authorize decides whether r may pull (push=false) or push to repo
	// ("" for the /v2/ check). EUNAUTHORIZED answers 401 with a Basic
	// challenge, any other error 403 DENIED. Nil allows everything.
	Authorize func(r *http.Request, repo string, push bool) error
	// ManifestPushed runs after an image manifest pushed by tag (or an
	// index: its linux/amd64 image) is verified and held. Its error fails
	// the push (ECONFLICT: 409 with its message); on success the push is
	// answered 201 with the headers it returns.
	ManifestPushed func(ctx context.Context, repo, reference string, img Image) (http.Header, error)
	// Log receives internal errors, whose text clients never see; nil
	// means slog.Default().
	Log *slog.Logger
}

// Registry returns the OCI distribution API over the store, to be mounted
// at /v2/. Blobs are shared by digest across repositories; manifests
// pushed by tag are held as images and run ManifestPushed, those pushed by
// digest (the children of an index) are only stored.
func (s *Store) Registry(h RegistryHooks) http.Handler {
	if h.Log == nil {
		h.Log = slog.Default()
	}
	return &registry{s: s, h: h}
}

type registry struct {
	s *Store
	h RegistryHooks
}

// Registry error codes, from the distribution spec.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeTagInvalid          = "TAG_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	codeUnavailable         = "UNAVAILABLE"
	codeUnknown             = "UNKNOWN"
)

// regError is a refusal in the registry's error form.
type regError struct {
	status  int
	code    string
	message string
	header  http.Header
}

func (e *regError) Error() string { return e.code + ": " + e.message }

func newRegError(status int, code, format string, args ...any) *regError {
	return &regError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// fromBaton maps a baton error to the registry's form; notFound is the
// code a missing thing gets where the error arose, invalid a bad one's.
func (g *registry) fromBaton(r *http.Request, err error, notFound, invalid string) *regError {
	var re *regError
	if errors.As(err, &re) {
		return re
	}
	var be *baton.Error
	if !errors.As(err, &be) {
		g.h.Log.Error("registry request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return newRegError(http.StatusInternalServerError, codeUnknown, "%s", baton.ErrorMessage(err))
	}
	e := &regError{code: codeDenied, message: be.Message, header: http.Header{}}
	switch be.Code {
	case baton.EUNAUTHORIZED:
		e.status, e.code = http.StatusUnauthorized, codeUnauthorized
		e.header.Set("WWW-Authenticate", `Basic realm="baton"`)
	case baton.EFORBIDDEN:
		e.status = http.StatusForbidden
	case baton.ECONFLICT:
		e.status = http.StatusConflict
	case baton.EFROZEN:
		e.status = http.StatusLocked
	case baton.EQUEUEFULL:
		e.status, e.code = http.StatusTooManyRequests, codeTooManyRequests
	case baton.ENOTFOUND:
		e.status, e.code = http.StatusNotFound, notFound
	case baton.EINVALID, baton.EUNPROCESSABLE:
		e.status, e.code = http.StatusBadRequest, invalid
	case baton.ETOOLARGE:
		e.status, e.code = http.StatusRequestEntityTooLarge, codeSizeInvalid
	case baton.EUNAVAILABLE:
		e.status, e.code = http.StatusServiceUnavailable, codeUnavailable
	default:
		e.status, e.code = http.StatusInternalServerError, codeUnknown
	}
	if be.RetryAfterSeconds > 0 {
		e.header.Set("Retry-After", fmt.Sprint(be.RetryAfterSeconds))
	}
	return e
}

func writeRegError(w http.ResponseWriter, e *regError) {
	for k, vs := range e.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	type item struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	_ = json.NewEncoder(w).Encode(struct {
		Errors []item `json:"errors"`
	}{[]item{{e.code, e.message}}})
}

// repoRE is the distribution spec's repository name.
var repoRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

// route is a parsed registry path.
type route struct {
	repo string
	kind string // "base", "blob", "upload", "manifest", "tags"
	arg  string // digest, upload id or reference
}

func parseRoute(p string) (route, bool) {
	p, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return route{}, false
	}
	if p == "" {
		return route{kind: "base"}, true
	}
	for _, k := range []struct{ sep, kind string }{
		{"/blobs/uploads/", "upload"}, {"/blobs/", "blob"}, {"/manifests/", "manifest"},
	} {
		if i := strings.LastIndex(p, k.sep); i > 0 {
			return route{repo: p[:i], kind: k.kind, arg: p[i+len(k.sep):]}, true
		}
	}
	if repo, ok := strings.CutSuffix(p, "/blobs/uploads"); ok {
		return route{repo: repo, kind: "upload"}, true
	}
	if repo, ok := strings.CutSuffix(p, "/tags/list"); ok {
		return route{repo: repo, kind: "tags"}, true
	}
	return route{}, false
}

func (g *registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if err := g.serve(w, r); err != nil {
		writeRegError(w, g.fromBaton(r, err, codeNameUnknown, codeManifestInvalid))
	}
}

func (g *registry) serve(w http.ResponseWriter, r *http.Request) error {
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		return newRegError(http.StatusNotFound, codeUnsupported, "%s is not a registry API path", quote(r.URL.Path))
	}
	if rt.kind != "base" && !repoRE.MatchString(rt.repo) {
		return newRegError(http.StatusBadRequest, codeNameInvalid, "repository name %s is not valid; use APP or APP/SLOT in lowercase", quote(rt.repo))
	}
	// Asking after an upload is part of pushing too.
	push := rt.kind == "upload" || (r.Method != http.MethodGet && r.Method != http.MethodHead)
	if g.h.Authorize != nil {
		if err := g.h.Authorize(r, rt.repo, push); err != nil {
			return g.fromBaton(r, err, codeDenied, codeDenied)
		}
	}
	switch {
	case rt.kind == "base" && !push:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
		return nil
	case rt.kind == "blob" && !push:
		return g.getBlob(w, r, rt)
	case rt.kind == "upload":
		return g.upload(w, r, rt)
	case rt.kind == "manifest" && !push:
		return g.getManifest(w, r, rt)
	case rt.kind == "manifest" && r.Method == http.MethodPut:
		return g.putManifest(w, r, rt)
	case rt.kind == "tags" && !push:
		tags, err := g.s.tags(rt.repo)
		if err != nil {
			return err
		}
		slices.Sort(tags)
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}{rt.repo, append([]string{}, tags...)})
	}
	return newRegError(http.StatusMethodNotAllowed, codeUnsupported, "%s %s is not supported by baton's registry (it does not delete)", r.Method, r.URL.Path)
}

func (g *registry) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	rc, err := g.s.OpenBlob(rt.arg)
	if err != nil {
		return g.fromBaton(r, err, codeBlobUnknown, codeDigestInvalid)
	}
	defer rc.Close()
	w.Header().Set("Docker-Content-Digest", rt.arg)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "max-age=31536000, immutable")
	http.ServeContent(w, r, "", time.Time{}, rc.(io.ReadSeeker))
	return nil
}

// manifestMediaTypes are the manifests the registry stores.
var manifestMediaTypes = []types.MediaType{types.OCIManifestSchema1, types.DockerManifestSchema2, types.OCIImageIndex, types.DockerManifestList}

func (g *registry) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	digest := rt.arg
	if _, err := parseDigest(digest); err != nil {
		if digest, err = g.s.resolveTag(rt.repo, rt.arg); err != nil {
			return g.fromBaton(r, err, codeManifestUnknown, codeTagInvalid)
		}
	}
	raw, err := g.s.readSmallBlob(digest, maxManifestBytes)
	if err == nil && !slices.Contains(manifestMediaTypes, manifestType(raw)) {
		err = baton.Errorf(baton.ENOTFOUND, "")
	}
	if err != nil {
		if baton.ErrorCode(err) == baton.ENOTFOUND {
			return newRegError(http.StatusNotFound, codeManifestUnknown, "%s has no manifest %s; push it first", rt.repo, quote(rt.arg))
		}
		return err
	}
	w.Header().Set("Content-Type", string(manifestType(raw)))
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
	if r.Method == http.MethodGet {
		_, _ = w.Write(raw)
	}
	return nil
}

func (g *registry) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxManifestBytes+1))
	if err != nil {
		return newRegError(http.StatusBadRequest, codeManifestInvalid, "reading the manifest failed: %v", err)
	}
	if len(raw) > maxManifestBytes {
		return newRegError(http.StatusRequestEntityTooLarge, codeSizeInvalid, "manifest is over %s", baton.FormatSize(maxManifestBytes))
	}
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(raw))
	byDigest := strings.HasPrefix(rt.arg, "sha256:")
	switch {
	case byDigest && rt.arg != digest:
		return newRegError(http.StatusBadRequest, codeDigestInvalid, "manifest hashes to %s, not %s as pushed", digest, rt.arg)
	case !byDigest && !tagRE().MatchString(rt.arg):
		return newRegError(http.StatusBadRequest, codeTagInvalid, "tag %s is not valid; use letters, digits, '_', '.' and '-', up to 128", quote(rt.arg))
	}
	mt := manifestType(raw)
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	ct = strings.TrimSpace(ct)
	if ct != "" && types.MediaType(ct) != mt && manifestTypeField(raw) != "" {
		return newRegError(http.StatusBadRequest, codeManifestInvalid, "manifest says it is %s but was sent as %s", mt, ct)
	} else if ct != "" && manifestTypeField(raw) == "" {
		mt = types.MediaType(ct)
	}
	if !slices.Contains(manifestMediaTypes, mt) {
		return newRegError(http.StatusBadRequest, codeManifestInvalid, "manifest media type %q is not one baton takes (OCI or Docker schema 2 image manifests and indexes)", mt)
	}
	if err := g.s.checkManifestBlobs(raw, mt); err != nil {
		return err
	}
	if _, err := g.s.putBlob(r.Context(), digest, strings.NewReader(string(raw)), maxManifestBytes); err != nil {
		return err
	}
	if !byDigest {
		img, err := g.s.adopt(r.Context(), digest, "push "+rt.repo+":"+rt.arg)
		if err != nil {
			return g.fromBaton(r, err, codeManifestBlobUnknown, codeManifestInvalid)
		}
		if g.h.ManifestPushed != nil {
			hdr, err := g.h.ManifestPushed(r.Context(), rt.repo, rt.arg, img)
			if err != nil {
				return g.fromBaton(r, err, codeNameUnknown, codeManifestInvalid)
			}
			for k, vs := range hdr {
				w.Header()[k] = vs
			}
		}
		g.s.mu.Lock()
		err = g.s.tag(rt.repo, rt.arg, digest)
		g.s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	if w.Header().Get("Location") == "" {
		w.Header().Set("Location", "/v2/"+rt.repo+"/manifests/"+digest)
	}
	w.Header().Set("Docker-Content-Digest", digest)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// manifestTypeField returns the mediaType field of a manifest, "" if none.
func manifestTypeField(raw []byte) types.MediaType {
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	_ = json.Unmarshal(raw, &m)
	return m.MediaType
}

// checkManifestBlobs checks that what a pushed manifest names is here: an
// image's config and layers, an index's manifests.
func (s *Store) checkManifestBlobs(raw []byte, mt types.MediaType) error {
	var ds []v1.Descriptor
	if mt.IsIndex() {
		im, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
		if err != nil {
			return newRegError(http.StatusBadRequest, codeManifestInvalid, "index is not valid: %v", err)
		}
		ds = im.Manifests
	} else {
		m, err := v1.ParseManifest(strings.NewReader(string(raw)))
		if err != nil {
			return newRegError(http.StatusBadRequest, codeManifestInvalid, "manifest is not valid: %v", err)
		}
		ds = append([]v1.Descriptor{m.Config}, m.Layers...)
	}
	for _, d := range ds {
		hex, err := parseDigest(d.Digest.String())
		if err != nil {
			return newRegError(http.StatusBadRequest, codeManifestInvalid, "manifest names %s; baton takes sha256 digests only", quote(d.Digest.String()))
		}
		if !s.hasBlob(hex) {
			return newRegError(http.StatusBadRequest, codeManifestBlobUnknown, "manifest names blob %s, which was not pushed; push its blobs (and for an index, its manifests) first", d.Digest)
		}
	}
	return nil
}
