package artifact

import (
	"archive/zip"
	"io"
	"sync"
)

// keptKeySets is how many artifacts' keys entryKeys remembers: an
// artifact is extracted right after its upload, so a few suffice.
const keptKeySets = 16

// entryKeys remembers the entry cache keys (entryKey) of the large entries
// of the zip artifacts Put stored last, by digest and then by the offset of
// each entry's data. Put computes them while the upload's fsync waits for
// the disk, so that extracting the artifact finds its cached entries
// without reading and hashing them again. A stored artifact never changes,
// so its keys stay true; one not remembered (baton restarted, or many
// uploads since) is hashed during extraction as before.
type entryKeys struct {
	mu    sync.Mutex
	sets  map[string]map[int64]string
	order []string // digests, oldest first
}

func (k *entryKeys) add(digest string, keys map[int64]string) {
	if len(keys) == 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sets == nil {
		k.sets = map[string]map[int64]string{}
	}
	if _, ok := k.sets[digest]; !ok {
		k.order = append(k.order, digest)
	}
	k.sets[digest] = keys
	if len(k.order) > keptKeySets {
		delete(k.sets, k.order[0])
		k.order = k.order[1:]
	}
}

func (k *entryKeys) get(digest string) map[int64]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sets[digest]
}

// cacheable reports whether extraction keeps zf's content in the entry
// cache: a large deflated regular file.
func cacheable(zf *zip.File) bool {
	return zf.Mode().IsRegular() && zf.Method == zip.Deflate && zf.UncompressedSize64 >= minCachedEntry
}

// largeEntryKeys returns the keys of the cacheable entries of the zip in
// r, by the offset of each entry's data; nil if r is not a zip (a tar.gz,
// an image archive) or cannot be read as one. It reads no more than size
// bytes in all: entries that share their bytes (an archive made to cost
// its reader) are left to extraction, which has its limits.
func largeEntryKeys(r io.ReaderAt, size int64) map[int64]string {
	zr, err := zip.NewReader(r, size)
	if zr == nil || (err != nil && err != zip.ErrInsecurePath) {
		return nil
	}
	var keys map[int64]string
	var hashed uint64
	var buf []byte
	for _, zf := range zr.File {
		if !cacheable(zf) {
			continue
		}
		if hashed += zf.CompressedSize64; hashed > uint64(size) {
			return nil
		}
		off, err := zf.DataOffset()
		if err != nil {
			return nil
		}
		if buf == nil {
			buf = make([]byte, 32<<10)
		}
		k, err := entryKey(zf, buf)
		if err != nil {
			return nil
		}
		if keys == nil {
			keys = map[int64]string{}
		}
		keys[off] = k
	}
	return keys
}
