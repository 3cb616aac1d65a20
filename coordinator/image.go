package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/manifest"
	"github.com/batonhq/baton/ociimage"
	"github.com/batonhq/baton/supervisor"
)

// This file runs container images as revisions. An image revision's folder
// holds no app files: image.json says which image it runs (its digest and
// config), and baton.toml, when the deploy or the image gave one, how. Its
// instances run from the image's root filesystem, unpacked once per digest
// in the image store and shared read-only by every instance and revision
// of that image.

// imageRecordFile is the image revision's image.json.
const imageRecordFile = "image.json"

// imageRecord is what an image revision runs.
type imageRecord struct {
	Digest string          `json:"digest"`
	Ref    string          `json:"ref,omitempty"`
	Config ociimage.Config `json:"config"`
}

// acceptImage returns the digest of the image a request deploys: pulled
// from a registry (req.Image), pushed to baton's registry before
// (req.ImageDigest) or loaded from an image archive stored as the
// artifact at archive ("" for none). source says where it came from.
func (c *Coordinator) acceptImage(ctx context.Context, req baton.SubmitRequest, archive string) (img ociimage.Image, source string, err error) {
	if c.cfg.Images == nil {
		return img, "", baton.Errorf(baton.EUNAVAILABLE, "this baton runs no container images (it was started without an image store)")
	}
	switch {
	case req.Image != nil:
		img, err = c.cfg.Images.Pull(ctx, req.Image.Ref, ociimage.PullOptions{
			Insecure: req.Image.Insecure, Username: req.Image.Username, Password: req.Image.Password})
		source = req.Image.Ref
	case req.ImageDigest != "":
		img, err = c.cfg.Images.Image(req.ImageDigest)
		source = req.Params.Image
	default:
		img, err = c.cfg.Images.Load(ctx, archive)
		source = "archive"
	}
	if err != nil {
		return img, "", err
	}
	if c.cfg.Blobs != nil {
		// The app's controller may be another one: share the image.
		if err := c.shareImage(ctx, img.Digest); err != nil {
			return img, "", err
		}
	}
	return img, source, nil
}

// shareImage copies an image's blobs into the shared store.
func (c *Coordinator) shareImage(ctx context.Context, digest string) error {
	blobs, err := c.cfg.Images.BlobDigests(digest)
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if err := c.shareBlob(ctx, b); err != nil {
			return fmt.Errorf("share image blob %s: %w", short(b), err)
		}
	}
	return nil
}

func (c *Coordinator) shareBlob(ctx context.Context, digest string) error {
	r, err := c.cfg.Images.OpenBlob(digest)
	if err != nil {
		return err
	}
	defer r.Close()
	return c.cfg.Blobs.PutArtifact(ctx, digest, r)
}

// localImage makes sure an image is in this controller's image store,
// fetching its blobs from the shared store when another controller
// accepted it.
func (c *Coordinator) localImage(ctx context.Context, digest string) error {
	if c.cfg.Images == nil {
		return baton.Errorf(baton.EUNAVAILABLE, "this baton runs no container images (it was started without an image store)")
	}
	if _, err := c.cfg.Images.Image(digest); err == nil {
		return nil
	}
	if c.cfg.Blobs == nil {
		return baton.Errorf(baton.ENOTFOUND, "image %s is missing from this controller", digest)
	}
	// The manifest first: it names the other blobs (for an index, the
	// child manifest first, then its blobs).
	if err := c.fetchBlob(ctx, digest); err != nil {
		return err
	}
	for round := 0; ; round++ {
		missing, err := c.cfg.Images.MissingBlobs(digest)
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			break
		}
		if round == 2 { // manifest, (index child,) blobs: no more rounds
			return fmt.Errorf("image %s: blobs still missing after fetching them from the shared store: %v", short(digest), missing)
		}
		for _, b := range missing {
			if err := c.fetchBlob(ctx, b); err != nil {
				return err
			}
		}
	}
	_, err := c.cfg.Images.Adopt(digest, "")
	return err
}

func (c *Coordinator) fetchBlob(ctx context.Context, digest string) error {
	return c.fromShared(ctx, digest, func(r io.Reader) error { return c.cfg.Images.PutBlob(digest, r) })
}

// prepareImage makes dir the folder of an image revision: the image
// unpacked in the image store, image.json, and the baton.toml that the
// deploy gave (manifest) or, failing that, the image's own one in its
// working directory.
func (c *Coordinator) prepareImage(ctx context.Context, digest, ref, manifestTOML, dir string) error {
	if err := c.localImage(ctx, digest); err != nil {
		return err
	}
	img, err := c.cfg.Images.Image(digest)
	if err != nil {
		return err
	}
	if _, err := c.cfg.Images.Rootfs(ctx, digest); err != nil {
		return err
	}
	if ref == "" {
		ref = img.Ref
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rec, err := json.MarshalIndent(imageRecord{Digest: digest, Ref: ref, Config: img.Config}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, imageRecordFile), rec, 0o644); err != nil {
		return err
	}
	data := []byte(manifestTOML)
	if manifestTOML == "" {
		wd := img.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		data, err = c.cfg.Images.ReadFile(ctx, digest, path.Join(wd, manifest.TOMLFile))
		if baton.ErrorCode(err) == baton.ENOTFOUND || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the image's %s: %w", manifest.TOMLFile, err)
		}
	}
	if _, err := manifest.ParseImage(data); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, manifest.TOMLFile), data, 0o644)
}

// readImageRecord reads an image revision's image.json; ok is false for
// a revision of an archive.
func readImageRecord(dir string) (rec imageRecord, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, imageRecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, false, fmt.Errorf("%s of %s: %w", imageRecordFile, dir, err)
	}
	return rec, true, nil
}

// loadManifest reads a revision's manifest from its folder (see
// loadRevision).
func loadManifest(dir string) (baton.Manifest, error) {
	m, _, err := loadRevision(dir)
	return m, err
}

// loadRevision reads a revision's manifest from its folder, and for an
// image revision its image.json (nil for an archive's). An image's
// manifest is the baton.toml given with it, else its dev.baton.* labels,
// else the defaults (run the image's entrypoint, health check at /).
func loadRevision(dir string) (baton.Manifest, *imageRecord, error) {
	rec, isImage, err := readImageRecord(dir)
	if err != nil {
		return baton.Manifest{}, nil, err
	}
	if !isImage {
		m, err := manifest.Load(dir)
		return m, nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, manifest.TOMLFile))
	if err == nil {
		m, err := manifest.ParseImage(data)
		return m, &rec, err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return baton.Manifest{}, nil, err
	}
	if m, found, err := manifest.FromLabels(rec.Config.Labels); found || err != nil {
		return m, &rec, err
	}
	m := baton.Manifest{Source: "image defaults"}
	return m.WithDefaults(), &rec, nil
}

// container is how the supervisor runs a command of an image revision:
// the manifest's command through the image's shell when given (split on
// spaces when the image has no /bin/sh), else the image's entrypoint and
// cmd; the image's environment under baton's. Nil for an archive's
// revision (rec nil): it runs as a plain process.
func (c *Coordinator) container(ctx context.Context, rec *imageRecord, command string, m baton.Manifest) (*supervisor.Container, error) {
	if rec == nil {
		return nil, nil
	}
	rootfs, err := c.cfg.Images.Rootfs(ctx, rec.Digest)
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, rec.Config.Entrypoint...), rec.Config.Cmd...)
	if command != "" {
		if imageHasShell(rootfs) {
			args = []string{"/bin/sh", "-c", command}
		} else {
			args = strings.Fields(command)
		}
	}
	if len(args) == 0 {
		return nil, baton.Errorf(baton.EUNPROCESSABLE, "image %s has no entrypoint or cmd and the manifest names no [run] command: nothing to run", short(rec.Digest))
	}
	return &supervisor.Container{
		Rootfs:      rootfs,
		Args:        args,
		Cwd:         rec.Config.WorkingDir,
		User:        rec.Config.User,
		Env:         rec.Config.Env,
		MemoryBytes: m.Resources.MemoryBytes,
		CPUs:        m.Resources.CPUs,
	}, nil
}

// imageHasShell reports whether the image unpacked at rootfs has a
// /bin/sh, resolving symbolic links as they resolve inside the container:
// an absolute link such as Alpine's /bin/sh -> /bin/busybox names the
// image's file, not the host's.
func imageHasShell(rootfs string) bool {
	sh, err := securejoin.SecureJoin(filepath.Clean(rootfs), "/bin/sh")
	if err != nil {
		return false
	}
	fi, err := os.Stat(sh)
	return err == nil && fi.Mode().IsRegular()
}

// containerEnv drops what instanceEnv gives a host process that makes no
// sense inside a container (PATH and HOME are the image's).
func containerEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
