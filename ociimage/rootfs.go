package ociimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
)

// Rootfs returns the folder holding the flattened filesystem of the image
// held under digest, unpacking it the first time: into a temporary folder,
// each layer checked against its digest as it is read, then renamed into
// place. Concurrent callers for one image unpack it once. The folder is
// meant to be read only; a refused image leaves nothing behind.
func (s *Store) Rootfs(ctx context.Context, digest string) (string, error) {
	r, err := s.record(digest)
	if err != nil {
		return "", err
	}
	hex, _ := parseDigest(digest)
	dir := s.rootfsPath(hex)
	unlock, err := s.lock(ctx, digest)
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	tmp := tempName(filepath.Join(s.dir, "rootfs"), hex)
	if err := s.unpack(ctx, r, tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", errors.Join(fmt.Errorf("unpack image: %w", err), os.RemoveAll(tmp))
	}
	return dir, nil
}

// unpack flattens the image's layers with mutate.Extract and writes the
// result to dest through artifact.ExtractTar.
func (s *Store) unpack(ctx context.Context, r *record, dest string) error {
	s.unpacks.Add(1)
	si, err := s.imageFromStore(r.Digest)
	if err != nil {
		return err
	}
	img, err := partial.CompressedToImage(si)
	if err != nil {
		return err
	}
	err = flatten(ctx, img, dest, s.lim.Extract, si.explain)
	// ggcr's goroutine may still be reading a layer: take it away.
	si.close()
	if err == nil {
		for i, l := range r.Layers {
			if _, ok := si.verified.Load(l.Digest); !ok {
				err = baton.Errorf(baton.EUNPROCESSABLE, "layer %d (%s) of image %s was not read to its end, so its digest is unchecked; the layer is not a tar archive", i+1, short(l.Digest), short(r.Digest))
				break
			}
		}
		if err != nil {
			err = errors.Join(err, os.RemoveAll(dest))
		}
	}
	if err != nil {
		return unpackErr(r, err)
	}
	return nil
}

// unpackErr names the image in a refusal.
func unpackErr(r *record, err error) error {
	var be *baton.Error
	if !errors.As(err, &be) {
		return fmt.Errorf("unpack image %s: %w", short(r.Digest), err)
	}
	msg := strings.NewReplacer("revision folder", "image's root filesystem", "in an artifact", "in an image layer", "archive entry", "image file").Replace(be.Message)
	return &baton.Error{Code: be.Code, Message: fmt.Sprintf("image %s cannot be unpacked: %s", short(r.Digest), msg)}
}

// flatten writes img's filesystem, its layers flattened by mutate.Extract,
// to dest through artifact.ExtractTar. explain turns ggcr's own refusals
// (an unsafe path, a layer that is not a tar) into baton errors.
func flatten(ctx context.Context, img v1.Image, dest string, lim artifact.Limits, explain func(error) error) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	return artifact.ExtractTar(ctx, &flatReader{r: rc, explain: explain}, dest, lim, artifact.TarOptions{KeepModes: true, ContainerLinks: true})
}

// flatReader reads mutate.Extract's stream, passing its errors other than
// baton's and the context's through explain.
type flatReader struct {
	r       io.Reader
	explain func(error) error
}

func (f *flatReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == nil || err == io.EOF {
		return n, err
	}
	var be *baton.Error
	if errors.As(err, &be) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return n, err
	}
	return n, f.explain(err)
}

// maxReadFile bounds ReadFile: it is for configuration files.
const maxReadFile = 8 << 20

// ReadFile returns the file at path (absolute or relative to /) in the
// filesystem of the image held under digest, following symlinks as the
// container would, never out of it. A missing file is ENOTFOUND.
func (s *Store) ReadFile(ctx context.Context, digest, name string) ([]byte, error) {
	dir, err := s.Rootfs(ctx, digest)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open image rootfs: %w", err)
	}
	defer root.Close()
	p, err := resolve(root, name)
	if err == nil {
		var fi fs.FileInfo
		if fi, err = root.Stat(p); err == nil && !fi.Mode().IsRegular() {
			return nil, baton.Errorf(baton.EINVALID, "%s in image %s is not a file", quote(name), short(digest))
		}
		if err == nil && fi.Size() > maxReadFile {
			return nil, baton.Errorf(baton.ETOOLARGE, "%s in image %s is over %s", quote(name), short(digest), baton.FormatSize(maxReadFile))
		}
	}
	var data []byte
	if err == nil {
		data, err = root.ReadFile(p)
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNoPath) {
		return nil, baton.Errorf(baton.ENOTFOUND, "image %s has no file %s", short(digest), quote(name))
	}
	if err != nil {
		return nil, fmt.Errorf("read %s from image: %w", quote(name), err)
	}
	return data, nil
}

var errNoPath = errors.New("path does not resolve")

// resolve turns name into a path inside root with no symlinks in it,
// resolving links as the kernel would inside a container whose root is
// root: absolute targets start again at root, ".." stops at root.
func resolve(root *os.Root, name string) (string, error) {
	todo := strings.Split(name, "/")
	var done []string
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		p := path.Join(append(done, c)...)
		fi, err := root.Lstat(p)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if hops++; hops > 40 {
			return "", errNoPath
		}
		target, err := root.Readlink(p)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}
