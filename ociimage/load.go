package ociimage

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Archive kinds, as returned by ArchiveKind.
const (
	KindOCIArchive    = "oci-archive"
	KindDockerArchive = "docker-archive"
)

// ArchiveKind reports whether the file at path is an image archive, by its
// content: an OCI layout in a tar (podman save --format oci-archive) is
// "oci-archive", a tar with manifest.json (docker or podman save) is
// "docker-archive". Anything else, such as a zip or tar.gz of an app, is
// not an image archive.
func ArchiveKind(path string) (kind string, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	var layout, index, manifest bool
	tr := tar.NewReader(f)
	for range 100_000 {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		switch cleanTarName(hdr.Name) {
		case "oci-layout":
			layout = true
		case "index.json":
			index = true
		case "manifest.json":
			manifest = true
		}
		if layout && index {
			return KindOCIArchive, true
		}
	}
	if manifest {
		return KindDockerArchive, true
	}
	return "", false
}

func cleanTarName(name string) string {
	return path.Clean("/" + name)[1:]
}

// Load holds the image in the archive at path (see ArchiveKind); an OCI
// archive with an index gives its linux/amd64 image. Anything else is
// EUNPROCESSABLE.
func (s *Store) Load(ctx context.Context, path string) (Image, error) {
	kind, ok := ArchiveKind(path)
	if !ok {
		return Image{}, baton.Errorf(baton.EUNPROCESSABLE, "%s is not an image archive; save the image with `podman save --format oci-archive` or `docker save`", quote(filepath.Base(path)))
	}
	fail := func(what string, err error) error {
		return sourceErr(fmt.Sprintf("%s: %s", kind, what), err)
	}
	if kind == KindDockerArchive {
		img, err := tarball.ImageFromPath(path, nil)
		if err != nil {
			return Image{}, fail("read archive", err)
		}
		return s.add(ctx, img, "archive", "", fail)
	}

	// An OCI layout is read from a folder: unpack the archive into tmp/
	// by artifact's rules, then read it with ggcr's layout.
	f, err := os.Open(path)
	if err != nil {
		return Image{}, fmt.Errorf("open image archive: %w", err)
	}
	defer f.Close()
	dir := tempName(filepath.Join(s.dir, "tmp"), "load")
	lim := artifact.Limits{MaxBytes: s.lim.MaxImageBytes + 64<<20, MaxFiles: 10_000}
	if err := artifact.ExtractTar(ctx, f, dir, lim, artifact.TarOptions{}); err != nil {
		return Image{}, fail("unpack archive", err)
	}
	defer os.RemoveAll(dir)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return Image{}, fail("read index.json", err)
	}
	img, err := layoutImage(idx, fail)
	if err != nil {
		return Image{}, err
	}
	return s.add(ctx, img, "archive", "", fail)
}

// layoutImage returns the one image of an OCI layout's index.json, or the
// linux/amd64 image of the one index in it.
func layoutImage(idx v1.ImageIndex, fail failFunc) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fail("read index.json", err)
	}
	if len(im.Manifests) == 1 && im.Manifests[0].MediaType.IsIndex() {
		child, err := idx.ImageIndex(im.Manifests[0].Digest)
		if err != nil {
			return nil, fail("read image index", err)
		}
		return indexImage(child, fail)
	}
	var images []v1.Descriptor
	for _, d := range im.Manifests {
		if d.MediaType.IsImage() {
			images = append(images, d)
		}
	}
	switch len(images) {
	case 0:
		return nil, baton.Errorf(baton.EUNPROCESSABLE, "oci-archive holds no image manifest; save an image with `podman save --format oci-archive IMAGE`")
	case 1:
		img, err := idx.Image(images[0].Digest)
		if err != nil {
			return nil, fail("read image", err)
		}
		return img, nil
	}
	return indexImage(idx, fail)
}
