package artifact

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
)

// maxLinkHops matches Linux's limit on symlinks followed in one lookup.
const maxLinkHops = 40

// checkLinks follows every symlink in the finished tree and refuses the
// archive if one leads outside the revision folder. Each link was inside
// when written, but a link through another link ("a -> d/l/..", then
// "d/l -> ..") can still escape, and only the final tree tells.
func (x *extractor) checkLinks() error {
	slices.Sort(x.links)
	for _, name := range slices.Compact(x.links) {
		fi, err := x.root.Lstat(name)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue // replaced by a later entry
		}
		out, err := x.leadsOutside(name)
		if err != nil {
			return err
		}
		if out {
			return unprocessable("archive entry %s is a symlink that leads outside the revision folder through other links, or a link loop", quote(name))
		}
	}
	return nil
}

// leadsOutside resolves name one component at a time, as the kernel would,
// and reports whether it reaches outside the root or loops. A missing
// component ends the walk: the kernel could not resolve past it either.
func (x *extractor) leadsOutside(name string) (bool, error) {
	todo := strings.Split(name, "/")
	var done []string
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return true, nil
			}
			done = done[:len(done)-1]
			continue
		}
		done = append(done, c)
		p := path.Join(done...)
		fi, err := x.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return false, nil
		}
		if err != nil {
			return false, x.fsErr(name, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		if hops++; hops > maxLinkHops {
			return true, nil
		}
		target, err := x.root.Readlink(p)
		if err != nil {
			return false, x.fsErr(name, err)
		}
		if path.IsAbs(target) {
			return true, nil
		}
		done = done[:len(done)-1]
		todo = append(strings.Split(target, "/"), todo...)
	}
	return false, nil
}
