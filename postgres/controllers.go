package postgres

import (
	"context"
	"time"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

// Controller is one `baton serve` process sharing this database.
type Controller = baton.Controller

// RegisterController records controller id at addr as started and seen
// now. Registering an id again (a restart) resets both times and what
// its heartbeats reported, and keeps drain_requested (the operator's).
func (s *DB) RegisterController(ctx context.Context, c baton.ControllerInfo) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO controllers (id, addr, advertise, peer, started_at, last_seen, instances, draining, sends_peer_key, peer_key_started_at)
		VALUES ($1, $2, $3, $4, now(), now(), 0, false, $5, CASE WHEN $5 THEN now() END)
		ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, advertise = excluded.advertise, peer = excluded.peer,
			started_at = excluded.started_at, last_seen = excluded.last_seen, instances = 0, draining = false,
			sends_peer_key = excluded.sends_peer_key, peer_key_started_at = excluded.peer_key_started_at`, c.ID, c.Addr, c.Advertise, c.Peer, c.SendsPeerKey)
	return err
}

// HeartbeatController records that controller id is alive now, with what
// it reports; ENOTFOUND if it is not registered (it was deregistered:
// register again).
func (s *DB) HeartbeatController(ctx context.Context, id string, hb baton.Heartbeat) error {
	tag, err := s.pool.Exec(ctx, `UPDATE controllers SET last_seen = now(), instances = $2, draining = $3 WHERE id = $1`, id, hb.Instances, hb.Draining)
	if err == nil && tag.RowsAffected() == 0 {
		return baton.Errorf(baton.ENOTFOUND, "controller %q is not registered", id)
	}
	return err
}

// SetHostDrain records whether an operator asked controller id to drain.
func (s *DB) SetHostDrain(ctx context.Context, id string, drain bool) error {
	tag, err := s.pool.Exec(ctx, `UPDATE controllers SET drain_requested = $2 WHERE id = $1`, id, drain)
	if err == nil && tag.RowsAffected() == 0 {
		return baton.Errorf(baton.ENOTFOUND, "host %q is not registered", id)
	}
	return err
}

// DeregisterController removes controller id, on a clean shutdown; its
// placements stay for the apps' owners to replace.
func (s *DB) DeregisterController(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, `WITH gone AS (DELETE FROM routing_acks WHERE controller = $1)
		DELETE FROM controllers WHERE id = $1`, id)
	return err
}

// Controllers returns every registered controller, by id.
func (s *DB) Controllers(ctx context.Context) ([]Controller, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, addr, started_at, last_seen,
		(extract(epoch FROM now() - last_seen) * 1000000)::bigint, advertise, peer, instances, draining, drain_requested,
		sends_peer_key AND peer_key_started_at IS NOT DISTINCT FROM started_at FROM controllers ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Controller, error) {
		var c Controller
		var silence int64
		err := row.Scan(&c.ID, &c.Addr, &c.StartedAt, &c.LastSeen, &silence, &c.Advertise, &c.Peer, &c.Instances, &c.Draining, &c.DrainRequested, &c.SendsPeerKey)
		utc(&c.StartedAt)
		utc(&c.LastSeen)
		c.Silence = time.Duration(silence) * time.Microsecond
		return c, err
	})
}

// assignApp moves app $2 from controller $3 to $1, advances its routing
// generation and tells the other hosts (ChannelRouting); it changes no row
// when $3 no longer runs the app.
const assignApp = `WITH moved AS (UPDATE apps SET controller = $1, routing_generation = routing_generation + 1,
		routing_changed_at = now() WHERE name = $2 AND controller = $3 RETURNING name)
	SELECT pg_notify('` + ChannelRouting + `', name) FROM moved`

// AssignApp pins an app to a controller if it is still pinned to from,
// advancing its routing generation, and notifies ChannelRouting.
func (s *DB) AssignApp(ctx context.Context, app, from, to string) error {
	tag, err := s.pool.Exec(ctx, assignApp, to, app, from)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.App(ctx, app); err != nil {
			return err
		}
		return baton.Errorf(baton.ECONFLICT, "app %q is no longer run by %q", app, from)
	}
	return nil
}

// AckRouting records the routing generations controller applied.
func (s *DB) AckRouting(ctx context.Context, controller string, gens map[string]int64) error {
	if len(gens) == 0 {
		return nil
	}
	apps := make([]string, 0, len(gens))
	nums := make([]int64, 0, len(gens))
	for a, g := range gens {
		apps, nums = append(apps, a), append(nums, g)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO routing_acks (controller, app, generation, applied_at)
		SELECT $1, a, g, now() FROM unnest($2::text[], $3::bigint[]) AS t(a, g)
		ON CONFLICT (controller, app) DO UPDATE SET generation = excluded.generation, applied_at = excluded.applied_at`,
		controller, apps, nums)
	return err
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
// every app by name in byte order (app ""), in two queries whatever their
// number.
func (s *DB) routingStates(ctx context.Context, app string) ([]baton.RoutingState, error) {
	appWhere, ackWhere, args := "", "", []any(nil)
	if app != "" {
		appWhere, ackWhere, args = " WHERE name = $1", " WHERE app = $1", []any{app}
	}
	rows, err := s.pool.Query(ctx, `SELECT name, routing_generation, (extract(epoch FROM now() - routing_changed_at) * 1000000)::bigint
		FROM apps`+appWhere+` ORDER BY name COLLATE "C"`, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.RoutingState, error) {
		st := baton.RoutingState{Acks: []baton.RoutingAck{}}
		var age int64
		err := row.Scan(&st.App, &st.Generation, &age)
		st.Age = time.Duration(age) * time.Microsecond
		return st, err
	})
	if err != nil {
		return nil, err
	}
	acks, err := s.pool.Query(ctx, `SELECT app, controller, generation, applied_at FROM routing_acks`+ackWhere+` ORDER BY app COLLATE "C", controller`, args...)
	if err != nil {
		return nil, err
	}
	defer acks.Close()
	for acks.Next() {
		var app string
		var a baton.RoutingAck
		if err := acks.Scan(&app, &a.Controller, &a.Generation, &a.AppliedAt); err != nil {
			return nil, err
		}
		utc(&a.AppliedAt)
		out = baton.AddRoutingAck(out, app, a)
	}
	return out, acks.Err()
}
