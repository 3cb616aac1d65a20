package server

import (
	"context"
	"io"
	"path/filepath"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backup"
	"github.com/batonhq/baton/buildinfo"
	"github.com/batonhq/baton/sqlite"
)

// backup writes a backup archive of this baton to w (POST /api/v1/backup):
// a snapshot of the SQLite store, or of a PostgreSQL one a pg_dump when
// asked (StoreDump), the artifacts and images the store needs, and the
// secret key when asked.
func (s *Server) backup(ctx context.Context, w io.Writer, o api.BackupOptions) error {
	src := backup.Source{
		ArtifactDir: filepath.Join(s.cfg.DataDir, "artifacts"),
		KeyFile:     s.keyFile(),
		IncludeKey:  o.IncludeKey,
		TempDir:     filepath.Join(s.cfg.DataDir, "tmp"),
		Version:     buildinfo.Read().Version,
		Pause:       s.cfg.BackupPause,
	}
	if s.images != nil {
		src.Images = s.images
	}
	if db, ok := s.rawStore.(*sqlite.DB); ok {
		src.Snapshot = db.Snapshot
		if o.StoreDump {
			return baton.Errorf(baton.EINVALID, "--store-dump is for a PostgreSQL store: this baton's SQLite store is always in the backup")
		}
	} else if o.StoreDump {
		src.StoreDump = backup.PGDump(s.cfg.Store)
	}
	m, err := backup.Write(ctx, w, src)
	if err != nil {
		return err
	}
	s.log.Info("backup written", "store", m.Store, "schema", m.SchemaVersion, "artifacts", m.Artifacts(),
		"missing_artifacts", len(m.MissingArtifacts), "images", len(m.Images), "missing_images", len(m.MissingImages),
		"store_dump", m.StoreDump, "key_included", m.KeyIncluded)
	return nil
}
