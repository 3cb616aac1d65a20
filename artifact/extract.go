package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/batonhq/baton"
)

// Extract unpacks the archive at archivePath, of the given kind ("zip" or
// "tar.gz"), into dest, which must not exist yet. Every write goes through an
// os.Root on dest, and entries that would reach outside it, links that lead
// outside it, devices and archives over lim are refused with EUNPROCESSABLE
// naming the entry. Paths are kept as they are in the archive. On any error
// dest is removed, so a caller never sees half an artifact; if ctx ends,
// its cause is returned.
func Extract(ctx context.Context, archivePath, kind, dest string, lim Limits) error {
	return extract(ctx, archivePath, kind, dest, lim, nil)
}

// extract is Extract with zip entries cached in entries when not nil.
func extract(ctx context.Context, archivePath, kind, dest string, lim Limits, entries *entryCache) error {
	var unpack func(*extractor, *os.File, int64) error
	switch kind {
	case KindZip:
		unpack = extractZip
	case KindTarGz:
		unpack = extractTarGz
	default:
		return baton.Errorf(baton.EINVALID, "unknown artifact kind %q; want %q or %q", kind, KindZip, KindTarGz)
	}
	f, err := os.Open(archivePath)
	if err != nil {
		return fmt.Errorf("open artifact: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open artifact: %w", err)
	}
	return extractInto(ctx, dest, lim, TarOptions{}, func(x *extractor) error {
		x.entries = entries
		return unpack(x, f, info.Size())
	})
}

// ExtractTar unpacks the uncompressed tar stream r into dest, which must not
// exist yet, by Extract's rules as changed by opt. It reads r to its end,
// past the tar trailer, so that an error the writer reports after the
// trailer is seen. On any error dest is removed; r is read no further than
// the first refused entry.
func ExtractTar(ctx context.Context, r io.Reader, dest string, lim Limits, opt TarOptions) error {
	return extractInto(ctx, dest, lim, opt, func(x *extractor) error {
		if err := extractTar(x, r); err != nil {
			return err
		}
		return x.copy("(end of archive)", io.Discard, r)
	})
}

// TarOptions changes ExtractTar's rules for trees that are not revision
// folders but container root filesystems.
type TarOptions struct {
	// KeepModes keeps each entry's permission and sticky bits instead of
	// 0644/0755, without setuid and setgid. Folders get theirs once the
	// whole tree is written, so a read-only folder can still be filled.
	KeepModes bool
	// ContainerLinks accepts symlinks to absolute paths and to paths above
	// dest: a container whose root is dest resolves them inside it, and
	// every write here goes through an os.Root, which never follows a link
	// out. It also accepts hard links to files later in the stream, as a
	// flattened image lists its upper layers first.
	ContainerLinks bool
}

// extractInto creates dest, runs unpack with an extractor rooted there,
// checks the links and removes dest again on any error.
func extractInto(ctx context.Context, dest string, lim Limits, opt TarOptions, unpack func(*extractor) error) (err error) {
	if err := os.Mkdir(dest, 0o755); err != nil {
		return fmt.Errorf("create revision folder: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		if rmErr := os.RemoveAll(dest); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove partly unpacked revision folder: %w", rmErr))
		}
	}()
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("open revision folder: %w", err)
	}
	defer root.Close()

	x := &extractor{ctx: ctx, root: root, lim: lim.withDefaults(), opt: opt, buf: make([]byte, 32<<10)}
	if err := unpack(x); err != nil {
		return err
	}
	return x.finish()
}

// readErr reports an error from reading the archive: our own errors from
// the bounded stream below the decoder pass through, the rest is corruption.
func (x *extractor) readErr(raw string, err error) error {
	var be *baton.Error
	if errors.As(err, &be) {
		return be
	}
	if x.ctx.Err() != nil {
		return context.Cause(x.ctx)
	}
	if raw != "" {
		err = fmt.Errorf("entry %s: %w", quote(raw), err)
	}
	return corrupt(err)
}

// corrupt reports an archive that cannot be read to the end.
func corrupt(err error) error {
	return unprocessable("artifact is corrupt: %v; check that the upload was complete and the file opens locally", err)
}

// tooBig reports an archive whose content is over the byte limit.
func (x *extractor) tooBig() error {
	return unprocessable("archive unpacks to more than %s (limit); leave out what the app does not need at run time or raise the server's unpack limit", baton.FormatSize(x.lim.MaxBytes))
}

// tooMany reports an archive with more entries than the limit.
func (x *extractor) tooMany() error {
	return unprocessable("archive has more than %d entries (limit); leave out what the app does not need at run time or raise the server's limit", x.lim.MaxFiles)
}

// copy copies r to w a buffer at a time, counting real bytes against the
// limit (headers can lie) and stopping as soon as ctx ends.
func (x *extractor) copy(raw string, w io.Writer, r io.Reader) error {
	for {
		if x.ctx.Err() != nil {
			return context.Cause(x.ctx)
		}
		n, rerr := r.Read(x.buf)
		if n > 0 {
			x.bytes += int64(n)
			if x.bytes > x.lim.MaxBytes {
				return x.tooBig()
			}
			if _, err := w.Write(x.buf[:n]); err != nil {
				return x.fsErr(raw, err)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return x.readErr(raw, rerr)
		}
	}
}
