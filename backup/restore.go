package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/ociimage"
	"github.com/batonhq/baton/secretstore"
	"github.com/batonhq/baton/sqlite"
)

// RestoreOptions says where and how to restore.
type RestoreOptions struct {
	// DataDir is the data directory to create; it must not exist or be
	// empty.
	DataDir string
	// KeyFile is the sealed-secrets key (the old DATA/secret.key) to put
	// in DataDir, for an archive made without the key.
	KeyFile string
	// NoKey restores an archive without a key and without KeyFile: baton
	// serve then makes a new key, and secret settings no longer open.
	NoKey bool
	// Store is a postgres:// URL of an empty database to load the
	// backup's store dump (made with --store-dump) into, with psql; the
	// dump is then not kept in DataDir.
	Store string
	// SchemaVersion is the newest store schema this baton knows; default
	// sqlite.SchemaVersion(). Tests lower it.
	SchemaVersion int
}

// Restore unpacks the archive r into a new data directory o.DataDir and
// returns its manifest. It writes to a temporary folder beside DataDir
// and renames it into place only once every file is checked: on any
// error nothing is left behind.
func Restore(ctx context.Context, r io.Reader, o RestoreOptions) (m Manifest, err error) {
	if o.SchemaVersion == 0 {
		o.SchemaVersion = sqlite.SchemaVersion()
	}
	dir := filepath.Clean(o.DataDir)
	if err := checkEmpty(dir); err != nil {
		return Manifest{}, err
	}
	var key []byte
	if o.KeyFile != "" {
		if key, err = readKey(o.KeyFile); err != nil {
			return Manifest{}, err
		}
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return Manifest{}, fmt.Errorf("not a baton backup (tar.gz): %w", err)
	}
	tr := tar.NewReader(gz)
	if m, err = readManifest(tr); err != nil {
		return Manifest{}, err
	}
	if err := checkCompatible(m, o.SchemaVersion); err != nil {
		return m, err
	}
	switch {
	case o.Store != "" && m.Store == "sqlite":
		return m, fmt.Errorf("the backup holds a SQLite store, which goes into the data directory: restore it without --store")
	case o.Store != "" && !m.StoreDump:
		return m, fmt.Errorf("the backup holds no dump of its PostgreSQL store (it was made without --store-dump): restore the database with its own tools, and this backup without --store")
	case m.KeyIncluded && key != nil:
		return m, fmt.Errorf("the backup holds its own secret key: restore it without --key")
	case !m.KeyIncluded && key == nil && !o.NoKey:
		return m, fmt.Errorf("the backup was made without the secret key (no --include-key): give the key file of the baton it came from with --key FILE (its DATA/secret.key), or --no-key to restore without it (secret settings will not open)")
	}

	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return m, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".restore-")
	if err != nil {
		return m, fmt.Errorf("create a folder beside %s to restore into: %w", dir, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return m, err
	}
	var images *ociimage.Store
	if len(m.Images) > 0 {
		// The server took these images in under its limits already.
		if images, err = ociimage.Open(filepath.Join(tmp, "images"), ociimage.Limits{MaxLayerBytes: 1 << 50, MaxImageBytes: 1 << 50}); err != nil {
			return m, err
		}
	}
	if err := unpack(ctx, tr, m, tmp, images); err != nil {
		return m, err
	}
	// The rest of the stream is the gzip trailer, whose checksum tells a
	// damaged archive.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return m, fmt.Errorf("the backup is damaged or cut short: %w", err)
	}
	for _, img := range m.Images {
		if _, err := images.Adopt(img.Digest, img.Ref); err != nil {
			return m, fmt.Errorf("the backup's image %s: %w", img.Digest, err)
		}
	}
	if m.Store == "sqlite" {
		info, err := sqlite.Inspect(ctx, filepath.Join(tmp, DatabaseName))
		if err != nil {
			return m, fmt.Errorf("the database in the backup: %w", err)
		}
		if info.SchemaVersion != m.SchemaVersion {
			return m, fmt.Errorf("the database in the backup is of schema %d, its manifest says %d", info.SchemaVersion, m.SchemaVersion)
		}
		opener := key
		if m.KeyIncluded {
			if opener, err = readKey(filepath.Join(tmp, KeyName)); err != nil {
				return m, err
			}
		}
		if err := checkKey(ctx, info.SecretSample, opener); err != nil {
			return m, err
		}
	}
	if o.Store != "" {
		dump := filepath.Join(tmp, StoreDumpName)
		if err := pgLoad(ctx, o.Store, dump); err != nil {
			return m, err
		}
		if err := os.Remove(dump); err != nil {
			return m, err
		}
	}
	if key != nil {
		if err := writeFile(filepath.Join(tmp, KeyName), secretstore.FormatKey(key)); err != nil {
			return m, err
		}
	}
	if err := syncDir(tmp); err != nil {
		return m, err
	}
	// An empty DataDir goes, so that the rename can put the new one there.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return m, fmt.Errorf("replace the empty %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return m, fmt.Errorf("move the restored data into %s: %w", dir, err)
	}
	return m, syncDir(parent)
}

// checkEmpty refuses a data directory that holds anything.
func checkEmpty(dir string) error {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	if len(des) > 0 {
		return fmt.Errorf("data directory %s is not empty (it holds %s): restore only into a new or empty folder, so that nothing of another baton is mixed in or overwritten", dir, des[0].Name())
	}
	return nil
}

// checkCompatible refuses a backup this baton cannot read.
func checkCompatible(m Manifest, schema int) error {
	if m.Format > Format {
		return fmt.Errorf("the backup is in archive format %d, newer than this baton reads (%d): it was made by baton %s; restore it with that version or a newer one", m.Format, Format, m.BatonVersion)
	}
	if m.SchemaVersion > schema {
		return fmt.Errorf("the backup is of store schema %d, newer than this baton knows (schema %d): it was made by baton %s; restore it with that version or a newer one", m.SchemaVersion, schema, m.BatonVersion)
	}
	if m.Store != "sqlite" && m.Store != "postgres" {
		return fmt.Errorf("the backup is of a %q store, which this baton does not know", m.Store)
	}
	return nil
}

// readManifest reads the archive's first entry, the manifest.
func readManifest(tr *tar.Reader) (Manifest, error) {
	hdr, err := tr.Next()
	if err != nil {
		return Manifest{}, fmt.Errorf("not a baton backup: %w", err)
	}
	if hdr.Name != ManifestName || hdr.Size > 64<<20 {
		return Manifest{}, fmt.Errorf("not a baton backup: its first file is %s, not %s", hdr.Name, ManifestName)
	}
	var m Manifest
	if err := json.NewDecoder(tr).Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("not a baton backup: %s: %w", ManifestName, err)
	}
	if m.Format == 0 {
		return Manifest{}, fmt.Errorf("not a baton backup: %s has no format", ManifestName)
	}
	return m, nil
}

// ReadManifest reads the manifest of the archive in path and checks the
// whole archive: every file is there, whole, with the sum its manifest
// records.
func ReadManifest(path string) (Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return Manifest{}, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s is not a baton backup (tar.gz): %w", path, err)
	}
	tr := tar.NewReader(gz)
	m, err := readManifest(tr)
	if err != nil {
		return Manifest{}, err
	}
	if err := unpack(context.Background(), tr, m, "", nil); err != nil {
		return m, err
	}
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return m, fmt.Errorf("the backup is damaged or cut short: %w", err)
	}
	return m, nil
}

// unpack reads the entries after the manifest into dir (only checking
// them when dir is ""), image blobs into images, refusing any the
// manifest does not list or whose size or sum differs, and any it lists
// that are absent.
func unpack(ctx context.Context, tr *tar.Reader, m Manifest, dir string, images *ociimage.Store) error {
	want := map[string]File{}
	for _, f := range m.Files {
		if !allowedName(f.Name) {
			return fmt.Errorf("the backup's manifest lists %q, which is no file of a data directory", f.Name)
		}
		if hex, ok := strings.CutPrefix(f.Name, ImageBlobsDir); ok && f.SHA256 != hex {
			return fmt.Errorf("the backup's manifest gives blob %s the sum %s", f.Name, f.SHA256)
		}
		want[f.Name] = f
	}
	for _, img := range m.Images {
		for _, b := range img.Blobs {
			if _, ok := want[ImageBlobsDir+strings.TrimPrefix(b, "sha256:")]; !ok {
				return fmt.Errorf("the backup's image %s needs blob %s, which it does not hold", img.Digest, b)
			}
		}
	}
	seen := map[string]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("the backup is damaged or cut short: %w", err)
		}
		f, ok := want[hdr.Name]
		if !ok || seen[hdr.Name] || hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("the backup holds %q, which its manifest does not list", hdr.Name)
		}
		if hdr.Size != f.Size {
			return fmt.Errorf("the backup's %s is %d bytes, its manifest says %d", hdr.Name, hdr.Size, f.Size)
		}
		seen[hdr.Name] = true
		if hex, ok := strings.CutPrefix(hdr.Name, ImageBlobsDir); ok && images != nil {
			// PutBlob checks the blob against its digest, the sum.
			if err := images.PutBlob("sha256:"+hex, tr); err != nil {
				return fmt.Errorf("the backup is damaged or cut short (in %s): %w", f.Name, err)
			}
			continue
		}
		if err := copyChecked(tr, f, dir); err != nil {
			return err
		}
	}
	for _, f := range m.Files {
		if !seen[f.Name] {
			return fmt.Errorf("the backup is incomplete: it lacks %s", f.Name)
		}
	}
	return nil
}

// allowedName reports whether name is a file a backup may hold.
func allowedName(name string) bool {
	switch name {
	case DatabaseName, KeyName, PostgresNote, StoreDumpName:
		return true
	}
	if d, ok := strings.CutPrefix(name, ArtifactsDir); ok {
		return artifact.ValidDigest(d)
	}
	d, ok := strings.CutPrefix(name, ImageBlobsDir)
	return ok && artifact.ValidDigest(d)
}

// copyChecked copies one entry into dir (nowhere when dir is "") and
// checks its sum.
func copyChecked(r io.Reader, f File, dir string) error {
	h := sha256.New()
	var w io.Writer = h
	var out *os.File
	if dir != "" {
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		var err error
		if out, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return err
		}
		defer out.Close()
		w = io.MultiWriter(out, h)
	}
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("the backup is damaged or cut short (in %s): %w", f.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("the backup's %s is damaged: its sha256 is %s, its manifest says %s", f.Name, got, f.SHA256)
	}
	if out != nil {
		if err := out.Sync(); err != nil {
			return err
		}
		return out.Close()
	}
	return nil
}

// writeFile writes a new file, mode 0600, and syncs it.
func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readKey reads a sealed-secrets key file (hex, as secretstore writes it).
func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the secret key: %w", err)
	}
	key, err := secretstore.ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s is not a baton secret key (%d bytes in hex)", path, secretstore.KeySize)
	}
	return key, nil
}

// checkKey makes sure key opens the sealed secret setting sample: a
// wrong key file is refused now rather than found when an app starts.
// A nil key or sample checks nothing.
func checkKey(ctx context.Context, sample *baton.Setting, key []byte) error {
	if sample == nil || key == nil {
		return nil
	}
	sealed, err := secretstore.New(oneSetting{s: *sample}, key)
	if err != nil {
		return err
	}
	if _, err := sealed.Settings(ctx, sample.App, sample.Slot); err != nil {
		return fmt.Errorf("the secret key does not open the secret settings of this backup (%s of app %s): it is not the key of the baton that made it", sample.Key, sample.App)
	}
	return nil
}

// oneSetting is a store that holds one setting and nothing else: enough
// for secretstore to open it.
type oneSetting struct {
	baton.Store
	s baton.Setting
}

func (o oneSetting) Settings(ctx context.Context, app, slot string) ([]baton.Setting, error) {
	return []baton.Setting{o.s}, nil
}
