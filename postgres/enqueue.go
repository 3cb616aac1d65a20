package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

// Enqueue reads the app's queue state, lets baton.Admit decide, and
// applies the decision, in one transaction; it notifies
// ChannelDeploymentQueued with the app name when it queues a deployment.
//
// The transaction first locks the app's row, so Enqueue calls for one app
// (from any controller) decide one after another: of twenty concurrent
// requests with policy fail on an idle app, exactly one is accepted, and a
// queue limit holds exactly.
func (s *DB) Enqueue(ctx context.Context, req baton.EnqueueRequest) (baton.EnqueueResult, error) {
	var res baton.EnqueueResult
	err := s.tx(ctx, func(tx pgx.Tx) error {
		q, now, err := queueState(ctx, tx, req)
		if err != nil {
			return err
		}
		adm, err := baton.Admit(req, q, now)
		if err != nil {
			return err
		}
		res, err = applyAdmission(ctx, tx, req, adm)
		return err
	})
	return res, err
}

// queueState locks the app's row and reads what baton.Admit needs to
// decide req, and the database clock's now.
func queueState(ctx context.Context, tx pgx.Tx, req baton.EnqueueRequest) (baton.QueueState, time.Time, error) {
	var q baton.QueueState
	var now time.Time
	d := req.Deployment
	var slotExists bool
	var frozenReason, frozenBy string
	var frozenAt *time.Time
	err := tx.QueryRow(ctx, `SELECT now(), EXISTS (SELECT 1 FROM slots WHERE app = $1 AND name = $2), frozen_reason, frozen_by, frozen_at
		FROM apps WHERE name = $1 FOR NO KEY UPDATE`, d.App, d.Slot).Scan(&now, &slotExists, &frozenReason, &frozenBy, &frozenAt)
	if err != nil {
		return q, now, notFound(err, "app %q does not exist; create it with `baton apps create %s`", d.App, d.App)
	}
	if !slotExists {
		return q, now, baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist", d.Slot, d.App)
	}
	if frozenAt != nil {
		q.Frozen = &baton.Freeze{Reason: frozenReason, By: frozenBy, At: frozenAt.UTC()}
	}
	if d.IdempotencyKey != "" {
		prev, err := queryDeployments(ctx, tx, `WHERE app = $1 AND idempotency_key = $2 ORDER BY seq DESC LIMIT 1`, d.App, d.IdempotencyKey)
		if err != nil {
			return q, now, err
		}
		if len(prev) > 0 {
			q.Repeat = &prev[0]
		}
		var u baton.UnchangedAnswer
		err = tx.QueryRow(ctx, `SELECT revision, created_at, request FROM unchanged_requests WHERE app = $1 AND idempotency_key = $2`,
			d.App, d.IdempotencyKey).Scan(&u.Revision, &u.At, &u.Request)
		if err == nil {
			q.RepeatUnchanged = &u
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return q, now, err
		}
	}
	active, err := queryDeployments(ctx, tx, `WHERE app = $1 AND state IN ('queued', 'running') ORDER BY seq`, d.App)
	if err != nil {
		return q, now, err
	}
	for i := range active {
		if active[i].State == baton.StateRunning {
			q.Running = &active[i]
		} else {
			q.Queued = append(q.Queued, active[i])
		}
	}
	if d.Policy == baton.PolicyNewerOnly {
		// The keyed deploy whose revision is active in the slot with the
		// highest order key (baton.QueueState.Live). A revision moves
		// between slots on a swap, so the deploy is found by its revision.
		live, err := queryDeployments(ctx, tx, `WHERE app = $1 AND kind = 'deploy' AND state = 'succeeded' AND order_key > 0
			AND revision IN (SELECT name FROM revisions WHERE app = $1 AND slot = $2 AND active)
			ORDER BY order_key DESC LIMIT 1`, d.App, d.Slot)
		if err != nil {
			return q, now, err
		}
		if len(live) > 0 {
			q.Live = &live[0]
		}
	}
	if req.IfUnchanged != nil {
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM deployments WHERE app = $1`, d.App).Scan(&q.NewestSeq); err != nil {
			return q, now, err
		}
		rows, err := tx.Query(ctx, `SELECT name, weight FROM revisions WHERE app = $1 AND slot = $2 AND active`, d.App, d.Slot)
		if err != nil {
			return q, now, err
		}
		q.Serving, err = pgx.CollectRows(rows, pgx.RowToStructByPos[baton.RevisionWeight])
		if err != nil {
			return q, now, err
		}
	}
	return q, now, nil
}

// applyAdmission records what baton.Admit decided.
func applyAdmission(ctx context.Context, tx pgx.Tx, req baton.EnqueueRequest, adm baton.Admission) (baton.EnqueueResult, error) {
	var res baton.EnqueueResult
	var err error
	switch adm.Verdict {
	case baton.VerdictRepeat:
		return baton.EnqueueResult{Deployment: adm.Deployment, Existing: true}, nil
	case baton.VerdictRepeatUnchanged:
		res.Deployment, err = creatorQ(ctx, tx, adm.Revision)
		res.Existing, res.Unchanged = true, true
		return res, err
	case baton.VerdictUnchanged:
		if req.Deployment.IdempotencyKey != "" {
			if err := rememberUnchanged(ctx, tx, req, adm.Revision); err != nil {
				return res, err
			}
		}
		res.Deployment, err = creatorQ(ctx, tx, adm.Revision)
		res.Unchanged = true
		return res, err
	case baton.VerdictQueue:
	default:
		return res, fmt.Errorf("enqueue: unknown verdict %s", adm.Verdict)
	}
	if len(adm.Replace) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE deployments SET state = $1, error = $2, finished_at = now() WHERE id = ANY($3) AND state = 'queued'`,
			string(adm.ReplaceState), adm.ReplaceReason, adm.Replace); err != nil {
			return res, err
		}
	}
	res.Replaced, res.CancelRunning = adm.Replace, adm.CancelRunning
	d := adm.Deployment
	res.Deployment, err = scanDeployment(tx.QueryRow(ctx, `INSERT INTO deployments (id, app, slot, kind, params, state, policy,
		artifact_digest, artifact_type, message, commit_sha, author, idempotency_key, order_key, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, now())
		RETURNING `+deploymentColumns,
		d.ID, d.App, d.Slot, string(d.Kind), d.Params, string(d.State), string(d.Policy), d.ArtifactDigest, d.ArtifactType,
		d.Message, d.Commit, d.Author, d.IdempotencyKey, d.OrderKey))
	if err != nil {
		return res, err
	}
	// Sent on commit, so a listener never hears of a deployment it cannot read.
	_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ChannelDeploymentQueued, d.App)
	return res, err
}

// rememberUnchanged keeps an Unchanged answer under the request's
// Idempotency-Key, so a repeat within the window gets it again; answers
// older than the window are dropped on the way.
func rememberUnchanged(ctx context.Context, tx pgx.Tx, req baton.EnqueueRequest, revision string) error {
	d := req.Deployment
	if _, err := tx.Exec(ctx, `DELETE FROM unchanged_requests WHERE app = $1
		AND created_at < now() - $2::bigint * interval '1 microsecond'`, d.App, micros(req.IdempotencyWindow)); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO unchanged_requests (app, idempotency_key, revision, created_at, request) VALUES ($1, $2, $3, now(), $4)
		ON CONFLICT (app, idempotency_key) DO UPDATE SET revision = excluded.revision, created_at = excluded.created_at, request = excluded.request`,
		d.App, d.IdempotencyKey, revision, d.RequestFingerprint())
	return err
}

// creatorQ returns the deployment that created a revision.
func creatorQ(ctx context.Context, q querier, revision string) (baton.Deployment, error) {
	var id string
	if err := q.QueryRow(ctx, `SELECT deployment FROM revisions WHERE name = $1`, revision).Scan(&id); err != nil {
		return baton.Deployment{}, notFound(err, "revision %q does not exist", revision)
	}
	return deploymentQ(ctx, q, id)
}
