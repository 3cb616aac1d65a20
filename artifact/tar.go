package artifact

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

func extractTarGz(x *extractor, f *os.File, _ int64) error {
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return corrupt(err)
	}
	defer gz.Close()
	if err := extractTar(x, gz); err != nil {
		return err
	}
	// Reading past the tar trailer to the end of the gzip stream verifies
	// its checksum; the bytes count against the limit like any others.
	return x.copy("(end of archive)", io.Discard, gz)
}

// extractTar unpacks the tar stream r.
func extractTar(x *extractor, r io.Reader) error {
	// Headers, padding and skipped metadata never pass through x.copy, so
	// the stream as a whole is bounded too, with room for that overhead.
	stream := &boundedReader{x: x, r: r, max: x.lim.MaxBytes + int64(x.lim.MaxFiles)*tarOverheadPerEntry}
	tr := tar.NewReader(stream)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		// Insecure names are reported by our own checks, naming the entry.
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return x.readErr("", err)
		}
		if err := x.tarEntry(hdr, tr); err != nil {
			return err
		}
	}
	return nil
}

// tarOverheadPerEntry allows a header, a PAX header and padding per entry.
const tarOverheadPerEntry = 4 << 10

// boundedReader fails once more than max bytes have been read or ctx ends.
type boundedReader struct {
	x   *extractor
	r   io.Reader
	n   int64
	max int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.x.ctx.Err() != nil {
		return 0, context.Cause(b.x.ctx)
	}
	n, err := b.r.Read(p)
	if b.n += int64(n); b.n > b.max {
		return n, b.x.tooBig()
	}
	return n, err
}

func (x *extractor) tarEntry(hdr *tar.Header, tr *tar.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		return x.file(hdr.Name, hdr.FileInfo().Mode(), tr)
	case tar.TypeDir:
		return x.dir(hdr.Name, hdr.FileInfo().Mode())
	case tar.TypeSymlink:
		return x.symlink(hdr.Name, hdr.Linkname)
	case tar.TypeLink:
		return x.hardlink(hdr.Name, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return unprocessable("archive entry %s is a device or named pipe; only files, folders and links can be unpacked", quote(hdr.Name))
	case tar.TypeXGlobalHeader:
		// Metadata for the archive, not a file, but counted so that
		// millions of them cannot keep the loop busy.
		_, err := x.entry(".")
		return err
	}
	return unprocessable("archive entry %s has tar type %s, which baton does not unpack; only files, folders and links can be unpacked", quote(hdr.Name), fmt.Sprintf("%q", hdr.Typeflag))
}
