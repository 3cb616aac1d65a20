package postgres

import (
	"context"
	"errors"
	"io"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

// chunkSize bounds one row of artifact_chunks.
const chunkSize = 4 << 20

var _ baton.BlobStore = (*DB)(nil)

// PutArtifact stores an artifact in chunks, once per digest.
func (s *DB) PutArtifact(ctx context.Context, digest string, r io.Reader) error {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM artifact_chunks WHERE digest = $1 AND n = 0`, digest).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		buf := make([]byte, chunkSize)
		for i := 0; ; i++ {
			k, err := io.ReadFull(r, buf)
			if k > 0 || i == 0 {
				if _, err := tx.Exec(ctx, `INSERT INTO artifact_chunks (digest, n, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, digest, i, buf[:k]); err != nil {
					return err
				}
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
}

// ReadArtifact writes a stored artifact to w.
func (s *DB) ReadArtifact(ctx context.Context, digest string, w io.Writer) error {
	rows, err := s.pool.Query(ctx, `SELECT data FROM artifact_chunks WHERE digest = $1 ORDER BY n`, digest)
	if err != nil {
		return err
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return err
		}
		found = true
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if !found {
		return baton.Errorf(baton.ENOTFOUND, "artifact %s is not in the shared store", digest)
	}
	return nil
}

var _ baton.BlobRemover = (*DB)(nil)

// RemoveArtifact deletes a stored artifact; removing one that is not
// stored is not an error.
func (s *DB) RemoveArtifact(ctx context.Context, digest string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM artifact_chunks WHERE digest = $1`, digest)
	return err
}
