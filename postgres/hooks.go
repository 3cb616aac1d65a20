package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

const hookColumns = `id, url, app, events, secret, created_at, created_by`

func scanHook(row scanner) (baton.Hook, error) {
	var h baton.Hook
	err := row.Scan(&h.ID, &h.URL, &h.App, &h.Events, &h.Secret, &h.CreatedAt, &h.CreatedBy)
	utc(&h.CreatedAt)
	h.Signed, h.Source = h.Secret != "", "api"
	if len(h.Events) == 0 {
		h.Events = nil
	}
	return h, err
}

// CreateHook stores a hook, timed by the database clock; ECONFLICT if its
// ID is taken.
func (s *DB) CreateHook(ctx context.Context, h baton.Hook) (baton.Hook, error) {
	if err := baton.ValidateHook(h); err != nil {
		return h, err
	}
	events := h.Events
	if events == nil {
		events = []string{}
	}
	err := s.pool.QueryRow(ctx, `INSERT INTO hooks (`+hookColumns+`) VALUES ($1, $2, $3, $4, $5, now(), $6)
		ON CONFLICT (id) DO NOTHING RETURNING created_at`,
		h.ID, h.URL, h.App, events, h.Secret, h.CreatedBy).Scan(&h.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, baton.Errorf(baton.ECONFLICT, "a webhook %s exists", h.ID)
	}
	utc(&h.CreatedAt)
	h.Signed, h.Source = h.Secret != "", "api"
	return h, err
}

// Hook returns one hook.
func (s *DB) Hook(ctx context.Context, id string) (baton.Hook, error) {
	h, err := scanHook(s.pool.QueryRow(ctx, `SELECT `+hookColumns+` FROM hooks WHERE id = $1`, id))
	return h, notFound(err, "webhook %s does not exist; `baton hooks list` shows them", id)
}

// Hooks lists the hooks, oldest first.
func (s *DB) Hooks(ctx context.Context) ([]baton.Hook, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+hookColumns+` FROM hooks ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.Hook, error) { return scanHook(row) })
}

// DeleteHook removes a hook and its deliveries.
func (s *DB) DeleteHook(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM hooks WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return baton.Errorf(baton.ENOTFOUND, "webhook %s does not exist; `baton hooks list` shows them", id)
		}
		_, err = tx.Exec(ctx, `DELETE FROM hook_deliveries WHERE hook_id = $1`, id)
		return err
	})
}

// AddDeliveries queues deliveries, once per hook and event.
func (s *DB) AddDeliveries(ctx context.Context, ds []baton.Delivery) (int, error) {
	added := 0
	err := s.tx(ctx, func(tx pgx.Tx) error {
		added = 0
		for _, d := range ds {
			tag, err := tx.Exec(ctx, `INSERT INTO hook_deliveries (hook_id, event_id, event_type, app, body, state, created_at, next_attempt_at)
				VALUES ($1, $2, $3, $4, $5, 'pending', now(), now()) ON CONFLICT (hook_id, event_id) DO NOTHING`,
				d.HookID, d.EventID, d.EventType, d.App, d.Body)
			if err != nil {
				return err
			}
			added += int(tag.RowsAffected())
		}
		return nil
	})
	return added, err
}

const deliveryColumns = `id, hook_id, event_id, event_type, app, body, state, attempts, last_status, last_error, created_at, last_attempt_at, next_attempt_at`

func scanDelivery(row scanner) (baton.Delivery, error) {
	var d baton.Delivery
	err := row.Scan(&d.ID, &d.HookID, &d.EventID, &d.EventType, &d.App, &d.Body, &d.State, &d.Attempts, &d.LastStatus, &d.LastError,
		&d.CreatedAt, &d.LastAttemptAt, &d.NextAttemptAt)
	utc(&d.CreatedAt)
	utc(d.LastAttemptAt)
	utc(d.NextAttemptAt)
	return d, err
}

func collectDeliveries(rows pgx.Rows, err error) ([]baton.Delivery, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.Delivery, error) { return scanDelivery(row) })
}

// ClaimDeliveries takes the due pending deliveries for lease; rows another
// controller is claiming are skipped, not waited for.
func (s *DB) ClaimDeliveries(ctx context.Context, lease time.Duration, limit int) ([]baton.Delivery, error) {
	return collectDeliveries(s.pool.Query(ctx, `WITH claimed AS (
		UPDATE hook_deliveries SET next_attempt_at = now() + $1::bigint * interval '1 microsecond'
		WHERE id IN (SELECT id FROM hook_deliveries WHERE state = 'pending' AND next_attempt_at <= now()
			ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
		RETURNING `+deliveryColumns+`) SELECT `+deliveryColumns+` FROM claimed ORDER BY id`, micros(lease), limit))
}

// RecordDelivery records one attempt.
func (s *DB) RecordDelivery(ctx context.Context, id int64, a baton.DeliveryAttempt) error {
	var retry *int64
	if a.State == baton.DeliveryPending {
		us := micros(a.RetryIn)
		retry = &us
	}
	tag, err := s.pool.Exec(ctx, `UPDATE hook_deliveries SET state = $1, attempts = attempts + 1, last_status = $2, last_error = $3,
		last_attempt_at = now(), next_attempt_at = now() + $4::bigint * interval '1 microsecond' WHERE id = $5`,
		string(a.State), a.Status, a.Error, retry, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return baton.Errorf(baton.ENOTFOUND, "webhook delivery %d does not exist", id)
	}
	return nil
}

// Deliveries lists deliveries, newest first.
func (s *DB) Deliveries(ctx context.Context, hook string, limit int) ([]baton.Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	return collectDeliveries(s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM hook_deliveries
		WHERE $1 = '' OR hook_id = $1 ORDER BY id DESC LIMIT $2`, hook, limit))
}
