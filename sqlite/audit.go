package sqlite

import (
	"context"

	"github.com/batonhq/baton"
)

// AddAudit appends an entry to the audit log.
func (s *DB) AddAudit(ctx context.Context, e baton.AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit (at, actor, action, target, detail, outcome, remote) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		s.now(), e.Actor, e.Action, e.Target, e.Detail, e.Outcome, e.Remote)
	return err
}

// Audit returns the newest entries first.
func (s *DB) Audit(ctx context.Context, limit int) ([]baton.AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, actor, action, target, detail, outcome, remote FROM audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []baton.AuditEntry
	for rows.Next() {
		var e baton.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.Outcome, &e.Remote); err != nil {
			return nil, err
		}
		e.Time = fromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
