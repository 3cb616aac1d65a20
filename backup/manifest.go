// Package backup writes and restores a baton backup: one tar.gz archive
// holding a consistent snapshot of the SQLite store (or, when asked, a
// pg_dump of the PostgreSQL one), the artifacts and container images its
// revisions need, a manifest, and, only when asked, the key that seals
// secret settings. A restore unpacks it into a new data directory that
// appears whole or not at all.
package backup

import (
	"encoding/json"
	"fmt"
	"time"
)

// Format is the version of the archive layout this package writes and
// reads. Format 2 added image blobs and the PostgreSQL dump.
const Format = 2

// Names of the archive's entries. Artifacts are under ArtifactsDir by
// their sha256 digest, as in the data directory; image blobs (manifests,
// configs, layers) under ImageBlobsDir by theirs, each once however many
// images share it.
const (
	ManifestName  = "manifest.json"
	DatabaseName  = "baton.db"
	KeyName       = "secret.key"
	PostgresNote  = "POSTGRES.txt"
	StoreDumpName = "store.sql"
	ArtifactsDir  = "artifacts/sha256/"
	ImageBlobsDir = "images/blobs/sha256/"
)

// Manifest describes a backup; it is the archive's first entry.
type Manifest struct {
	Format    int       `json:"format"`
	CreatedAt time.Time `json:"created_at"`
	// BatonVersion is the version of the baton that made it.
	BatonVersion string `json:"baton_version"`
	// Store is "sqlite" (the database is in the archive) or "postgres"
	// (it is not: back it up with PostgreSQL's own tools).
	Store string `json:"store"`
	// SchemaVersion is the store's schema (newest migration) at backup;
	// 0 for PostgreSQL.
	SchemaVersion int `json:"schema_version"`
	// Files lists every entry after the manifest with its size and
	// sha256, so that a restore notices a damaged or cut archive.
	Files []File `json:"files"`
	// MissingArtifacts are artifacts the store's revisions name that were
	// not on disk when the backup was made (the revisions using them
	// cannot start again after a restore).
	MissingArtifacts []string `json:"missing_artifacts,omitempty"`
	// Images are the container images in the archive (their blobs are
	// under ImageBlobsDir): those the store's revisions and unfinished
	// deployments name, or, with PostgreSQL, every image held.
	Images []Image `json:"images,omitempty"`
	// MissingImages are images the store's revisions name that were not
	// held when the backup was made.
	MissingImages []string `json:"missing_images,omitempty"`
	// StoreDump says the archive holds a pg_dump of the PostgreSQL
	// store (StoreDumpName).
	StoreDump bool `json:"store_dump,omitempty"`
	// KeyIncluded says the sealed-secrets key is in the archive.
	KeyIncluded bool `json:"key_included"`
}

// Image is a container image in the archive.
type Image struct {
	// Digest is its manifest digest, as image revisions record it.
	Digest string `json:"digest"`
	// Ref is where it came from ("registry:5000/hello:v1").
	Ref string `json:"ref,omitempty"`
	// Blobs are the digests of its manifest, config and layers.
	Blobs []string `json:"blobs"`
}

// File is one entry of the archive.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Artifacts counts the artifact entries.
func (m Manifest) Artifacts() int {
	n := 0
	for _, f := range m.Files {
		if len(f.Name) > len(ArtifactsDir) && f.Name[:len(ArtifactsDir)] == ArtifactsDir {
			n++
		}
	}
	return n
}

// Summary is one line about the backup for people.
func (m Manifest) Summary() string {
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	key := "without the secret key"
	if m.KeyIncluded {
		key = "with the secret key"
	}
	store := fmt.Sprintf("SQLite store (schema %d)", m.SchemaVersion)
	switch {
	case m.Store == "postgres" && m.StoreDump:
		store = "PostgreSQL store as a pg_dump (" + StoreDumpName + ")"
	case m.Store == "postgres":
		store = "no database (PostgreSQL: back it up with pg_dump)"
	}
	return fmt.Sprintf("%s, %d artifacts, %d images, %d bytes, %s; made by %s at %s", store, m.Artifacts(), len(m.Images), size, key,
		m.BatonVersion, m.CreatedAt.Format(time.RFC3339))
}

func (m Manifest) encode() ([]byte, error) { return json.MarshalIndent(m, "", "  ") }
