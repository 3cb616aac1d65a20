package coordinator

import (
	"os"
	"syscall"
	"time"
)

// Collection measures every revision folder after every operation: with
// twenty kept revisions of an app whose folders hold tens of thousands of
// files (node_modules), that was a walk of every one of them each time. A
// folder nothing runs in does not change (instances write into their own;
// builds and releases run during their deployment, when the revision is in
// use; a restore writes a removed folder anew, a new directory), so its
// size is kept from the last measure while the directory is the same one.

// folderSize is a revision folder's size as measured, with what identifies
// the directory measured.
type folderSize struct {
	dev, ino uint64
	mtime    time.Time
	bytes    int64
}

// folderBytes returns the bytes of the regular files under dir: measured
// again when fresh (something may be writing there) or when dir is not the
// directory measured last, else the size measured then. It records what
// it answered in seen, which the caller makes the next collection's
// c.folderSizes. Caller holds gcMu.
func (c *Coordinator) folderBytes(dir string, fresh bool, seen map[string]folderSize) (int64, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return dirSize(dir)
	}
	id := folderSize{dev: uint64(st.Dev), ino: st.Ino, mtime: fi.ModTime()}
	if k, hit := c.folderSizes[dir]; hit && !fresh && k.dev == id.dev && k.ino == id.ino && k.mtime.Equal(id.mtime) {
		seen[dir] = k
		return k.bytes, nil
	}
	n, err := dirSize(dir)
	if err == nil {
		id.bytes = n
		seen[dir] = id
	}
	return n, err
}
