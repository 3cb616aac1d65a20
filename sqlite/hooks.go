package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

const hookColumns = `id, url, app, events, secret, created_at, created_by`

func scanHook(row scanner) (baton.Hook, error) {
	var h baton.Hook
	var events string
	var created int64
	if err := row.Scan(&h.ID, &h.URL, &h.App, &events, &h.Secret, &created, &h.CreatedBy); err != nil {
		return h, err
	}
	h.CreatedAt, h.Signed, h.Source = fromMicros(created), h.Secret != "", "api"
	if err := json.Unmarshal([]byte(events), &h.Events); err != nil || len(h.Events) == 0 {
		h.Events = nil
		return h, err
	}
	return h, nil
}

// CreateHook stores a hook; ECONFLICT if its ID is taken.
func (s *DB) CreateHook(ctx context.Context, h baton.Hook) (baton.Hook, error) {
	if err := baton.ValidateHook(h); err != nil {
		return h, err
	}
	events, _ := json.Marshal(h.Events)
	if h.Events == nil {
		events = []byte("[]")
	}
	now := s.now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO hooks (`+hookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		h.ID, h.URL, h.App, string(events), h.Secret, now, h.CreatedBy)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return h, baton.Errorf(baton.ECONFLICT, "a webhook %s exists", h.ID)
		}
		return h, err
	}
	h.CreatedAt, h.Signed, h.Source = fromMicros(now), h.Secret != "", "api"
	return h, nil
}

// Hook returns one hook.
func (s *DB) Hook(ctx context.Context, id string) (baton.Hook, error) {
	h, err := scanHook(s.rdb.QueryRowContext(ctx, `SELECT `+hookColumns+` FROM hooks WHERE id = ?`, id))
	return h, notFound(err, "webhook %s does not exist; `baton hooks list` shows them", id)
}

// Hooks lists the hooks, oldest first.
func (s *DB) Hooks(ctx context.Context) ([]baton.Hook, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+hookColumns+` FROM hooks ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []baton.Hook
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// DeleteHook removes a hook and its deliveries.
func (s *DB) DeleteHook(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM hooks WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return baton.Errorf(baton.ENOTFOUND, "webhook %s does not exist; `baton hooks list` shows them", id)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM hook_deliveries WHERE hook_id = ?`, id)
		return err
	})
}

// AddDeliveries queues deliveries, once per hook and event.
func (s *DB) AddDeliveries(ctx context.Context, ds []baton.Delivery) (int, error) {
	added := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		added = 0
		now := s.now()
		for _, d := range ds {
			res, err := tx.ExecContext(ctx, `INSERT INTO hook_deliveries (hook_id, event_id, event_type, app, body, state, created_at, next_attempt_at)
				VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (hook_id, event_id) DO NOTHING`,
				d.HookID, d.EventID, d.EventType, d.App, d.Body, now, now)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			added += int(n)
		}
		return nil
	})
	return added, err
}

const deliveryColumns = `id, hook_id, event_id, event_type, app, body, state, attempts, last_status, last_error, created_at, last_attempt_at, next_attempt_at`

func scanDelivery(row scanner) (baton.Delivery, error) {
	var d baton.Delivery
	var created int64
	var last, next sql.NullInt64
	err := row.Scan(&d.ID, &d.HookID, &d.EventID, &d.EventType, &d.App, &d.Body, &d.State, &d.Attempts, &d.LastStatus, &d.LastError,
		&created, &last, &next)
	d.CreatedAt, d.LastAttemptAt, d.NextAttemptAt = fromMicros(created), fromNullMicros(last), fromNullMicros(next)
	return d, err
}

func collectDeliveries(rows *sql.Rows, err error) ([]baton.Delivery, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []baton.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClaimDeliveries takes the due pending deliveries for lease.
func (s *DB) ClaimDeliveries(ctx context.Context, lease time.Duration, limit int) ([]baton.Delivery, error) {
	var out []baton.Delivery
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		var err error
		out, err = collectDeliveries(tx.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM hook_deliveries
			WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?`, now, limit))
		if err != nil {
			return err
		}
		until := now + lease.Microseconds()
		for i := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE hook_deliveries SET next_attempt_at = ? WHERE id = ?`, until, out[i].ID); err != nil {
				return err
			}
			out[i].NextAttemptAt = fromNullMicros(sql.NullInt64{Int64: until, Valid: true})
		}
		return nil
	})
	return out, err
}

// RecordDelivery records one attempt.
func (s *DB) RecordDelivery(ctx context.Context, id int64, a baton.DeliveryAttempt) error {
	now := s.now()
	next := sql.NullInt64{}
	if a.State == baton.DeliveryPending {
		next = sql.NullInt64{Int64: now + a.RetryIn.Microseconds(), Valid: true}
	}
	res, err := s.db.ExecContext(ctx, `UPDATE hook_deliveries SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?,
		last_attempt_at = ?, next_attempt_at = ? WHERE id = ?`, a.State, a.Status, a.Error, now, next, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "webhook delivery %d does not exist", id)
	}
	return nil
}

// Deliveries lists deliveries, newest first.
func (s *DB) Deliveries(ctx context.Context, hook string, limit int) ([]baton.Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	return collectDeliveries(s.rdb.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM hook_deliveries
		WHERE ? = '' OR hook_id = ? ORDER BY id DESC LIMIT ?`, hook, hook, limit))
}
