package ociimage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/batonhq/baton"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// add checks img against baton's rules and the limits, copies every blob
// it lacks into the store, verified, and records the image. On failure it
// removes the blobs it added that nothing else needs.
// index is the digest of the index img came by, if held. fail turns
// errors from reading img into baton errors.
func (s *Store) add(ctx context.Context, img v1.Image, ref, index string, fail failFunc) (_ Image, err error) {
	r, err := describe(img, s.lim, fail)
	if err != nil {
		return Image{}, err
	}
	r.Ref, r.Index = ref, index
	blobs := r.blobs()
	release := s.claim(blobs...)
	defer release()
	var added []string
	defer func() {
		if err == nil {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if derr := s.dropUnused(added, true); derr != nil {
			err = errors.Join(err, fmt.Errorf("remove blobs of refused image: %w", derr))
		}
	}()
	put := func(d string, open func() (io.ReadCloser, error), limit int64) error {
		hex, err := parseDigest(d)
		if err != nil || s.hasBlob(hex) {
			return err
		}
		rc, err := open()
		if err != nil {
			return fail(fmt.Sprintf("read blob %s", short(d)), err)
		}
		defer rc.Close()
		ok, err := s.putBlob(ctx, d, sourceReader{rc}, limit)
		if ok {
			added = append(added, d)
		}
		var se sourceError
		if errors.As(err, &se) {
			return fail(fmt.Sprintf("read blob %s", short(d)), se.err)
		}
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return Image{}, fail("read image layers", err)
	}
	for i, l := range layers {
		want := r.Layers[i]
		if err := put(want.Digest, l.Compressed, s.lim.MaxLayerBytes); err != nil {
			return Image{}, err
		}
		// The digest binds the bytes, not the size the manifest gives
		// them, which the limits were checked against.
		hex, _ := parseDigest(want.Digest)
		if fi, err := os.Stat(s.blobPath(hex)); err != nil || fi.Size() != want.Size {
			return Image{}, baton.Errorf(baton.EUNPROCESSABLE, "layer %d (%s) of image %s is not the %d bytes its manifest says; the image is damaged: build or push it again", i+1, short(want.Digest), short(r.Digest), want.Size)
		}
	}
	if err := put(r.ID, bytesOpener(img.RawConfigFile), maxConfigBytes); err != nil {
		return Image{}, err
	}
	if err := put(r.Digest, bytesOpener(img.RawManifest), maxManifestBytes); err != nil {
		return Image{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writeRecord(r); err != nil {
		return Image{}, err
	}
	return r.Image, nil
}

const (
	maxConfigBytes   = 8 << 20
	maxManifestBytes = 4 << 20
)

func bytesOpener(raw func() ([]byte, error)) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		b, err := raw()
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
}

// describe reads img's manifest and config and checks them: a manifest
// type baton knows, linux/amd64, something to run, layers within limits.
func describe(img v1.Image, lim Limits, fail failFunc) (*record, error) {
	mt, err := img.MediaType()
	if err != nil {
		return nil, fail("read image manifest", err)
	}
	if mt != types.OCIManifestSchema1 && mt != types.DockerManifestSchema2 {
		return nil, baton.Errorf(baton.EUNPROCESSABLE, "image manifest has media type %q; baton takes OCI image manifests and Docker schema 2 manifests: push or save the image again with a current podman, docker or skopeo", mt)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fail("read image manifest", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fail("read image manifest", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fail("read image config", err)
	}
	if cf.OS != PlatformOS || cf.Architecture != PlatformArch {
		return nil, baton.Errorf(baton.EUNPROCESSABLE, "image %s is for %s/%s; baton runs %s/%s images: build it with --platform %s/%s", short(digest.String()), cf.OS, cf.Architecture, PlatformOS, PlatformArch, PlatformOS, PlatformArch)
	}
	if len(cf.Config.Entrypoint) == 0 && len(cf.Config.Cmd) == 0 {
		return nil, baton.Errorf(baton.EUNPROCESSABLE, "image %s has no entrypoint and no command, so baton would not know what to run: set ENTRYPOINT or CMD in its Containerfile", short(digest.String()))
	}
	r := &record{
		Image: Image{
			Digest: digest.String(),
			ID:     m.Config.Digest.String(),
			Config: Config{
				Entrypoint:   cf.Config.Entrypoint,
				Cmd:          cf.Config.Cmd,
				Env:          cf.Config.Env,
				WorkingDir:   cf.Config.WorkingDir,
				User:         cf.Config.User,
				Labels:       cf.Config.Labels,
				OS:           cf.OS,
				Architecture: cf.Architecture,
			},
		},
		MediaType: string(mt),
	}
	for i, l := range m.Layers {
		if !l.MediaType.IsLayer() || !l.MediaType.IsDistributable() {
			return nil, baton.Errorf(baton.EUNPROCESSABLE, "layer %d of image %s has media type %q, which baton does not unpack; rebuild the image with ordinary layers", i+1, short(digest.String()), l.MediaType)
		}
		if l.Size < 0 || l.Size > lim.MaxLayerBytes {
			return nil, baton.Errorf(baton.ETOOLARGE, "layer %d of image %s is %s, over the %s limit for one layer; make it smaller (fewer files, a slimmer base image) or raise the server's layer limit", i+1, short(digest.String()), baton.FormatSize(l.Size), baton.FormatSize(lim.MaxLayerBytes))
		}
		r.Size += l.Size
		r.Layers = append(r.Layers, blobDesc{Digest: l.Digest.String(), Size: l.Size, MediaType: string(l.MediaType)})
	}
	if r.Size > lim.MaxImageBytes {
		return nil, baton.Errorf(baton.ETOOLARGE, "image %s has %s of layers, over the %s limit for an image; make it smaller or raise the server's image limit", short(digest.String()), baton.FormatSize(r.Size), baton.FormatSize(lim.MaxImageBytes))
	}
	for _, d := range r.blobs() {
		if _, err := parseDigest(d); err != nil {
			return nil, baton.Errorf(baton.EUNPROCESSABLE, "image %s refers to blob %s; baton takes sha256 digests only", short(digest.String()), quote(d))
		}
	}
	return r, nil
}

// pickPlatform returns the linux/amd64 image of an index, preferring no
// CPU variant over v1 over any other, or an error listing what it has.
func pickPlatform(im *v1.IndexManifest) (v1.Descriptor, error) {
	best, bestRank := -1, 99
	var have []string
	for i, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		p := d.Platform
		if p == nil {
			have = append(have, "unknown")
			continue
		}
		if p.OS == "unknown" {
			continue // attestations
		}
		have = append(have, p.String())
		if p.OS != PlatformOS || p.Architecture != PlatformArch {
			continue
		}
		rank := 2
		switch p.Variant {
		case "":
			rank = 0
		case "v1":
			rank = 1
		}
		if rank < bestRank {
			best, bestRank = i, rank
		}
	}
	if best < 0 {
		slices.Sort(have)
		list := strings.Join(slices.Compact(have), ", ")
		if list == "" {
			list = "none"
		}
		return v1.Descriptor{}, baton.Errorf(baton.EUNPROCESSABLE, "image index has no %s/%s image (it has: %s); build the image with --platform %s/%s", PlatformOS, PlatformArch, list, PlatformOS, PlatformArch)
	}
	return im.Manifests[best], nil
}

// indexImage returns the linux/amd64 image of idx.
func indexImage(idx v1.ImageIndex, fail failFunc) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fail("read image index", err)
	}
	d, err := pickPlatform(im)
	if err != nil {
		return nil, err
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return nil, fail(fmt.Sprintf("read %s/%s image of index", PlatformOS, PlatformArch), err)
	}
	return img, nil
}

// failFunc turns an error from reading an image where it comes from into
// a baton error saying what went wrong.
type failFunc func(what string, err error) error

// sourceReader marks errors from reading the source apart from the
// store's own.
type sourceReader struct{ r io.Reader }

type sourceError struct{ err error }

func (e sourceError) Error() string { return e.err.Error() }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		var be *baton.Error
		if !errors.As(err, &be) {
			err = sourceError{err}
		}
	}
	return n, err
}

// sourceErr keeps baton errors and the context's end and turns the rest,
// failures to read an image from where it comes, into EUNPROCESSABLE.
func sourceErr(what string, err error) error {
	var be *baton.Error
	if errors.As(err, &be) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return baton.Errorf(baton.EUNPROCESSABLE, "%s: %v", what, err)
}

// Adopt holds the image whose manifest (or index, giving its linux/amd64
// image) is under digest, once PutBlob has stored it and every blob it
// names. A missing blob is ENOTFOUND naming it. A new record gets ref as
// where the image came from ("" records "adopted"; a restored backup
// gives the ref it had); an image already held keeps its record.
func (s *Store) Adopt(digest, ref string) (Image, error) {
	if img, err := s.Image(digest); err == nil {
		return img, nil
	}
	if ref == "" {
		ref = "adopted"
	}
	return s.adopt(context.Background(), digest, ref)
}

// MissingBlobs lists the blobs an image needs besides its manifest that
// are not held yet: put the manifest blob first (PutBlob), then these,
// then Adopt it. An index's chosen child manifest counts as one of them,
// and its own blobs are listed once it is held.
func (s *Store) MissingBlobs(digest string) ([]string, error) {
	raw, err := s.readSmallBlob(digest, maxManifestBytes)
	if err != nil {
		return nil, err
	}
	var m struct {
		Manifests []v1.Descriptor `json:"manifests"`
		Config    v1.Descriptor   `json:"config"`
		Layers    []v1.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, baton.Errorf(baton.EUNPROCESSABLE, "manifest %s is not JSON: %v", short(digest), err)
	}
	need := append([]v1.Descriptor{m.Config}, m.Layers...)
	if manifestType(raw).IsIndex() {
		child, err := pickPlatform(&v1.IndexManifest{Manifests: m.Manifests})
		if err != nil {
			return nil, err
		}
		if hex, err := parseDigest(child.Digest.String()); err == nil && s.hasBlob(hex) {
			return s.MissingBlobs(child.Digest.String())
		}
		need = []v1.Descriptor{child}
	}
	var missing []string
	for _, d := range need {
		if hex, err := parseDigest(d.Digest.String()); err == nil && !s.hasBlob(hex) {
			missing = append(missing, d.Digest.String())
		}
	}
	return missing, nil
}

func (s *Store) adopt(ctx context.Context, digest, ref string) (Image, error) {
	si, err := s.imageFromStore(digest)
	if err != nil {
		return Image{}, err
	}
	img, err := partial.CompressedToImage(si)
	if err != nil {
		return Image{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return Image{}, sourceErr("read manifest", err)
	}
	var missing []string
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if hex, err := parseDigest(d.Digest.String()); err == nil && !s.hasBlob(hex) {
			missing = append(missing, short(d.Digest.String()))
		}
	}
	if len(missing) > 0 {
		return Image{}, baton.Errorf(baton.ENOTFOUND, "image %s needs blobs that are not held here: %s; put them first", short(digest), strings.Join(missing, ", "))
	}
	index := ""
	if d, err := img.Digest(); err == nil && d.String() != digest {
		index = digest
	}
	return s.add(ctx, img, ref, index, sourceErr)
}
