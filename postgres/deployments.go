package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

const deploymentColumns = `seq, id, app, slot, kind, params, state, phase, policy, revision, artifact_digest, artifact_type,
	message, commit_sha, author, idempotency_key, order_key, error, token, created_at, started_at, finished_at, phase_started_at`

func scanDeployment(row scanner) (baton.Deployment, error) {
	var d baton.Deployment
	err := row.Scan(&d.Seq, &d.ID, &d.App, &d.Slot, &d.Kind, &d.Params, &d.State, &d.Phase, &d.Policy, &d.Revision,
		&d.ArtifactDigest, &d.ArtifactType, &d.Message, &d.Commit, &d.Author, &d.IdempotencyKey, &d.OrderKey,
		&d.Error, &d.Token, &d.CreatedAt, &d.StartedAt, &d.FinishedAt, &d.PhaseStartedAt)
	utc(&d.CreatedAt)
	utc(d.StartedAt)
	utc(d.FinishedAt)
	utc(d.PhaseStartedAt)
	return d, err
}

// queryDeployments runs `SELECT deploymentColumns FROM deployments <tail>`.
func queryDeployments(ctx context.Context, q querier, tail string, args ...any) ([]baton.Deployment, error) {
	rows, err := q.Query(ctx, `SELECT `+deploymentColumns+` FROM deployments `+tail, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.Deployment, error) { return scanDeployment(row) })
}

func deploymentQ(ctx context.Context, q querier, id string) (baton.Deployment, error) {
	d, err := scanDeployment(q.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE id = $1`, id))
	return d, notFound(err, "deployment %q does not exist; list deployments with `baton deployments list APP`", id)
}

// Deployment returns one deployment.
func (s *DB) Deployment(ctx context.Context, id string) (baton.Deployment, error) {
	return deploymentQ(ctx, s.pool, id)
}

// Deployments returns deployments matching f, newest first unless f.Oldest.
func (s *DB) Deployments(ctx context.Context, f baton.DeploymentFilter) ([]baton.Deployment, error) {
	var conds []string
	var args []any
	if f.App != "" {
		args = append(args, f.App)
		conds = append(conds, fmt.Sprintf("app = $%d", len(args)))
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, st := range f.States {
			states[i] = string(st)
		}
		args = append(args, states)
		conds = append(conds, fmt.Sprintf("state = ANY($%d)", len(args)))
	}
	tail := ""
	if len(conds) > 0 {
		tail = "WHERE " + strings.Join(conds, " AND ")
	}
	order := " ORDER BY seq DESC"
	if f.Oldest {
		order = " ORDER BY seq"
	}
	if f.PerApp > 0 {
		tail = fmt.Sprintf(`WHERE seq IN (SELECT seq FROM (SELECT seq, ROW_NUMBER() OVER (PARTITION BY app%s) AS n FROM deployments %s) AS w WHERE n <= %d)`,
			order, tail, f.PerApp)
	}
	tail += order
	if f.Limit > 0 {
		tail += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return queryDeployments(ctx, s.pool, tail, args...)
}

// StartDeployment moves a queued deployment to running under f.
func (s *DB) StartDeployment(ctx context.Context, f baton.Fence, id string) (baton.Deployment, error) {
	var d baton.Deployment
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		var err error
		d, err = scanDeployment(tx.QueryRow(ctx, `UPDATE deployments SET state = 'running', token = $2, started_at = now(), phase_started_at = now()
			WHERE id = $1 AND state = 'queued' RETURNING `+deploymentColumns, id, f.Token))
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		cur, err := deploymentQ(ctx, tx, id)
		if err != nil {
			return err
		}
		return baton.Errorf(baton.ECONFLICT, "deployment %s is %s, not queued", id, cur.State)
	})
	return d, err
}

// runningUpdate runs `UPDATE deployments SET <set>` on the running
// deployment id that holds fence f. In set, $1 and $2 are taken (id and
// token); its own arguments start at $3.
func (s *DB) runningUpdate(ctx context.Context, f baton.Fence, id, set string, args ...any) error {
	return s.tx(ctx, func(tx pgx.Tx) error { return runningUpdateTx(ctx, tx, f, id, set, args...) })
}

func runningUpdateTx(ctx context.Context, tx pgx.Tx, f baton.Fence, id, set string, args ...any) error {
	if err := checkFence(ctx, tx, f); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE deployments SET `+set+` WHERE id = $1 AND state = 'running' AND token = $2`,
		append([]any{id, f.Token}, args...)...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return baton.ErrStaleToken
	}
	return nil
}

// UpdateRunning records the phase and revision of a running deployment.
func (s *DB) UpdateRunning(ctx context.Context, f baton.Fence, id string, phase baton.Phase, revision string) error {
	return s.runningUpdate(ctx, f, id,
		`phase_started_at = CASE WHEN phase = $3 THEN phase_started_at ELSE now() END, phase = $3, revision = $4`,
		string(phase), revision)
}

// FinishDeployment moves a running deployment to a final state, releases
// the leases it holds and notifies ChannelLeaseReleased for each.
func (s *DB) FinishDeployment(ctx context.Context, f baton.Fence, id string, state baton.State, reason string) error {
	if !state.Final() {
		return fmt.Errorf("finish deployment %s: %s is not a final state", id, state)
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := runningUpdateTx(ctx, tx, f, id, `state = $3, error = $4, finished_at = now()`, string(state), reason); err != nil {
			return err
		}
		return deleteLeases(ctx, tx, `holder = $1`, id)
	})
}

// CancelQueued cancels a deployment that has not started.
func (s *DB) CancelQueued(ctx context.Context, id, reason string) (baton.Deployment, error) {
	var d baton.Deployment
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		d, err = scanDeployment(tx.QueryRow(ctx, `UPDATE deployments SET state = 'cancelled', error = $2, finished_at = now()
			WHERE id = $1 AND state = 'queued' RETURNING `+deploymentColumns, id, reason))
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		cur, err := deploymentQ(ctx, tx, id)
		if err != nil {
			return err
		}
		return baton.Errorf(baton.ECONFLICT, "deployment %s is %s, not queued", id, cur.State)
	})
	return d, err
}

// FailInterrupted ends the running deployments of apps (all apps when
// nil) left by a controller that stopped (see endInterrupted), deletes
// their app leases and notifies ChannelLeaseReleased for each.
func (s *DB) FailInterrupted(ctx context.Context, apps []string) ([]baton.Deployment, error) {
	// nil selects every app; an empty, non-nil slice selects none.
	var filter any
	if apps != nil {
		filter = apps
	}
	var out []baton.Deployment
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// Lease rows before deployment rows: the order fenced writes use.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM leases WHERE key IN (
			SELECT 'app:' || app FROM deployments WHERE state = 'running' AND ($1::text[] IS NULL OR app = ANY($1)))
			ORDER BY key FOR UPDATE`, filter); err != nil {
			return err
		}
		var err error
		out, err = endInterrupted(ctx, tx, `($1::text[] IS NULL OR d.app = ANY($1))`, "baton stopped while the deployment was in phase", filter)
		if err != nil {
			return err
		}
		keys, holders := make([]string, len(out)), make([]string, len(out))
		for i, d := range out {
			keys[i], holders[i] = baton.AppLeaseKey(d.App), d.ID
		}
		return deleteLeases(ctx, tx, `(key, holder) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, keys, holders)
	})
	return out, err
}

// endInterrupted ends the running deployments d that match where (in
// which args start at $1), whose controller is gone, and returns them in
// queue order. baton.InterruptedOutcome decides each one's final state; a
// failed one's error says why. The caller has locked their leases' rows.
func endInterrupted(ctx context.Context, tx pgx.Tx, where, why string, args ...any) ([]baton.Deployment, error) {
	rows, err := tx.Query(ctx, `SELECT d.id, d.phase, d.switched FROM deployments d WHERE d.state = 'running' AND `+where+`
		ORDER BY d.seq FOR UPDATE OF d`, args...)
	if err != nil {
		return nil, err
	}
	var ids, states, reasons []string
	var id string
	var phase baton.Phase
	var switched bool
	_, err = pgx.ForEachRow(rows, []any{&id, &phase, &switched}, func() error {
		state, reason := baton.InterruptedOutcome(phase, switched), ""
		if state == baton.StateFailed {
			reason = fmt.Sprintf("%s: %s %s", baton.ReasonInterrupted, why, phase)
		}
		ids, states, reasons = append(ids, id), append(states, string(state)), append(reasons, reason)
		return nil
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	rows, err = tx.Query(ctx, `UPDATE deployments SET state = u.new_state, error = u.new_error, finished_at = now()
		FROM unnest($1::text[], $2::text[], $3::text[]) AS u(ended, new_state, new_error)
		WHERE id = u.ended RETURNING `+deploymentColumns, ids, states, reasons)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.Deployment, error) { return scanDeployment(row) })
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, err
}

// logLock is the first key of the transaction-level advisory lock that
// AppendLog takes per deployment (the second is a hash of its id).
const logLock int32 = 0x6c6f67 // "log"

// AppendLog appends lines to a deployment's log.
//
// Appends to one deployment are serialized: line ids come from a sequence,
// and without the lock a reader could see id 8 committed before id 7 and,
// resuming after 8, never see 7.
func (s *DB) AppendLog(ctx context.Context, id string, lines ...string) error {
	if len(lines) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, logLock, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO deployment_logs (deployment, at, text)
			SELECT $1, now(), line FROM unnest($2::text[]) WITH ORDINALITY AS l(line, n) ORDER BY n`, id, lines)
		return err
	})
	if isForeignKeyViolation(err) {
		return baton.Errorf(baton.ENOTFOUND, "deployment %q does not exist", id)
	}
	return err
}

// Log returns a deployment's log lines after the given line ID.
func (s *DB) Log(ctx context.Context, id string, after int64) ([]baton.LogLine, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, at, text FROM deployment_logs WHERE deployment = $1 AND id > $2 ORDER BY id`, id, after)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.LogLine, error) {
		var l baton.LogLine
		err := row.Scan(&l.ID, &l.Time, &l.Text)
		utc(&l.Time)
		return l, err
	})
}
