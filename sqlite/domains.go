package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/batonhq/baton"
)

// AddDomain claims d.Name for d.App's slot d.Slot.
func (s *DB) AddDomain(ctx context.Context, d baton.Domain) (baton.Domain, error) {
	now := s.now()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var owner baton.Domain
		err := tx.QueryRowContext(ctx, `SELECT name, app, slot FROM domains WHERE name = ?`, d.Name).Scan(&owner.Name, &owner.App, &owner.Slot)
		if err == nil {
			return baton.ErrDomainTaken(owner)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM slots WHERE app = ? AND name = ?`, d.App, d.Slot).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return baton.Errorf(baton.ENOTFOUND, "app %s has no slot %s; create it with `baton slots create %s %s`", d.App, d.Slot, d.App, d.Slot)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO domains (name, app, slot, created_at) VALUES (?, ?, ?, ?)`, d.Name, d.App, d.Slot, now)
		return err
	})
	d.CreatedAt = fromMicros(now)
	return d, err
}

// Domains lists the domains of app ("" for all), by name.
func (s *DB) Domains(ctx context.Context, app string) ([]baton.Domain, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, app, slot, created_at FROM domains WHERE ? = '' OR app = ? ORDER BY name`, app, app)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []baton.Domain{}
	for rows.Next() {
		var d baton.Domain
		var created int64
		if err := rows.Scan(&d.Name, &d.App, &d.Slot, &created); err != nil {
			return nil, err
		}
		d.CreatedAt = fromMicros(created)
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeleteDomain removes the domain name of app.
func (s *DB) DeleteDomain(ctx context.Context, app, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM domains WHERE app = ? AND name = ?`, app, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.ErrNoSuchDomain(app, name)
	}
	return nil
}

// PutCert creates or replaces the value of key.
func (s *DB) PutCert(ctx context.Context, key string, value []byte) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO certs (key, value, modified) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified = excluded.modified`, key, value, s.now())
	return err
}

// Cert returns the entry of key.
func (s *DB) Cert(ctx context.Context, key string) (baton.CertEntry, error) {
	e := baton.CertEntry{Key: key}
	var mod int64
	err := s.rdb.QueryRowContext(ctx, `SELECT value, modified FROM certs WHERE key = ?`, key).Scan(&e.Value, &mod)
	if err != nil {
		return e, notFound(err, "no certificate data under %s", key)
	}
	e.Modified = fromMicros(mod)
	return e, nil
}

// DeleteCert removes key and the keys under it.
func (s *DB) DeleteCert(ctx context.Context, key string) error {
	lo, hi := baton.CertKeyRange(key)
	res, err := s.db.ExecContext(ctx, `DELETE FROM certs WHERE key = ? OR (key >= ? AND key < ?)`, key, lo, hi)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "no certificate data under %s", key)
	}
	return nil
}

// CertKeys lists the keys under prefix.
func (s *DB) CertKeys(ctx context.Context, prefix string) ([]string, error) {
	lo, hi := baton.CertKeyRange(prefix)
	rows, err := s.rdb.QueryContext(ctx, `SELECT key FROM certs WHERE key >= ? AND (? = '' OR key < ?) ORDER BY key`, lo, hi, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}
