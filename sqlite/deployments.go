package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/batonhq/baton"
)

const deploymentColumns = `seq, id, app, slot, kind, params, state, phase, policy, revision, artifact_digest, artifact_type,
	message, commit_sha, author, idempotency_key, order_key, error, token, created_at, started_at, finished_at, phase_started_at`

type scanner interface{ Scan(dest ...any) error }

func scanDeployment(row scanner) (baton.Deployment, error) {
	var d baton.Deployment
	var created int64
	var started, finished, phaseStarted sql.NullInt64
	err := row.Scan(&d.Seq, &d.ID, &d.App, &d.Slot, &d.Kind, &d.Params, &d.State, &d.Phase, &d.Policy, &d.Revision,
		&d.ArtifactDigest, &d.ArtifactType, &d.Message, &d.Commit, &d.Author, &d.IdempotencyKey, &d.OrderKey,
		&d.Error, &d.Token, &created, &started, &finished, &phaseStarted)
	if err != nil {
		return d, err
	}
	d.CreatedAt = fromMicros(created)
	d.StartedAt, d.FinishedAt, d.PhaseStartedAt = fromNullMicros(started), fromNullMicros(finished), fromNullMicros(phaseStarted)
	return d, nil
}

func queryDeployments(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, where string, args ...any) ([]baton.Deployment, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+deploymentColumns+` FROM deployments `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []baton.Deployment
	for rows.Next() {
		d, err := scanDeployment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func deploymentTx(ctx context.Context, tx *sql.Tx, id string) (baton.Deployment, error) {
	d, err := scanDeployment(tx.QueryRowContext(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE id = ?`, id))
	return d, notFound(err, "deployment %q does not exist", id)
}

// Enqueue reads the app's queue state, lets baton.Admit decide, and
// applies the decision, in one transaction. The transaction takes SQLite's
// write lock at BEGIN (_txlock=immediate), so decisions for one app are
// made one after another.
func (s *DB) Enqueue(ctx context.Context, req baton.EnqueueRequest) (baton.EnqueueResult, error) {
	var res baton.EnqueueResult
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		q, err := queueState(ctx, tx, req)
		if err != nil {
			return err
		}
		adm, err := baton.Admit(req, q, fromMicros(now))
		if err != nil {
			return err
		}
		res, err = s.applyAdmission(ctx, tx, req, adm, now)
		return err
	})
	return res, err
}

// queueState reads what baton.Admit needs to decide req.
func queueState(ctx context.Context, tx *sql.Tx, req baton.EnqueueRequest) (baton.QueueState, error) {
	var q baton.QueueState
	d := req.Deployment
	var slotCount int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM slots WHERE app = ? AND name = ?`, d.App, d.Slot).Scan(&slotCount); err != nil {
		return q, err
	}
	if slotCount == 0 {
		var appCount int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM apps WHERE name = ?`, d.App).Scan(&appCount); err != nil {
			return q, err
		}
		if appCount == 0 {
			return q, baton.Errorf(baton.ENOTFOUND, "app %q does not exist; create it with `baton apps create %s`", d.App, d.App)
		}
		return q, baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist", d.Slot, d.App)
	}
	var frozenReason, frozenBy string
	var frozenAt sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT frozen_reason, frozen_by, frozen_at FROM apps WHERE name = ?`, d.App).Scan(&frozenReason, &frozenBy, &frozenAt); err != nil {
		return q, err
	}
	if frozenAt.Valid {
		q.Frozen = &baton.Freeze{Reason: frozenReason, By: frozenBy, At: fromMicros(frozenAt.Int64)}
	}
	if d.IdempotencyKey != "" {
		prev, err := queryDeployments(ctx, tx, `WHERE app = ? AND idempotency_key = ? ORDER BY seq DESC LIMIT 1`, d.App, d.IdempotencyKey)
		if err != nil {
			return q, err
		}
		if len(prev) > 0 {
			q.Repeat = &prev[0]
		}
		var u baton.UnchangedAnswer
		var at int64
		err = tx.QueryRowContext(ctx, `SELECT revision, created_at, request FROM unchanged_requests WHERE app = ? AND idempotency_key = ?`,
			d.App, d.IdempotencyKey).Scan(&u.Revision, &at, &u.Request)
		if err == nil {
			u.At = fromMicros(at)
			q.RepeatUnchanged = &u
		} else if !errors.Is(err, sql.ErrNoRows) {
			return q, err
		}
	}
	active, err := queryDeployments(ctx, tx, `WHERE app = ? AND state IN ('queued', 'running') ORDER BY seq`, d.App)
	if err != nil {
		return q, err
	}
	for i := range active {
		if active[i].State == baton.StateRunning {
			q.Running = &active[i]
		} else {
			q.Queued = append(q.Queued, active[i])
		}
	}
	if d.Policy == baton.PolicyNewerOnly {
		live, err := queryDeployments(ctx, tx, liveOrderWhere(`?`, `?`), d.App, d.App, d.Slot)
		if err != nil {
			return q, err
		}
		if len(live) > 0 {
			q.Live = &live[0]
		}
	}
	if c := req.IfUnchanged; c != nil {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM deployments WHERE app = ?`, d.App).Scan(&q.NewestSeq); err != nil {
			return q, err
		}
		if q.Serving, err = servingTx(ctx, tx, d.App, d.Slot); err != nil {
			return q, err
		}
	}
	return q, nil
}

// liveOrderWhere selects, with the app (twice) and the slot as arguments,
// the keyed deploy whose revision is active in the slot with the highest
// order key (baton.QueueState.Live). A revision moves between slots on a
// swap, so the deploy is found by its revision, not by its own slot.
func liveOrderWhere(app, slot string) string {
	return `WHERE app = ` + app + ` AND kind = 'deploy' AND state = 'succeeded' AND order_key > 0
		AND revision IN (SELECT name FROM revisions WHERE app = ` + app + ` AND slot = ` + slot + ` AND active = 1)
		ORDER BY order_key DESC LIMIT 1`
}

// servingTx lists the revisions active in a slot, with their weights.
func servingTx(ctx context.Context, tx *sql.Tx, app, slot string) ([]baton.RevisionWeight, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, weight FROM revisions WHERE app = ? AND slot = ? AND active = 1`, app, slot)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []baton.RevisionWeight
	for rows.Next() {
		var rw baton.RevisionWeight
		if err := rows.Scan(&rw.Revision, &rw.Weight); err != nil {
			return nil, err
		}
		out = append(out, rw)
	}
	return out, rows.Err()
}

// applyAdmission records what baton.Admit decided.
func (s *DB) applyAdmission(ctx context.Context, tx *sql.Tx, req baton.EnqueueRequest, adm baton.Admission, now int64) (baton.EnqueueResult, error) {
	var res baton.EnqueueResult
	var err error
	switch adm.Verdict {
	case baton.VerdictRepeat:
		return baton.EnqueueResult{Deployment: adm.Deployment, Existing: true}, nil
	case baton.VerdictRepeatUnchanged:
		res.Deployment, err = creatorTx(ctx, tx, adm.Revision)
		res.Existing, res.Unchanged = true, true
		return res, err
	case baton.VerdictUnchanged:
		if req.Deployment.IdempotencyKey != "" {
			if err := rememberUnchanged(ctx, tx, req, adm.Revision, now); err != nil {
				return res, err
			}
		}
		res.Deployment, err = creatorTx(ctx, tx, adm.Revision)
		res.Unchanged = true
		return res, err
	case baton.VerdictQueue:
	default:
		return res, fmt.Errorf("enqueue: unknown verdict %s", adm.Verdict)
	}
	for _, id := range adm.Replace {
		if _, err := tx.ExecContext(ctx, `UPDATE deployments SET state = ?, error = ?, finished_at = ? WHERE id = ? AND state = 'queued'`,
			string(adm.ReplaceState), adm.ReplaceReason, now, id); err != nil {
			return res, err
		}
	}
	res.Replaced, res.CancelRunning = adm.Replace, adm.CancelRunning
	d := adm.Deployment
	_, err = tx.ExecContext(ctx, `INSERT INTO deployments (id, app, slot, kind, params, state, policy, artifact_digest, artifact_type,
		message, commit_sha, author, idempotency_key, order_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.App, d.Slot, d.Kind, d.Params, d.State, d.Policy, d.ArtifactDigest, d.ArtifactType, d.Message, d.Commit, d.Author, d.IdempotencyKey, d.OrderKey, now)
	if err != nil {
		return res, err
	}
	res.Deployment, err = deploymentTx(ctx, tx, d.ID)
	return res, err
}

// rememberUnchanged keeps an Unchanged answer under the request's
// Idempotency-Key, so a repeat within the window gets it again; answers
// older than the window are dropped on the way.
func rememberUnchanged(ctx context.Context, tx *sql.Tx, req baton.EnqueueRequest, revision string, now int64) error {
	d := req.Deployment
	if _, err := tx.ExecContext(ctx, `DELETE FROM unchanged_requests WHERE app = ? AND created_at < ?`,
		d.App, now-req.IdempotencyWindow.Microseconds()); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO unchanged_requests (app, idempotency_key, revision, created_at, request) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (app, idempotency_key) DO UPDATE SET revision = excluded.revision, created_at = excluded.created_at, request = excluded.request`,
		d.App, d.IdempotencyKey, revision, now, d.RequestFingerprint())
	return err
}

// creatorTx returns the deployment that created a revision.
func creatorTx(ctx context.Context, tx *sql.Tx, revision string) (baton.Deployment, error) {
	var id string
	err := tx.QueryRowContext(ctx, `SELECT deployment FROM revisions WHERE name = ?`, revision).Scan(&id)
	if err != nil {
		return baton.Deployment{}, notFound(err, "revision %q does not exist", revision)
	}
	return deploymentTx(ctx, tx, id)
}

// Deployment returns one deployment.
func (s *DB) Deployment(ctx context.Context, id string) (baton.Deployment, error) {
	d, err := scanDeployment(s.rdb.QueryRowContext(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE id = ?`, id))
	return d, notFound(err, "deployment %q does not exist; list deployments with `baton deployments list APP`", id)
}

// Deployments returns deployments matching f, newest first unless f.Oldest.
func (s *DB) Deployments(ctx context.Context, f baton.DeploymentFilter) ([]baton.Deployment, error) {
	var conds []string
	var args []any
	if f.App != "" {
		conds = append(conds, "app = ?")
		args = append(args, f.App)
	}
	if len(f.States) > 0 {
		ph := make([]string, len(f.States))
		for i, st := range f.States {
			ph[i] = "?"
			args = append(args, string(st))
		}
		conds = append(conds, "state IN ("+strings.Join(ph, ", ")+")")
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	order := " ORDER BY seq DESC"
	if f.Oldest {
		order = " ORDER BY seq"
	}
	if f.PerApp > 0 {
		where = fmt.Sprintf(`WHERE seq IN (SELECT seq FROM (SELECT seq, ROW_NUMBER() OVER (PARTITION BY app%s) AS n FROM deployments %s) AS w WHERE n <= %d)`,
			order, where, f.PerApp)
	}
	where += order
	if f.Limit > 0 {
		where += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return queryDeployments(ctx, s.rdb, where, args...)
}

// StartDeployment moves a queued deployment to running under f.
func (s *DB) StartDeployment(ctx context.Context, f baton.Fence, id string) (baton.Deployment, error) {
	var d baton.Deployment
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		cur, err := deploymentTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.State != baton.StateQueued {
			return baton.Errorf(baton.ECONFLICT, "deployment %s is %s, not queued", id, cur.State)
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, `UPDATE deployments SET state = 'running', token = ?, started_at = ?, phase_started_at = ? WHERE id = ?`,
			f.Token, now, now, id); err != nil {
			return err
		}
		d, err = deploymentTx(ctx, tx, id)
		return err
	})
	return d, err
}

// runningUpdate runs an UPDATE on a running deployment that holds fence f.
func (s *DB) runningUpdate(ctx context.Context, f baton.Fence, id, set string, args ...any) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return runningUpdateTx(ctx, tx, f, id, set, args...) })
}

func runningUpdateTx(ctx context.Context, tx *sql.Tx, f baton.Fence, id, set string, args ...any) error {
	if err := checkFence(ctx, tx, f); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE deployments SET `+set+` WHERE id = ? AND state = 'running' AND token = ?`,
		append(args, id, f.Token)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.ErrStaleToken
	}
	return nil
}

// UpdateRunning records the phase and revision of a running deployment.
func (s *DB) UpdateRunning(ctx context.Context, f baton.Fence, id string, phase baton.Phase, revision string) error {
	return s.runningUpdate(ctx, f, id,
		`phase_started_at = CASE WHEN phase = ? THEN phase_started_at ELSE ? END, phase = ?, revision = ?`,
		string(phase), s.now(), string(phase), revision)
}

// FinishDeployment moves a running deployment to a final state and
// releases the leases it holds.
func (s *DB) FinishDeployment(ctx context.Context, f baton.Fence, id string, state baton.State, reason string) error {
	if !state.Final() {
		return fmt.Errorf("finish deployment %s: %s is not a final state", id, state)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := runningUpdateTx(ctx, tx, f, id, `state = ?, error = ?, finished_at = ?`, string(state), reason, s.now()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE holder = ?`, id)
		return err
	})
}

// CancelQueued cancels a deployment that has not started.
func (s *DB) CancelQueued(ctx context.Context, id, reason string) (baton.Deployment, error) {
	var d baton.Deployment
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, err := deploymentTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.State != baton.StateQueued {
			return baton.Errorf(baton.ECONFLICT, "deployment %s is %s, not queued", id, cur.State)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deployments SET state = 'cancelled', error = ?, finished_at = ? WHERE id = ?`,
			reason, s.now(), id); err != nil {
			return err
		}
		d, err = deploymentTx(ctx, tx, id)
		return err
	})
	return d, err
}

// FailInterrupted ends the running deployments left by a controller that
// stopped (see endInterrupted), and deletes their leases.
func (s *DB) FailInterrupted(ctx context.Context, apps []string) ([]baton.Deployment, error) {
	var out []baton.Deployment
	err := s.tx(ctx, func(tx *sql.Tx) error {
		running, err := queryDeployments(ctx, tx, `WHERE state = 'running' ORDER BY seq`)
		if err != nil {
			return err
		}
		want := map[string]bool{}
		for _, a := range apps {
			want[a] = true
		}
		var mine []baton.Deployment
		for _, d := range running {
			if apps == nil || want[d.App] {
				mine = append(mine, d)
			}
		}
		out, err = s.endInterrupted(ctx, tx, mine, "baton stopped while the deployment was in phase")
		return err
	})
	return out, err
}

// endInterrupted ends running deployments whose controller is gone and
// deletes the leases they held. baton.InterruptedOutcome decides each
// one's final state; a failed one's error says why.
func (s *DB) endInterrupted(ctx context.Context, tx *sql.Tx, running []baton.Deployment, why string) ([]baton.Deployment, error) {
	now := s.now()
	out := make([]baton.Deployment, 0, len(running))
	for _, d := range running {
		var switched bool
		if err := tx.QueryRowContext(ctx, `SELECT switched FROM deployments WHERE id = ?`, d.ID).Scan(&switched); err != nil {
			return nil, err
		}
		d.State, d.Error = baton.InterruptedOutcome(d.Phase, switched), ""
		if d.State == baton.StateFailed {
			d.Error = fmt.Sprintf("%s: %s %s", baton.ReasonInterrupted, why, d.Phase)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deployments SET state = ?, error = ?, finished_at = ? WHERE id = ?`,
			string(d.State), d.Error, now, d.ID); err != nil {
			return nil, err
		}
		// Its app lease and any resource leases it held.
		if _, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE holder = ?`, d.ID); err != nil {
			return nil, err
		}
		t := fromMicros(now)
		d.FinishedAt = &t
		out = append(out, d)
	}
	return out, nil
}

// AppendLog appends lines to a deployment's log.
func (s *DB) AppendLog(ctx context.Context, id string, lines ...string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		for _, l := range lines {
			if _, err := tx.ExecContext(ctx, `INSERT INTO deployment_logs (deployment, at, text) VALUES (?, ?, ?)`, id, now, l); err != nil {
				return err
			}
		}
		return nil
	})
}

// Log returns a deployment's log lines after the given line ID.
func (s *DB) Log(ctx context.Context, id string, after int64) ([]baton.LogLine, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, at, text FROM deployment_logs WHERE deployment = ? AND id > ? ORDER BY id`, id, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []baton.LogLine
	for rows.Next() {
		var l baton.LogLine
		var at int64
		if err := rows.Scan(&l.ID, &at, &l.Text); err != nil {
			return nil, err
		}
		l.Time = fromMicros(at)
		out = append(out, l)
	}
	return out, rows.Err()
}
