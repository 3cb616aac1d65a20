package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

// AddDomain claims d.Name for d.App's slot d.Slot. The primary key decides
// between two concurrent claims; the loser reads the winner.
func (s *DB) AddDomain(ctx context.Context, d baton.Domain) (baton.Domain, error) {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO domains (name, app, slot, created_at) VALUES ($1, $2, $3, now())
			ON CONFLICT (name) DO NOTHING RETURNING created_at`, d.Name, d.App, d.Slot).Scan(&d.CreatedAt)
		if isForeignKeyViolation(err) {
			return baton.Errorf(baton.ENOTFOUND, "app %s has no slot %s; create it with `baton slots create %s %s`", d.App, d.Slot, d.App, d.Slot)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var owner baton.Domain
		if err := tx.QueryRow(ctx, `SELECT name, app, slot FROM domains WHERE name = $1`, d.Name).Scan(&owner.Name, &owner.App, &owner.Slot); err != nil {
			return err
		}
		return baton.ErrDomainTaken(owner)
	})
	utc(&d.CreatedAt)
	return d, err
}

// Domains lists the domains of app ("" for all), by name.
func (s *DB) Domains(ctx context.Context, app string) ([]baton.Domain, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, app, slot, created_at FROM domains WHERE $1 = '' OR app = $1 ORDER BY name`, app)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.Domain, error) {
		var d baton.Domain
		err := row.Scan(&d.Name, &d.App, &d.Slot, &d.CreatedAt)
		utc(&d.CreatedAt)
		return d, err
	})
	if out == nil {
		out = []baton.Domain{}
	}
	return out, err
}

// DeleteDomain removes the domain name of app.
func (s *DB) DeleteDomain(ctx context.Context, app, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM domains WHERE app = $1 AND name = $2`, app, name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return baton.ErrNoSuchDomain(app, name)
	}
	return nil
}

// PutCert creates or replaces the value of key.
func (s *DB) PutCert(ctx context.Context, key string, value []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO certs (key, value, modified) VALUES ($1, $2, now())
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified = excluded.modified`, key, value)
	return err
}

// Cert returns the entry of key.
func (s *DB) Cert(ctx context.Context, key string) (baton.CertEntry, error) {
	e := baton.CertEntry{Key: key}
	var mod time.Time
	err := s.pool.QueryRow(ctx, `SELECT value, modified FROM certs WHERE key = $1`, key).Scan(&e.Value, &mod)
	if err != nil {
		return e, notFound(err, "no certificate data under %s", key)
	}
	e.Modified = mod.UTC()
	return e, nil
}

// DeleteCert removes key and the keys under it.
func (s *DB) DeleteCert(ctx context.Context, key string) error {
	lo, hi := baton.CertKeyRange(key)
	tag, err := s.pool.Exec(ctx, `DELETE FROM certs WHERE key = $1 OR (key >= $2 AND key < $3)`, key, lo, hi)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return baton.Errorf(baton.ENOTFOUND, "no certificate data under %s", key)
	}
	return nil
}

// CertKeys lists the keys under prefix.
func (s *DB) CertKeys(ctx context.Context, prefix string) ([]string, error) {
	lo, hi := baton.CertKeyRange(prefix)
	rows, err := s.pool.Query(ctx, `SELECT key FROM certs WHERE key >= $1 AND ($2 = '' OR key < $2) ORDER BY key`, lo, hi)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
