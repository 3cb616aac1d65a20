package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/ociimage"
)

var _ baton.Deployer = (*Coordinator)(nil)

// Submit stores the artifact content-addressed, then queues the deployment
// under its conflict policy — unless it would change nothing (see
// unchanged.go) and the request does not Force it.
func (c *Coordinator) Submit(ctx context.Context, req baton.SubmitRequest) (baton.SubmitResult, error) {
	if req.Slot == "" {
		req.Slot = baton.ProductionSlot
	}
	if _, err := c.cfg.Store.App(ctx, req.App); err != nil {
		return baton.SubmitResult{}, err
	}
	var check *baton.LiveCheck
	compare := func(digest string) {
		if !req.Force {
			check = c.unchanged(ctx, req.App, req.Slot, digest, req.Params.RequestedWeight())
		}
	}
	digest, kind, err := c.acceptArtifact(ctx, &req, compare)
	if err != nil {
		return baton.SubmitResult{}, err
	}
	params, err := baton.EncodeParams(baton.KindDeploy, req.Params)
	if err != nil {
		return baton.SubmitResult{}, err
	}
	d := baton.Deployment{
		ID: baton.NewID("d-"), App: req.App, Slot: req.Slot, Kind: baton.KindDeploy, Params: params, Policy: req.Policy,
		ArtifactDigest: digest, ArtifactType: kind,
		Message: req.Message, Commit: req.Commit, Author: req.Author, IdempotencyKey: req.IdempotencyKey, OrderKey: req.OrderKey,
	}
	res, err := c.enqueue(ctx, d, check)
	return baton.SubmitResult{Deployment: res.Deployment, Existing: res.Existing, Unchanged: res.Unchanged}, err
}

// acceptArtifact stores what a deploy request brings and returns its
// digest and type: an uploaded archive in the artifact store; an image
// (pulled, pushed, or uploaded as an image archive) in the image store,
// where req.Params.Image then says where it came from. It calls compare
// with the digest before it returns (Submit's check whether the deploy
// changes anything): for an archive, while the upload's fsync runs, since
// the check only reads the store and Enqueue confirms what it found.
func (c *Coordinator) acceptArtifact(ctx context.Context, req *baton.SubmitRequest, compare func(digest string)) (digest, kind string, err error) {
	archive := ""
	if req.Image == nil && req.ImageDigest == "" {
		up, err := c.cfg.Artifacts.Receive(req.Artifact, req.MaxUpload)
		if err != nil {
			return "", "", err
		}
		defer up.Abort() // a request refused here stores nothing; no-op after Commit
		if _, isImage := ociimage.ArchiveKind(up.Path()); !isImage {
			if req.Params.Manifest != "" {
				return "", "", baton.Errorf(baton.EINVALID, "a manifest given with the deploy applies to container images; put baton.toml in the archive instead")
			}
			if kind, err = artifact.DetectType(up.Path()); err != nil {
				return "", "", err
			}
			compare(up.Digest)
			// The deployment is recorded only once its artifact survives a
			// power cut.
			if err := up.Commit(); err != nil {
				return "", "", err
			}
			if c.cfg.Blobs != nil {
				// The app's controller may be another one: share the artifact.
				err = c.shareArtifact(ctx, up.Digest)
			}
			return up.Digest, kind, err
		}
		// The image store keeps the image's blobs; collection removes the
		// archive itself once its grace has passed.
		if err := up.Commit(); err != nil {
			return "", "", err
		}
		archive = up.Path()
	}
	img, source, err := c.acceptImage(ctx, *req, archive)
	if err != nil {
		return "", "", err
	}
	req.Params.Image = source
	compare(img.Digest)
	return img.Digest, baton.ArtifactImage, nil
}

// enqueue records a deployment or operation under its conflict policy and
// wakes the app's worker; with check, it records nothing if what check
// describes still serves (baton.EnqueueRequest.IfUnchanged).
func (c *Coordinator) enqueue(ctx context.Context, d baton.Deployment, check *baton.LiveCheck) (baton.EnqueueResult, error) {
	res, err := c.cfg.Store.Enqueue(ctx, baton.EnqueueRequest{
		Deployment:        d,
		MaxQueue:          c.cfg.MaxQueue,
		IdempotencyWindow: c.cfg.IdempotencyWindow,
		IfUnchanged:       check,
	})
	if err != nil {
		var e *baton.Error
		if errors.As(err, &e) && e.Conflict != nil {
			e.RetryAfterSeconds = c.estimateWait(ctx, d.App, e.Conflict)
			if h := e.Conflict.Holder; h != nil && h.Phase == baton.PhaseWaitingForResource {
				e.Message += "; " + c.resourceWaitNote(h.ID)
			}
		}
		return baton.EnqueueResult{Deployment: d}, err
	}
	if res.Existing || res.Unchanged {
		return res, nil
	}
	d = res.Deployment
	_ = c.cfg.Store.AppendLog(ctx, d.ID, fmt.Sprintf("queued %s (%s policy)", d.Kind, d.Policy))
	for _, id := range res.Replaced {
		_ = c.cfg.Store.AppendLog(ctx, id, "replaced by "+d.ID+" ("+string(d.Policy)+" policy)")
	}
	if res.CancelRunning != "" {
		c.cancelRun(res.CancelRunning, "cancelled by "+d.ID+" (on_conflict=cancel)")
	}
	c.changes.notify()
	c.kick(d.App)
	return res, nil
}

// estimateWait is the Retry-After of a refusal: how long until the app is
// free by baton.EstimateWait, from the holder, what is queued behind it,
// the app's recent history and the holder's phase deadlines.
func (c *Coordinator) estimateWait(ctx context.Context, app string, cd *baton.ConflictDetail) int {
	f := baton.WaitFacts{Holder: cd.Holder, Now: c.cfg.Now()}
	if recent, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, Limit: 30}); err == nil {
		f.Recent = recent
	}
	if queued, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{App: app, States: []baton.State{baton.StateQueued}, Oldest: true}); err == nil {
		for _, q := range queued {
			if cd.Holder == nil || q.ID != cd.Holder.ID {
				f.Queued = append(f.Queued, q)
			}
		}
	}
	if h := cd.Holder; h != nil {
		m := c.runManifest(*h)
		f.Limit = func(ph baton.Phase) (time.Duration, bool) { return c.phaseDeadline(ph, m) }
	}
	return int(baton.EstimateWait(f).Seconds())
}

// shareArtifact copies a local artifact into the shared store.
func (c *Coordinator) shareArtifact(ctx context.Context, digest string) error {
	f, err := c.cfg.Artifacts.Open(digest)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.cfg.Blobs.PutArtifact(ctx, digest, f)
}

// localArtifact makes sure an artifact (or a container image, by its
// manifest digest) is on this controller's disk, fetching it from the
// shared store when another controller accepted it.
func (c *Coordinator) localArtifact(ctx context.Context, digest string) error {
	if baton.IsImageDigest(digest) {
		return c.localImage(ctx, digest)
	}
	if f, err := c.cfg.Artifacts.Open(digest); err == nil {
		f.Close()
		return nil
	}
	if c.cfg.Blobs == nil {
		return baton.Errorf(baton.ENOTFOUND, "artifact %s is missing from this controller", digest)
	}
	return c.fromShared(ctx, digest, func(r io.Reader) error {
		got, _, err := c.cfg.Artifacts.Put(r, 0)
		if err == nil && got != digest {
			err = fmt.Errorf("artifact %s from the shared store hashes to %s", digest, got)
		}
		return err
	})
}

// fromShared streams a blob of the shared store into put.
func (c *Coordinator) fromShared(ctx context.Context, digest string, put func(io.Reader) error) error {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(c.cfg.Blobs.ReadArtifact(ctx, digest, pw))
	}()
	err := put(pr)
	pr.CloseWithError(err)
	<-done
	if err != nil {
		return fmt.Errorf("fetch %s from the shared store: %w", digest, err)
	}
	return nil
}
