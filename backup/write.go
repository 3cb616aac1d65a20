package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/ociimage"
	"github.com/batonhq/baton/sqlite"
)

// ImageStore is the image store a backup reads its images from
// (*ociimage.Store).
type ImageStore interface {
	// Digests lists the images held, by manifest digest.
	Digests() ([]string, error)
	// Image is ENOTFOUND for an image not held.
	Image(digest string) (ociimage.Image, error)
	// BlobDigests are the image's manifest, config and layers.
	BlobDigests(digest string) ([]string, error)
	// OpenBlob opens a blob (an *os.File), ENOTFOUND if not held.
	OpenBlob(digest string) (io.ReadCloser, error)
}

var _ ImageStore = (*ociimage.Store)(nil)

// Source is what Write makes a backup of.
type Source struct {
	// Snapshot writes a consistent copy of the SQLite store to a path that
	// does not exist yet (sqlite.DB.Snapshot); nil when the store is
	// PostgreSQL, whose database is not in the archive.
	Snapshot func(ctx context.Context, path string) error
	// StoreDump writes a dump of the PostgreSQL store to a path that does
	// not exist yet (PGDump); nil leaves the database out. Only without
	// Snapshot.
	StoreDump func(ctx context.Context, path string) error
	// ArtifactDir is the artifact store's folder (DATA/artifacts).
	ArtifactDir string
	// Images is the image store (DATA/images); nil for none.
	Images ImageStore
	// KeyFile is the sealed-secrets key; it is read only with IncludeKey.
	KeyFile    string
	IncludeKey bool
	// TempDir holds the database snapshot while the archive is written;
	// it needs room for a copy of the database.
	TempDir string
	// Version is the baton version recorded in the manifest.
	Version string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Pause is a test hook: after the manifest is sent (flushed to w
	// when w has a Flush method), Write waits this long, or until ctx
	// ends, so that a test can kill baton in the middle of a backup.
	Pause time.Duration
}

// entry is a file to put in the archive, opened before the manifest is
// written: an artifact or image that is removed meanwhile is still read
// whole.
type entry struct {
	File
	f *os.File
}

// Write writes a backup archive (tar.gz) of src to w and returns its
// manifest. The store is read through a snapshot, so baton keeps serving
// and the archive is consistent: it holds exactly the artifacts and
// images the snapshot's revisions and unfinished deployments need. On
// error, what was written to w is not a usable archive (it lacks its end).
func Write(ctx context.Context, w io.Writer, src Source) (Manifest, error) {
	if src.Now == nil {
		src.Now = time.Now
	}
	m := Manifest{Format: Format, CreatedAt: src.Now().UTC(), BatonVersion: src.Version, Store: "postgres", KeyIncluded: src.IncludeKey}
	var entries []entry
	defer func() {
		for _, e := range entries {
			e.f.Close()
		}
	}()
	if src.Snapshot != nil && src.StoreDump != nil {
		return Manifest{}, baton.Errorf(baton.EINVALID, "a store dump is for a PostgreSQL store: the SQLite store is always in the archive")
	}
	tmp := ""
	if src.Snapshot != nil || src.StoreDump != nil {
		if err := os.MkdirAll(src.TempDir, 0o700); err != nil {
			return Manifest{}, err
		}
		var err error
		if tmp, err = os.MkdirTemp(src.TempDir, "backup-"); err != nil {
			return Manifest{}, err
		}
		// The snapshot or dump stays open (and readable) in entries after
		// this.
		defer os.RemoveAll(tmp)
	}
	add := func(name, path string, sum string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		if sum == "" {
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				f.Close()
				return fmt.Errorf("read %s: %w", path, err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				f.Close()
				return err
			}
			sum = hex.EncodeToString(h.Sum(nil))
		}
		entries = append(entries, entry{File: File{Name: name, Size: fi.Size(), SHA256: sum}, f: f})
		return nil
	}

	var digests []string
	if src.Snapshot != nil {
		m.Store = "sqlite"
		snap := filepath.Join(tmp, DatabaseName)
		if err := src.Snapshot(ctx, snap); err != nil {
			return Manifest{}, err
		}
		info, err := sqlite.Inspect(ctx, snap)
		if err != nil {
			return Manifest{}, fmt.Errorf("check the snapshot: %w", err)
		}
		m.SchemaVersion, digests = info.SchemaVersion, info.Artifacts
		if err := add(DatabaseName, snap, ""); err != nil {
			return Manifest{}, err
		}
	} else {
		// The dump first: what is listed after it holds at least what
		// its revisions need.
		if src.StoreDump != nil {
			dump := filepath.Join(tmp, StoreDumpName)
			if err := src.StoreDump(ctx, dump); err != nil {
				return Manifest{}, err
			}
			if err := add(StoreDumpName, dump, ""); err != nil {
				return Manifest{}, err
			}
			m.StoreDump = true
		}
		var err error
		if digests, err = storedArtifacts(src.ArtifactDir); err != nil {
			return Manifest{}, err
		}
		if src.Images != nil {
			held, err := src.Images.Digests()
			if err != nil {
				return Manifest{}, err
			}
			digests = append(digests, held...)
		}
	}
	if src.IncludeKey {
		if err := add(KeyName, src.KeyFile, ""); err != nil {
			return Manifest{}, fmt.Errorf("read the secret key: %w", err)
		}
	}
	var images []string
	for _, d := range digests {
		if baton.IsImageDigest(d) {
			images = append(images, d)
			continue
		}
		if !artifact.ValidDigest(d) {
			continue
		}
		err := add(ArtifactsDir+d, filepath.Join(src.ArtifactDir, "sha256", d), d)
		if errors.Is(err, fs.ErrNotExist) {
			m.MissingArtifacts = append(m.MissingArtifacts, d)
			continue
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("read artifact %s: %w", d, err)
		}
	}
	blobs := map[string]bool{} // each blob once, however many images share it
	for _, d := range images {
		img, es, err := openImage(src.Images, d, blobs)
		if baton.ErrorCode(err) == baton.ENOTFOUND {
			m.MissingImages = append(m.MissingImages, d)
			continue
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("read image %s: %w", d, err)
		}
		entries = append(entries, es...)
		m.Images = append(m.Images, img)
	}
	for _, e := range entries {
		m.Files = append(m.Files, e.File)
	}
	if m.Store == "postgres" && !m.StoreDump {
		note := []byte(postgresNote)
		sum := sha256.Sum256(note)
		m.Files = append(m.Files, File{Name: PostgresNote, Size: int64(len(note)), SHA256: hex.EncodeToString(sum[:])})
	}

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	man, err := m.encode()
	if err != nil {
		return Manifest{}, err
	}
	if err := writeEntry(tw, ManifestName, int64(len(man)), bytes.NewReader(man), m.CreatedAt); err != nil {
		return Manifest{}, err
	}
	if src.Pause > 0 {
		if err := pause(ctx, w, tw, gz, src.Pause); err != nil {
			return Manifest{}, err
		}
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return Manifest{}, context.Cause(ctx)
		}
		if err := writeEntry(tw, e.Name, e.Size, e.f, m.CreatedAt); err != nil {
			return Manifest{}, fmt.Errorf("write %s: %w", e.Name, err)
		}
	}
	if m.Store == "postgres" && !m.StoreDump {
		if err := writeEntry(tw, PostgresNote, int64(len(postgresNote)), bytes.NewReader([]byte(postgresNote)), m.CreatedAt); err != nil {
			return Manifest{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return Manifest{}, err
	}
	if err := gz.Close(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

const postgresNote = `This baton uses PostgreSQL as its store. The database is not in this
archive: back it up with PostgreSQL's own tools (pg_dump, or your
provider's snapshots), at about the same time as this archive.

To restore: restore the database with pg_restore (or psql), then
  baton restore THIS-FILE --data DIR
  baton serve --store postgres://... --data DIR
`

// openImage opens the blobs of image d that are not in seen yet, and
// marks them seen once all are open. A missing image or blob is
// ENOTFOUND.
func openImage(store ImageStore, d string, seen map[string]bool) (img Image, es []entry, err error) {
	if store == nil {
		return img, nil, baton.Errorf(baton.ENOTFOUND, "no image store")
	}
	defer func() {
		if err != nil {
			for _, e := range es {
				e.f.Close()
			}
			es = nil
		}
	}()
	held, err := store.Image(d)
	if err != nil {
		return img, nil, err
	}
	img = Image{Digest: d, Ref: held.Ref}
	if img.Blobs, err = store.BlobDigests(d); err != nil {
		return img, nil, err
	}
	for _, b := range img.Blobs {
		hex, ok := strings.CutPrefix(b, "sha256:")
		if seen[b] || es != nil && slices.ContainsFunc(es, func(e entry) bool { return e.SHA256 == hex }) {
			continue
		}
		if !ok || !artifact.ValidDigest(hex) {
			return img, es, fmt.Errorf("image %s names blob %q, not a sha256 digest", d, b)
		}
		rc, err := store.OpenBlob(b)
		if err != nil {
			return img, es, err
		}
		f, ok := rc.(*os.File)
		if !ok {
			rc.Close()
			return img, es, fmt.Errorf("image store blob %s is not a file", b)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return img, es, err
		}
		es = append(es, entry{File: File{Name: ImageBlobsDir + hex, Size: fi.Size(), SHA256: hex}, f: f})
	}
	for _, b := range img.Blobs {
		seen[b] = true
	}
	return img, es, nil
}

// pause sends what is written so far and waits d or until ctx ends
// (Source.Pause).
func pause(ctx context.Context, w io.Writer, tw *tar.Writer, gz *gzip.Writer, d time.Duration) error {
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := gz.Flush(); err != nil {
		return err
	}
	if f, ok := w.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			return err
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// writeEntry writes one regular file of exactly size bytes from r.
func writeEntry(tw *tar.Writer, name string, size int64, r io.Reader, mod time.Time) error {
	hdr := &tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: mod, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, io.LimitReader(r, size))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s: read %d bytes of %d (it changed while it was read)", name, n, size)
	}
	return nil
}

// storedArtifacts lists the artifacts in the store folder dir.
func storedArtifacts(dir string) ([]string, error) {
	des, err := os.ReadDir(filepath.Join(dir, "sha256"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list artifacts: %w", err)
	}
	var out []string
	for _, de := range des {
		if de.Type().IsRegular() && artifact.ValidDigest(de.Name()) {
			out = append(out, de.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}
