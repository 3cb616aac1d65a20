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
	"slices"
	"strings"
	"syscall"
)

// extractor writes archive entries under root, whatever the archive format.
type extractor struct {
	ctx   context.Context
	root  *os.Root
	lim   Limits
	opt   TarOptions
	files int
	bytes int64
	buf   []byte
	// links are the symlinks written; checkLinks follows them once the
	// whole tree exists, because a later entry can change where they lead.
	links []string
	// dirModes are applied by finish, with KeepModes.
	dirModes map[string]fs.FileMode
	// laterLinks are hard links whose target comes later in the stream,
	// made by finish, with ContainerLinks.
	laterLinks []hardlinkEntry
	// entries, when not nil, keeps and gives large zip entries' content.
	entries *entryCache
}

type hardlinkEntry struct{ raw, name, target, to string }

// perm returns the permission bits an entry of the given mode gets.
func (x *extractor) perm(mode fs.FileMode, dir bool) fs.FileMode {
	switch {
	case x.opt.KeepModes:
		return mode & (fs.ModePerm | fs.ModeSticky)
	case dir || mode&0o111 != 0:
		return 0o755
	}
	return 0o644
}

// finish makes the hard links to later entries, checks where symlinks
// lead and gives folders their modes, once every entry is written.
func (x *extractor) finish() error {
	for _, l := range x.laterLinks {
		if err := x.link(l.raw, l.name, l.target, l.to); err != nil {
			return err
		}
	}
	if !x.opt.ContainerLinks {
		if err := x.checkLinks(); err != nil {
			return err
		}
	}
	// Deepest first, so a folder made read-only never blocks its children.
	names := make([]string, 0, len(x.dirModes))
	for name := range x.dirModes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range slices.Backward(names) {
		if err := x.root.Chmod(name, x.dirModes[name]); err != nil {
			return x.fsErr(name, err)
		}
	}
	return nil
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

func (x *extractor) dir(raw string, mode fs.FileMode) error {
	name, err := x.entry(raw)
	if err != nil || name == "" {
		return err
	}
	if x.opt.KeepModes {
		if x.dirModes == nil {
			x.dirModes = map[string]fs.FileMode{}
		}
		x.dirModes[name] = x.perm(mode, true)
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

// file writes a regular file with r's content, executable if mode has any x bit, or with
// mode's permission bits under KeepModes.
func (x *extractor) file(raw string, mode fs.FileMode, r io.Reader) error {
	return x.fileFrom(raw, mode, func(f *os.File) error { return x.copy(raw, f, r) })
}

// fileFrom is file with the content that fill writes into the new file.
func (x *extractor) fileFrom(raw string, mode fs.FileMode, fill func(*os.File) error) error {
	name, err := x.entry(raw)
	if err != nil {
		return err
	}
	if err := x.prepare(raw, name); err != nil {
		return err
	}
	perm := x.perm(mode, false)
	// O_EXCL after prepare removed any earlier entry, so a file never
	// writes through a link left by an earlier one.
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return x.fsErr(raw, err)
	}
	err = fill(f)
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
	case x.opt.ContainerLinks:
	case path.IsAbs(target):
		return unprocessable("archive entry %s is a symlink to the absolute path %s; only relative links inside the revision folder are allowed", quote(raw), quote(target))
	default:
		if to := path.Join(path.Dir(name), target); to == ".." || strings.HasPrefix(to, "../") {
			return unprocessable("archive entry %s is a symlink to %s, which is outside the revision folder", quote(raw), quote(target))
		}
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
	if x.opt.ContainerLinks {
		if _, err := x.root.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			x.laterLinks = append(x.laterLinks, hardlinkEntry{raw, name, target, to})
			return nil
		}
	}
	return x.link(raw, name, target, to)
}

func (x *extractor) link(raw, name, target, to string) error {
	fi, err := x.root.Lstat(to)
	if err != nil || !fi.Mode().IsRegular() {
		where := "earlier in the archive"
		if x.opt.ContainerLinks {
			where = "in the image"
		}
		return unprocessable("archive entry %s is a hard link to %s, which is not a file %s", quote(raw), quote(target), where)
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
