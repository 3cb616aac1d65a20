// Package ociimage stores, verifies and unpacks OCI container images, and
// serves them as a registry.
//
// A Store is a directory:
//
//	blobs/sha256/<hex>   manifests, configs and layers, one file per digest
//	images/<hex>.json    what baton knows of an image, by manifest digest
//	rootfs/<hex>/        the image's flattened filesystem, unpacked once
//	tags/<repo>/<tag>    the manifest digest a registry push gave a tag
//	uploads/, tmp/       registry uploads and archives being read
//
// Images come in by Pull (a remote registry), Load (an archive from podman
// or docker save), a push to Registry, or PutBlob and Adopt (another
// controller's store). Whatever the way, an image is held only once every
// blob is on disk and matches its digest, and only if it is a linux/amd64
// image with something to run; an index gives its linux/amd64 child.
// Anything written half way (a blob, a rootfs, an upload) lives under a
// name starting with "." or in uploads/ and tmp/ until it is complete, is
// removed on failure, and Open removes what a crash left.
//
// Rootfs flattens the layers with ggcr's mutate.Extract (whiteouts) and
// writes the result through artifact.ExtractTar, so every byte reaching
// disk passes baton's archive rules: no entry outside the rootfs, nothing
// written through a link, no device nodes or fifos (refused, as artifact
// does), no setuid or setgid bits, limits on files and bytes. Modes are
// the layers' own; the owner is baton's user. mutate.Extract itself
// refuses ".." paths and silently leaves out relative links that climb
// above the root and entries under a path an upper layer made a file.
// Symlinks keep the targets the image gave them and mean what they mean
// inside the container: resolve them against the rootfs (ReadFile does),
// never by following them on the host.
//
// Blobs no held image uses (pushes never finished, an index's children
// for other platforms) stay until PruneBlobs.
package ociimage

import (
	"fmt"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
)

// Platform is the one platform baton runs.
const (
	PlatformOS   = "linux"
	PlatformArch = "amd64"
)

// Limits bound what a Store accepts. A zero field means its DefaultLimits
// value.
type Limits struct {
	// MaxLayerBytes is the compressed size of one layer.
	MaxLayerBytes int64
	// MaxImageBytes is the compressed size of all layers of an image.
	MaxImageBytes int64
	// Extract bounds unpacking a rootfs (files, uncompressed bytes).
	Extract artifact.Limits
}

// DefaultLimits returns 512 MiB a layer, 2 GiB an image, and artifact's
// default unpack limits.
func DefaultLimits() Limits {
	return Limits{MaxLayerBytes: 512 << 20, MaxImageBytes: 2 << 30, Extract: artifact.DefaultLimits()}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxLayerBytes <= 0 {
		l.MaxLayerBytes = d.MaxLayerBytes
	}
	if l.MaxImageBytes <= 0 {
		l.MaxImageBytes = d.MaxImageBytes
	}
	return l
}

// Image is what a Store knows of an image it holds.
type Image struct {
	// Digest is the image manifest's digest, "sha256:…"; for an image that
	// came as an index, its linux/amd64 child's.
	Digest string `json:"digest"`
	// ID is the config blob's digest, the same whatever format carried it.
	ID string `json:"id"`
	// Ref says where the image came from: "registry:5000/hello:v1",
	// "archive", "push APP:TAG".
	Ref string `json:"ref"`
	// Size is the total of the compressed layers.
	Size   int64  `json:"size"`
	Config Config `json:"config"`
}

// Config is the part of an image's configuration that says how to run it.
type Config struct {
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	WorkingDir   string            `json:"working_dir,omitempty"`
	User         string            `json:"user,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	OS           string            `json:"os"`
	Architecture string            `json:"architecture"`
}

// parseDigest returns the hex part of a "sha256:<64 hex>" digest.
func parseDigest(d string) (string, error) {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", baton.Errorf(baton.EINVALID, "%s is not an image or blob digest; want sha256: and 64 lowercase hex digits", quote(d))
	}
	return hex, nil
}

// short shortens a digest for messages: sha256:0123456789ab.
func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// quote quotes s for a message, shortening absurdly long ones.
func quote(s string) string {
	const max = 200
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
