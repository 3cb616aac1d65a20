package sqlite

import (
	"context"
	"database/sql"

	"github.com/batonhq/baton"
)

// RegisterController records a controller as started and seen now;
// drain_requested, the operator's, is kept.
func (s *DB) RegisterController(ctx context.Context, c baton.ControllerInfo) error {
	now := s.now()
	var keySince any // the registration's started_at, when it sends the key
	if c.SendsPeerKey {
		keySince = now
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO controllers (id, addr, advertise, peer, started_at, last_seen, instances, draining, sends_peer_key, peer_key_started_at) VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?, ?)
		ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, advertise = excluded.advertise, peer = excluded.peer,
			started_at = excluded.started_at, last_seen = excluded.last_seen, instances = 0, draining = 0,
			sends_peer_key = excluded.sends_peer_key, peer_key_started_at = excluded.peer_key_started_at`, c.ID, c.Addr, c.Advertise, c.Peer, now, now, c.SendsPeerKey, keySince)
	return err
}

// HeartbeatController records that a controller is alive, with what it reports.
func (s *DB) HeartbeatController(ctx context.Context, id string, hb baton.Heartbeat) error {
	res, err := s.db.ExecContext(ctx, `UPDATE controllers SET last_seen = ?, instances = ?, draining = ? WHERE id = ?`, s.now(), hb.Instances, hb.Draining, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "controller %q is not registered", id)
	}
	return nil
}

// SetHostDrain records whether an operator asked controller id to drain.
func (s *DB) SetHostDrain(ctx context.Context, id string, drain bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE controllers SET drain_requested = ? WHERE id = ?`, drain, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "host %q is not registered", id)
	}
	return nil
}

// DeregisterController removes a controller on a clean shutdown; its
// placements stay for the apps' owners to replace.
func (s *DB) DeregisterController(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM routing_acks WHERE controller = ?`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM controllers WHERE id = ?`, id)
		return err
	})
}

// Controllers lists the registered controllers by id.
func (s *DB) Controllers(ctx context.Context) ([]baton.Controller, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, addr, started_at, last_seen, advertise, peer, instances, draining, drain_requested,
		sends_peer_key AND peer_key_started_at IS started_at FROM controllers ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	now := s.Now()
	var out []baton.Controller
	for rows.Next() {
		var c baton.Controller
		var started, seen int64
		if err := rows.Scan(&c.ID, &c.Addr, &started, &seen, &c.Advertise, &c.Peer, &c.Instances, &c.Draining, &c.DrainRequested, &c.SendsPeerKey); err != nil {
			return nil, err
		}
		c.StartedAt, c.LastSeen = fromMicros(started), fromMicros(seen)
		c.Silence = now.Sub(c.LastSeen)
		out = append(out, c)
	}
	return out, rows.Err()
}

// assignApp moves an app from one controller to another and advances its
// routing generation (arguments: to, now, app, from); it changes no row
// when from no longer runs the app.
const assignApp = `UPDATE apps SET controller = ?, routing_generation = routing_generation + 1, routing_changed_at = ?
	WHERE name = ? AND controller = ?`

// AssignApp pins an app to a controller if it is still pinned to from,
// advancing its routing generation.
func (s *DB) AssignApp(ctx context.Context, app, from, to string) error {
	res, err := s.db.ExecContext(ctx, assignApp, to, s.now(), app, from)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.App(ctx, app); err != nil {
			return err
		}
		return baton.Errorf(baton.ECONFLICT, "app %q is no longer run by %q", app, from)
	}
	return nil
}

// FailExpired ends the running deployments whose app lease expired or is
// gone (see endInterrupted).
func (s *DB) FailExpired(ctx context.Context) ([]baton.Deployment, error) {
	var out []baton.Deployment
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		running, err := queryDeployments(ctx, tx, `WHERE state = 'running' AND NOT EXISTS (
			SELECT 1 FROM leases l WHERE l.key = 'app:' || deployments.app AND l.token = deployments.token AND l.expires_at > ?) ORDER BY seq`, now)
		if err != nil {
			return err
		}
		out, err = s.endInterrupted(ctx, tx, running, "its controller stopped renewing the lock during phase")
		return err
	})
	return out, err
}

// AckRouting records the routing generations controller applied.
func (s *DB) AckRouting(ctx context.Context, controller string, gens map[string]int64) error {
	if len(gens) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		for app, g := range gens {
			if _, err := tx.ExecContext(ctx, `INSERT INTO routing_acks (controller, app, generation, applied_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (controller, app) DO UPDATE SET generation = excluded.generation, applied_at = excluded.applied_at`,
				controller, app, g, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// AllRoutingAcks returns every app's routing generation and acks, by name.
func (s *DB) AllRoutingAcks(ctx context.Context) ([]baton.RoutingState, error) {
	return s.routingStates(ctx, "")
}

// RoutingAcks returns app's routing generation and every controller's ack.
func (s *DB) RoutingAcks(ctx context.Context, app string) (baton.RoutingState, error) {
	sts, err := s.routingStates(ctx, app)
	if err == nil && len(sts) == 0 {
		err = baton.Errorf(baton.ENOTFOUND, "app %q does not exist", app)
	}
	if err != nil {
		return baton.RoutingState{}, err
	}
	return sts[0], nil
}

// routingStates reads the routing generation and acks of app, or of
// every app by name (app ""), in two queries whatever their number.
func (s *DB) routingStates(ctx context.Context, app string) ([]baton.RoutingState, error) {
	appWhere, ackWhere, args := "", "", []any(nil)
	if app != "" {
		appWhere, ackWhere, args = " WHERE name = ?", " WHERE app = ?", []any{app}
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, routing_generation, routing_changed_at FROM apps`+appWhere+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []baton.RoutingState
	now := s.Now()
	for rows.Next() {
		st := baton.RoutingState{Acks: []baton.RoutingAck{}}
		var changed int64
		if err := rows.Scan(&st.App, &st.Generation, &changed); err != nil {
			return nil, err
		}
		if changed > 0 {
			st.Age = now.Sub(fromMicros(changed))
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	acks, err := s.rdb.QueryContext(ctx, `SELECT app, controller, generation, applied_at FROM routing_acks`+ackWhere+` ORDER BY app, controller`, args...)
	if err != nil {
		return nil, err
	}
	defer acks.Close()
	for acks.Next() {
		var app string
		var a baton.RoutingAck
		var at int64
		if err := acks.Scan(&app, &a.Controller, &a.Generation, &at); err != nil {
			return nil, err
		}
		a.AppliedAt = fromMicros(at)
		out = baton.AddRoutingAck(out, app, a)
	}
	return out, acks.Err()
}
