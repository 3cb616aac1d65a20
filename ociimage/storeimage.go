package ociimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"

	"github.com/batonhq/baton"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// storeImage is an image read from the store's blobs, every blob checked
// against its digest as it is read.
type storeImage struct {
	s        *Store
	manifest []byte
	mt       types.MediaType
	layers   map[string]v1.Descriptor
	// open are the layer readers not yet closed: close closes them, as
	// ggcr does not close a layer whose decompression fails to start, and
	// its goroutine must not read blobs once the unpack is over.
	mu     sync.Mutex
	open   map[*layerReader]bool
	closed bool
	// current is the layer being read, for messages.
	current atomic.Pointer[layerReader]
	// verified holds the layers read to the end and found whole.
	verified sync.Map
}

var _ partial.CompressedImageCore = (*storeImage)(nil)

// imageFromStore reads the manifest under digest; an index gives its
// linux/amd64 child. Blobs that are missing are ENOTFOUND.
func (s *Store) imageFromStore(digest string) (*storeImage, error) {
	raw, err := s.readSmallBlob(digest, maxManifestBytes)
	if err != nil {
		return nil, err
	}
	var m struct {
		Manifests []v1.Descriptor `json:"manifests"`
		Layers    []v1.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, baton.Errorf(baton.EUNPROCESSABLE, "manifest %s is not JSON: %v", short(digest), err)
	}
	mt := manifestType(raw)
	if mt.IsIndex() {
		child, err := pickPlatform(&v1.IndexManifest{Manifests: m.Manifests})
		if err != nil {
			return nil, err
		}
		return s.imageFromStore(child.Digest.String())
	}
	img := &storeImage{s: s, manifest: raw, mt: mt, layers: map[string]v1.Descriptor{}}
	for _, l := range m.Layers {
		img.layers[l.Digest.String()] = l
	}
	return img, nil
}

// manifestType returns a manifest's media type from its mediaType field,
// or for OCI manifests without one, from its shape.
func manifestType(raw []byte) types.MediaType {
	var m struct {
		MediaType types.MediaType  `json:"mediaType"`
		Manifests *json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	switch {
	case m.MediaType != "":
		return m.MediaType
	case m.Manifests != nil:
		return types.OCIImageIndex
	}
	return types.OCIManifestSchema1
}

// readSmallBlob reads a manifest or config blob, checking its digest.
func (s *Store) readSmallBlob(d string, limit int64) ([]byte, error) {
	rc, err := s.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", short(d), err)
	}
	if int64(len(data)) > limit {
		return nil, baton.Errorf(baton.ETOOLARGE, "blob %s is over %s; a manifest or config that large is not an image baton runs", short(d), baton.FormatSize(limit))
	}
	if sum := sha256.Sum256(data); "sha256:"+hex.EncodeToString(sum[:]) != d {
		return nil, damaged(d)
	}
	return data, nil
}

// damaged reports a stored blob that no longer matches its digest.
func damaged(d string) error {
	return baton.Errorf(baton.EUNPROCESSABLE, "stored blob %s does not match its digest: the image store is damaged; remove the image and pull or push it again", short(d))
}

func (i *storeImage) MediaType() (types.MediaType, error) { return i.mt, nil }
func (i *storeImage) RawManifest() ([]byte, error)        { return i.manifest, nil }

func (i *storeImage) RawConfigFile() ([]byte, error) {
	m, err := v1.ParseManifest(bytes.NewReader(i.manifest))
	if err != nil {
		return nil, err
	}
	return i.s.readSmallBlob(m.Config.Digest.String(), maxConfigBytes)
}

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	d, ok := i.layers[h.String()]
	if !ok {
		return nil, baton.Errorf(baton.ENOTFOUND, "image has no layer %s", short(h.String()))
	}
	return &storeLayer{img: i, desc: d}, nil
}

// close closes the open layer readers and refuses new ones.
func (i *storeImage) close() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.closed = true
	for r := range i.open {
		r.f.Close()
	}
	i.open = nil
}

type storeLayer struct {
	img  *storeImage
	desc v1.Descriptor
}

func (l *storeLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storeLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	i := l.img
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return nil, fmt.Errorf("image unpack is over")
	}
	rc, err := i.s.OpenBlob(l.desc.Digest.String())
	if err != nil {
		return nil, err
	}
	r := &layerReader{img: i, f: rc, h: sha256.New(), desc: l.desc}
	if i.open == nil {
		i.open = map[*layerReader]bool{}
	}
	i.open[r] = true
	i.current.Store(r)
	return r, nil
}

// layerReader reads a layer blob, failing if it is longer than its
// descriptor says or, at its end, does not match its digest.
type layerReader struct {
	img  *storeImage
	f    io.ReadCloser
	h    hash.Hash
	n    int64
	desc v1.Descriptor
}

func (r *layerReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if r.n > r.desc.Size {
		return n, damaged(r.desc.Digest.String())
	}
	if err == io.EOF {
		if r.n != r.desc.Size || "sha256:"+hex.EncodeToString(r.h.Sum(nil)) != r.desc.Digest.String() {
			return n, damaged(r.desc.Digest.String())
		}
		r.img.verified.Store(r.desc.Digest.String(), true)
	}
	return n, err
}

func (r *layerReader) Close() error {
	r.img.mu.Lock()
	open := r.img.open[r]
	delete(r.img.open, r)
	r.img.mu.Unlock()
	if !open {
		return nil
	}
	return r.f.Close()
}

// verifyBlob reads a stored blob whole and checks its size and digest.
func (s *Store) verifyBlob(d v1.Descriptor) error {
	rc, err := s.OpenBlob(d.Digest.String())
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return fmt.Errorf("verify blob: %w", err)
	}
	if n != d.Size || "sha256:"+hex.EncodeToString(h.Sum(nil)) != d.Digest.String() {
		return damaged(d.Digest.String())
	}
	return nil
}

// explain names the layer being read in a refusal from ggcr; a damaged
// blob often fails to decompress before its end, where its digest is
// checked, so it says which it is.
func (i *storeImage) explain(err error) error {
	cur := i.current.Load()
	if cur == nil {
		return baton.Errorf(baton.EUNPROCESSABLE, "a layer is not a usable tar archive: %v; rebuild the image", err)
	}
	if verr := i.s.verifyBlob(cur.desc); verr != nil {
		return verr
	}
	return baton.Errorf(baton.EUNPROCESSABLE, "layer %s is not a usable tar archive: %v; rebuild the image", short(cur.desc.Digest.String()), err)
}
