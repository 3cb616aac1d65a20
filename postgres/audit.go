package postgres

import (
	"context"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

// AddAudit appends an entry to the audit log, timed by the database clock.
func (s *DB) AddAudit(ctx context.Context, e baton.AuditEntry) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO audit (at, actor, action, target, detail, outcome, remote) VALUES (now(), $1, $2, $3, $4, $5, $6)`,
		e.Actor, e.Action, e.Target, e.Detail, e.Outcome, e.Remote)
	return err
}

// Audit returns the newest entries first.
func (s *DB) Audit(ctx context.Context, limit int) ([]baton.AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, actor, action, target, detail, outcome, remote FROM audit ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.AuditEntry, error) {
		var e baton.AuditEntry
		err := row.Scan(&e.ID, &e.Time, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.Outcome, &e.Remote)
		utc(&e.Time)
		return e, err
	})
}
