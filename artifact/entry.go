package artifact

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
	"syscall"
)

// extractor writes archive entries under root, whatever the archive format.
type extractor struct {
	ctx   context.Context
	root  *os.Root
	lim   Limits
	files int
	bytes int64
	buf   []byte
	// links are the symlinks written; checkLinks follows them once the
	// whole tree exists, because a later entry can change where they lead.
	links []string
}

// entry counts one entry and returns its cleaned name, "" for the root.
func (x *extractor) entry(raw string) (string, error) {
	if x.ctx.Err() != nil {
		return "", context.Cause(x.ctx)
	}
	x.files++
	if x.files > x.lim.MaxFiles {
		return "", x.tooMany()
	}
	return cleanName(raw)
}

// cleanName turns an archive entry name into a slash-separated path
// relative to the revision folder, refusing any that could leave it.
// Backslashes count as separators: Windows tools write them in zips.
func cleanName(raw string) (string, error) {
	if raw == "" {
		return "", unprocessable("archive has an entry with an empty name")
	}
	if strings.IndexByte(raw, 0) >= 0 {
		return "", unprocessable("archive entry %s has a NUL byte in its name", quote(raw))
	}
	name := strings.ReplaceAll(raw, `\`, "/")
	if strings.HasPrefix(name, "/") {
		return "", escapes(raw)
	}
	parts := make([]string, 0, strings.Count(name, "/")+1)
	for p := range strings.SplitSeq(name, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", escapes(raw)
		}
		parts = append(parts, p)
	}
	clean := strings.Join(parts, "/")
	if clean != "" && !filepath.IsLocal(filepath.FromSlash(clean)) {
		return "", escapes(raw)
	}
	return clean, nil
}

func escapes(raw string) error {
	return unprocessable("archive entry %s escapes the revision folder; paths in an artifact must be relative and stay inside it", quote(raw))
}

// quote quotes an entry name for a message, shortening absurdly long ones.
func quote(s string) string {
	const max = 200
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

func (x *extractor) dir(raw string) error {
	name, err := x.entry(raw)
	if err != nil || name == "" {
		return err
	}
	fi, err := x.root.Lstat(name)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return unprocessable("archive entry %s is a folder, but an earlier entry made it a file or link", quote(raw))
	case !errors.Is(err, fs.ErrNotExist):
		return x.fsErr(raw, err)
	}
	if err := x.root.MkdirAll(name, 0o755); err != nil {
		return x.fsErr(raw, err)
	}
	return nil
}

// file writes a regular file, executable if mode has any x bit.
func (x *extractor) file(raw string, mode fs.FileMode, r io.Reader) error {
	name, err := x.entry(raw)
	if err != nil {
		return err
	}
	if err := x.prepare(raw, name); err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	// O_EXCL after prepare removed any earlier entry, so a file never
	// writes through a link left by an earlier one.
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return x.fsErr(raw, err)
	}
	err = x.copy(raw, f, r)
	if err == nil {
		// The umask must not take away exec bits.
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = x.fsErr(raw, cerr)
	}
	return err
}

func (x *extractor) symlink(raw, target string) error {
	name, err := x.entry(raw)
	if err != nil {
		return err
	}
	switch {
	case target == "" || strings.IndexByte(target, 0) >= 0 || strings.Contains(target, `\`):
		return unprocessable("archive entry %s is a symlink with an unusable target %s", quote(raw), quote(target))
	case path.IsAbs(target):
		return unprocessable("archive entry %s is a symlink to the absolute path %s; only relative links inside the revision folder are allowed", quote(raw), quote(target))
	}
	if to := path.Join(path.Dir(name), target); to == ".." || strings.HasPrefix(to, "../") {
		return unprocessable("archive entry %s is a symlink to %s, which is outside the revision folder", quote(raw), quote(target))
	}
	if err := x.prepare(raw, name); err != nil {
		return err
	}
	if err := x.root.Symlink(target, name); err != nil {
		return x.fsErr(raw, err)
	}
	x.links = append(x.links, name)
	return nil
}

// hardlink links name to target, a regular file written by an earlier
// entry. Links to anything else could copy a symlink into a folder where
// its relative target means something else.
func (x *extractor) hardlink(raw, target string) error {
	name, err := x.entry(raw)
	if err != nil {
		return err
	}
	to, err := cleanName(target)
	if err != nil || to == "" {
		return unprocessable("archive entry %s is a hard link to %s, which is outside the revision folder", quote(raw), quote(target))
	}
	fi, err := x.root.Lstat(to)
	if err != nil || !fi.Mode().IsRegular() {
		return unprocessable("archive entry %s is a hard link to %s, which is not a file earlier in the archive", quote(raw), quote(target))
	}
	if to == name {
		return nil
	}
	if err := x.prepare(raw, name); err != nil {
		return err
	}
	if err := x.root.Link(to, name); err != nil {
		return x.fsErr(raw, err)
	}
	return nil
}

// prepare makes name's parent folders and removes an earlier entry of the
// same name, unless that is a folder: replacing one would drop its content.
func (x *extractor) prepare(raw, name string) error {
	if name == "" {
		return unprocessable("archive entry %s has no file name", quote(raw))
	}
	if dir := path.Dir(name); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return x.fsErr(raw, err)
		}
	}
	fi, err := x.root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return x.fsErr(raw, err)
	case fi.IsDir():
		return unprocessable("archive entry %s would replace the folder of the same name from an earlier entry", quote(raw))
	}
	if err := x.root.Remove(name); err != nil {
		return x.fsErr(raw, err)
	}
	return nil
}

// fsErr turns a failed write into an error: the machine's problems (a full
// disk) stay internal, anything else is the archive's fault.
func (x *extractor) fsErr(raw string, err error) error {
	for _, sys := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS, syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EACCES, syscall.EPERM} {
		if errors.Is(err, sys) {
			return fmt.Errorf("unpack archive entry %s: %w", quote(raw), err)
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		err = le.Err
	}
	return unprocessable("archive entry %s cannot be unpacked: %v", quote(raw), err)
}
