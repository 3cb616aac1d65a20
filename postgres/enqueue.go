package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

// Enqueue applies the conflict policy and records a queued deployment, in
// one transaction, and notifies ChannelDeploymentQueued with the app name.
//
// The transaction first locks the app's row, so Enqueue calls for one app
// (from any controller) decide one after another: of twenty concurrent
// requests with policy fail on an idle app, exactly one is accepted, and a
// queue limit holds exactly.
func (s *DB) Enqueue(ctx context.Context, req baton.EnqueueRequest) (baton.EnqueueResult, error) {
	var res baton.EnqueueResult
	d := req.Deployment
	err := s.tx(ctx, func(tx pgx.Tx) error {
		res = baton.EnqueueResult{}
		var now time.Time
		var slotExists bool
		var frozenReason, frozenBy string
		var frozenAt *time.Time
		err := tx.QueryRow(ctx, `SELECT now(), EXISTS (SELECT 1 FROM slots WHERE app = $1 AND name = $2), frozen_reason, frozen_by, frozen_at
			FROM apps WHERE name = $1 FOR NO KEY UPDATE`, d.App, d.Slot).Scan(&now, &slotExists, &frozenReason, &frozenBy, &frozenAt)
		if err != nil {
			return notFound(err, "app %q does not exist; create it with `baton apps create %s`", d.App, d.App)
		}
		if !slotExists {
			return baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist", d.Slot, d.App)
		}
		if frozenAt != nil {
			return baton.Errorf(baton.EFROZEN, "app %q is frozen since %s by %s: %q; new deployments are refused until `baton unfreeze %s`",
				d.App, frozenAt.UTC().Format(time.RFC3339), frozenBy, frozenReason, d.App)
		}
		if d.IdempotencyKey != "" {
			prev, err := queryDeployments(ctx, tx, `WHERE app = $1 AND idempotency_key = $2
				AND created_at >= now() - $3::bigint * interval '1 microsecond' ORDER BY seq DESC LIMIT 1`,
				d.App, d.IdempotencyKey, micros(req.IdempotencyWindow))
			if err != nil {
				return err
			}
			if len(prev) > 0 {
				res.Deployment, res.Existing = prev[0], true
				return nil
			}
			var rev string
			err = tx.QueryRow(ctx, `SELECT revision FROM unchanged_requests WHERE app = $1 AND idempotency_key = $2
				AND created_at >= now() - $3::bigint * interval '1 microsecond'`,
				d.App, d.IdempotencyKey, micros(req.IdempotencyWindow)).Scan(&rev)
			if err == nil {
				res.Deployment, err = creatorQ(ctx, tx, rev)
				res.Existing, res.Unchanged = true, true
				return err
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		active, err := queryDeployments(ctx, tx, `WHERE app = $1 AND state IN ('queued', 'running') ORDER BY seq`, d.App)
		if err != nil {
			return err
		}
		if c := req.IfUnchanged; c != nil && len(active) == 0 {
			unchanged, err := stillServes(ctx, tx, d, c)
			if err != nil {
				return err
			}
			if unchanged {
				if d.IdempotencyKey != "" {
					if _, err := tx.Exec(ctx, `DELETE FROM unchanged_requests WHERE app = $1
						AND created_at < now() - $2::bigint * interval '1 microsecond'`, d.App, micros(req.IdempotencyWindow)); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, `INSERT INTO unchanged_requests (app, idempotency_key, revision, created_at) VALUES ($1, $2, $3, now())
						ON CONFLICT (app, idempotency_key) DO UPDATE SET revision = excluded.revision, created_at = excluded.created_at`,
						d.App, d.IdempotencyKey, c.Revision); err != nil {
						return err
					}
				}
				res.Deployment, err = creatorQ(ctx, tx, c.Revision)
				res.Unchanged = true
				return err
			}
		}
		var running *baton.Deployment
		var queued []baton.Deployment
		for i := range active {
			if active[i].State == baton.StateRunning {
				running = &active[i]
			} else {
				queued = append(queued, active[i])
			}
		}
		switch d.Policy {
		case baton.PolicyFail:
			if len(active) > 0 {
				holder := running
				if holder == nil {
					holder = &queued[0]
				}
				return &baton.Error{
					Code: baton.ECONFLICT,
					Message: fmt.Sprintf("app %q is busy: %s, and %d more queued. Retry later, use `baton wait %s`, or deploy with --on-conflict=queue to wait in line",
						d.App, holder.Describe(now), len(queued), d.App),
					Conflict: &baton.ConflictDetail{App: d.App, Holder: holder, QueueLength: len(queued),
						RunningForSeconds: int(holder.Duration(now).Seconds())},
				}
			}
		case baton.PolicyQueue:
			if req.MaxQueue > 0 && len(queued) >= req.MaxQueue {
				return &baton.Error{
					Code:     baton.EQUEUEFULL,
					Message:  fmt.Sprintf("app %q already has %d deployments queued (the limit); wait for some to finish (`baton wait %s`) or deploy with --on-conflict=supersede to replace them", d.App, len(queued), d.App),
					Conflict: &baton.ConflictDetail{App: d.App, Holder: running, QueueLength: len(queued)},
				}
			}
		case baton.PolicyCancel, baton.PolicySupersede:
			state, reason := baton.StateCancelled, fmt.Sprintf("cancelled by deployment %s (on_conflict=cancel)", d.ID)
			if d.Policy == baton.PolicySupersede {
				state, reason = baton.StateSuperseded, fmt.Sprintf("superseded by deployment %s", d.ID)
			}
			ids := make([]string, len(queued))
			for i, q := range queued {
				ids[i] = q.ID
			}
			if _, err := tx.Exec(ctx, `UPDATE deployments SET state = $1, error = $2, finished_at = now() WHERE id = ANY($3) AND state = 'queued'`,
				string(state), reason, ids); err != nil {
				return err
			}
			if len(ids) > 0 {
				res.Replaced = ids
			}
			if d.Policy == baton.PolicyCancel && running != nil {
				res.CancelRunning = running.ID
			}
		default:
			return baton.Errorf(baton.EINVALID, "unknown conflict policy %q", d.Policy)
		}
		kind := d.Kind
		if kind == "" {
			kind = baton.KindDeploy
		}
		res.Deployment, err = scanDeployment(tx.QueryRow(ctx, `INSERT INTO deployments (id, app, slot, kind, params, state, policy,
			artifact_digest, artifact_type, message, commit_sha, author, idempotency_key, created_at)
			VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, $11, $12, now())
			RETURNING `+deploymentColumns,
			d.ID, d.App, d.Slot, string(kind), d.Params, string(d.Policy), d.ArtifactDigest, d.ArtifactType,
			d.Message, d.Commit, d.Author, d.IdempotencyKey))
		if err != nil {
			return err
		}
		// Sent on commit, so a listener never hears of a deployment it cannot read.
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ChannelDeploymentQueued, d.App)
		return err
	})
	return res, err
}

// stillServes reports whether what a caller compared still serves (see
// baton.EnqueueRequest.IfUnchanged), with nothing of the app queued or
// running (the caller checked): no deployment of the app newer than c.Seq,
// and c.Revision active in the slot with c.Weight. Enqueue holds the app's
// row, so no deployment of the app can be accepted meanwhile.
func stillServes(ctx context.Context, tx pgx.Tx, d baton.Deployment, c *baton.LiveCheck) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM deployments WHERE app = $1 AND seq > $2)
		AND EXISTS (SELECT 1 FROM revisions WHERE app = $1 AND name = $3 AND slot = $4 AND active AND weight = $5)`,
		d.App, c.Seq, c.Revision, d.Slot, c.Weight).Scan(&ok)
	return ok, err
}

// creatorQ returns the deployment that created a revision.
func creatorQ(ctx context.Context, q querier, revision string) (baton.Deployment, error) {
	var id string
	if err := q.QueryRow(ctx, `SELECT deployment FROM revisions WHERE name = $1`, revision).Scan(&id); err != nil {
		return baton.Deployment{}, notFound(err, "revision %q does not exist", revision)
	}
	return deploymentQ(ctx, q, id)
}
