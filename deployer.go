package baton

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Deployer accepts deployment requests with their artifacts and signals
// their progress. The coordinator implements it; the front ends that take
// code in (the REST API, git push, the Kudu API) use it.
type Deployer interface {
	// Submit stores the artifact, then queues the deployment under its
	// conflict policy (see Admit), unless it would change nothing.
	Submit(ctx context.Context, req SubmitRequest) (SubmitResult, error)
	// Changes returns a channel closed at the next change of any deployment.
	Changes() <-chan struct{}
}

// SubmitRequest is one deployment request with its artifact.
type SubmitRequest struct {
	App, Slot      string
	Artifact       io.Reader
	MaxUpload      int64
	Policy         Policy
	Message        string
	Commit         string
	Author         string
	IdempotencyKey string
	// OrderKey orders deploys by their source (a CI run number) for policy
	// newer-only; 0 when none was given.
	OrderKey int64
	// Params asks for a share of the slot's traffic in multiple revision mode.
	Params DeployParams
	// Force deploys even when the artifact and settings already serve the slot.
	Force bool
	// Image, when set, deploys a container image pulled from a registry
	// instead of Artifact. (An image archive comes as Artifact; a pushed
	// image as ImageDigest.)
	Image *ImagePull
	// ImageDigest deploys an image baton already holds (pushed to its
	// registry), by manifest digest.
	ImageDigest string
}

// ImagePull says where to pull a container image from.
type ImagePull struct {
	Ref string `json:"ref"`
	// Insecure allows a registry over plain HTTP (loopback and tests).
	Insecure bool `json:"insecure,omitempty"`
	// Username and Password log in to the registry; empty: baton's host
	// credentials (auth.json, docker config) if any.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// ArtifactImage is the ArtifactType of a container image revision.
const ArtifactImage = "image"

// IsImageDigest reports whether an artifact digest names a container
// image: images are recorded by their manifest digest "sha256:<hex>",
// archives by the bare hex of their content.
func IsImageDigest(digest string) bool {
	return strings.HasPrefix(digest, "sha256:")
}

// SubmitResult says what Submit did with a request.
type SubmitResult struct {
	// Deployment is the queued deployment; or the earlier one a repeated
	// Idempotency-Key matched; or, when Unchanged, the one that created
	// the revision that serves (Deployment.Revision).
	Deployment Deployment
	// Existing: the request repeated an Idempotency-Key, and this is the
	// answer the first one got.
	Existing bool
	// Unchanged: the artifact and the settings a new revision would carry
	// already serve the slot, and nothing queued or running would change
	// that; no deployment was recorded.
	Unchanged bool
}

// UnchangedSentence says that revision is already live in app's slot with
// the artifact and settings a deploy asked for (SubmitResult.Unchanged).
// The slot is the request's: the revision may have been created in
// another one and swapped in.
func UnchangedSentence(app, slot, revision string) string {
	return fmt.Sprintf("%s is already live in %s/%s with this artifact and these settings", revision, app, slot)
}
