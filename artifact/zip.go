package artifact

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// maxLinkTarget bounds a symlink target read from an archive (PATH_MAX).
const maxLinkTarget = 4096

func extractZip(x *extractor, f *os.File, size int64) error {
	zr, err := zip.NewReader(f, size)
	// Insecure names are reported by our own checks, naming the entry.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return corrupt(err)
	}
	if len(zr.File) > x.lim.MaxFiles {
		return x.tooMany()
	}
	for _, zf := range zr.File {
		if err := x.zipEntry(zf); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) zipEntry(zf *zip.File) error {
	mode := zf.Mode()
	switch {
	case mode.IsDir():
		return x.dir(zf.Name, zf.Mode())
	case mode&fs.ModeSymlink != 0:
		target, err := x.zipLinkTarget(zf)
		if err != nil {
			return err
		}
		return x.symlink(zf.Name, target)
	case mode.Type() != 0:
		return unprocessable("archive entry %s is a device, pipe or socket; only files, folders and links can be unpacked", quote(zf.Name))
	}
	if x.entries != nil && cacheable(zf) {
		return x.zipCachedFile(zf, mode)
	}
	rc, err := x.zipOpen(zf)
	if err != nil {
		return err
	}
	defer rc.Close()
	return x.file(zf.Name, mode, rc)
}

func (x *extractor) zipOpen(zf *zip.File) (io.ReadCloser, error) {
	rc, err := zf.Open()
	if errors.Is(err, zip.ErrAlgorithm) {
		return nil, unprocessable("archive entry %s is compressed with a method baton cannot read (method %d); use deflate or store", quote(zf.Name), zf.Method)
	}
	if err != nil {
		return nil, corrupt(fmt.Errorf("entry %s: %w", quote(zf.Name), err))
	}
	return rc, nil
}

func (x *extractor) zipLinkTarget(zf *zip.File) (string, error) {
	rc, err := x.zipOpen(zf)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var b limitedBuffer
	b.max = maxLinkTarget
	if err := x.copy(zf.Name, &b, rc); err != nil {
		return "", err
	}
	if b.over {
		return "", unprocessable("archive entry %s is a symlink with a target longer than %d bytes", quote(zf.Name), maxLinkTarget)
	}
	return string(b.data), nil
}

// limitedBuffer keeps up to max bytes and notes whether more came.
type limitedBuffer struct {
	data []byte
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.data); len(p) > room {
		p = p[:room]
		b.over = true
	}
	b.data = append(b.data, p...)
	return len(p), nil
}
