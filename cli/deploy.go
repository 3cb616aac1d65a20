package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/manifest"
	"github.com/batonhq/baton/ociimage"
)

func newDeployCmd(e *env) *cobra.Command {
	var o api.DeployOptions
	var policy string
	var wait bool
	var weight int
	var timeout time.Duration
	var img baton.ImagePull
	var authFile, manifestFile string
	cmd := &cobra.Command{
		Use:   "deploy APP PATH | deploy APP --image REF",
		Short: "Deploy a folder, an archive (zip, tar.gz) or a container image to an app",
		Long: `Upload PATH (a folder is zipped on the fly; a .zip or .tar.gz is sent as is)
and queue a deployment of it. The artifact is stored on the server before the
deployment is queued, so it does not depend on this command staying connected.

Container images deploy three ways, each a revision recorded by image digest
and run with runc: --image REF pulls from a registry (--insecure-registry for
plain HTTP; credentials from --registry-auth FILE, an auth.json or docker
config.json, else the server's own); PATH may be an image archive (podman
save, docker save: OCI or docker format); or push to baton's own registry:
  podman login HOST:PORT -u baton -p TOKEN
  podman push IMAGE HOST:PORT/APP:TAG        (HOST:PORT/APP/SLOT:TAG for a slot)
An image runs its entrypoint and cmd; how baton checks and scales it comes
from --manifest FILE (a baton.toml), else a baton.toml in the image's working
directory, else its dev.baton.* labels (dev.baton.health.path=/healthz), else
the defaults.

Commit, author and message default to the working directory's git metadata,
or to CI variables (GITHUB_SHA, GITHUB_ACTOR, CI_COMMIT_SHA, ...). A folder
with uncommitted changes deploys as commit HEAD-dirty: what is uploaded is
not that commit.

With --wait the log streams until the deployment ends and the exit code is
its result. Ctrl-C stops waiting, not the deployment: the CLI says so, with
its id and the command that cancels it (exit 130).

A deploy of what is already live (the same artifact, and the slot's settings
unchanged since) records no deployment: it says so and exits 0. --force
deploys it anyway, as a new revision.

--on-conflict says what happens when the app is busy:
  queue      wait in line (default)
  fail       refuse at once (exit 5) naming the running deployment
  cancel     cancel the running and queued deployments, then run this one
  supersede  replace the queued ones, run after the current one
  newer-only go live in the order of --order-key, not of arrival: a key
             lower than the slot's live, running or queued deploy is
             refused (exit 5) naming the newer one; older queued ones are
             superseded. So a slow old pipeline never puts older code live.

--order-key defaults to the CI run number (GITHUB_RUN_NUMBER, CI_PIPELINE_IID,
BUILD_BUILDID) when one is set, and is recorded with the deployment.

` + exitCodesHelp,
		Example: `  baton deploy hello ./examples/hello --wait
  baton deploy hello build.tar.gz --on-conflict fail -m "hotfix"
  baton deploy hello ./examples/hello --force   # again, though it is live
  baton deploy hello build.tar.gz --on-conflict newer-only --order-key 42
  baton deploy hello --image registry.example.com/hello:v2 --wait
  baton deploy hello hello-image.tar --manifest baton.toml`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, path := args[0], ""
			switch {
			case len(args) == 2 && img.Ref != "":
				return baton.Errorf(baton.EINVALID, "give either PATH or --image, not both")
			case len(args) == 2:
				path = args[1]
			case img.Ref == "":
				return baton.Errorf(baton.EINVALID, "nothing to deploy: give a folder or archive (baton deploy %s ./app) or an image (baton deploy %s --image REF)", app, app)
			}
			p, err := baton.ParsePolicy(policy)
			if err != nil {
				return err
			}
			o.Policy = p
			if o.OrderKey < 0 {
				return baton.Errorf(baton.EINVALID, "--order-key %d must be a positive whole number, such as the CI run number", o.OrderKey)
			}
			if cmd.Flags().Changed("weight") {
				o.Weight = &weight
			}
			if manifestFile != "" {
				if o.Manifest, err = readManifest(manifestFile); err != nil {
					return err
				}
			}
			var body io.Reader
			if img.Ref != "" {
				if err := imageCredentials(&img, authFile); err != nil {
					return err
				}
				o.Image = &img
				if o.Message == "" {
					o.Message = "image " + img.Ref
				}
			} else {
				fillProvenance(&o, path)
				var cleanup func()
				if body, o.ContentType, cleanup, err = openArtifact(path); err != nil {
					return err
				}
				defer cleanup()
			}
			ctx := cmd.Context()
			res, err := e.client().Deploy(ctx, app, body, o)
			if err != nil {
				return err
			}
			d := res.Deployment
			if res.Unchanged {
				if e.asJSON {
					return e.printJSON(res)
				}
				fmt.Fprintf(e.stdout, "%s; nothing to do (use --force to deploy it again)\n", baton.UnchangedSentence(app, o.Slot, d.Revision))
				return nil
			}
			if !wait {
				if e.asJSON {
					return e.printJSON(d)
				}
				fmt.Fprintf(e.stdout, "deployment %s %s; follow it with: baton logs -f %s\n", d.ID, d.State, d.ID)
				return nil
			}
			fmt.Fprintf(e.stderr, "deployment %s queued for %s/%s\n", d.ID, d.App, d.Slot)
			return follow(ctx, e, d.ID, timeout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Slot, "slot", baton.ProductionSlot, "slot to deploy to")
	f.StringVarP(&o.Message, "message", "m", "", "deployment message (default: the last commit's subject)")
	f.StringVar(&o.Commit, "commit", "", "commit id (default: git HEAD or the CI's commit variable)")
	f.StringVar(&o.Author, "author", "", "author (default: git author or the CI's actor variable)")
	f.StringVar(&o.IdempotencyKey, "idempotency-key", "", "repeat-safe key: the same key with the same request within 24h returns the first deployment; with another artifact, slot or options it is refused (422). In CI: \"$CI_PIPELINE_ID-$CI_JOB_NAME\" or \"$GITHUB_RUN_ID-$GITHUB_JOB\"")
	f.StringVar(&policy, "on-conflict", string(baton.PolicyQueue), baton.PolicyChoices())
	f.Int64Var(&o.OrderKey, "order-key", 0, "orders deploys by source for --on-conflict newer-only (default: the CI run number, if any)")
	f.BoolVar(&o.Force, "force", false, "deploy even if this artifact and the slot's settings are already live")
	f.IntVar(&weight, "weight", 0, "multiple revision mode: traffic percent for the new revision (default 0, or 100 when nothing has traffic)")
	f.BoolVar(&wait, "wait", false, "follow the deployment's phases and log; exit with its result")
	f.DurationVar(&timeout, "timeout", 0, "with --wait, give up waiting after this long (exit 6); 0 waits forever")
	f.StringVar(&img.Ref, "image", "", "deploy a container image pulled from a registry, e.g. registry.example.com/hello:v2")
	f.BoolVar(&img.Insecure, "insecure-registry", false, "with --image, allow a registry over plain HTTP (loopback or test registries)")
	f.StringVar(&authFile, "registry-auth", "", "with --image, log in with the credentials for its registry in this auth.json or docker config.json")
	f.StringVar(&manifestFile, "manifest", "", "for a container image: a baton.toml (health, instances, release, resources) that wins over the image's own")
	addJSON(cmd, e)
	return cmd
}

// openArtifact returns the body to upload: a folder is zipped to a temp
// file first (so the upload has a known size and can be read once).
func openArtifact(path string) (io.Reader, string, func(), error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("cannot read %s: %w; give a folder, a .zip or a .tar.gz", path, err)
	}
	if st.IsDir() {
		tmp, err := os.CreateTemp("", "baton-artifact-*.zip")
		if err != nil {
			return nil, "", nil, err
		}
		cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
		if err := artifact.Pack(path, tmp); err != nil {
			cleanup()
			return nil, "", nil, fmt.Errorf("zip %s: %w", path, err)
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			cleanup()
			return nil, "", nil, err
		}
		return tmp, "application/zip", cleanup, nil
	}
	ct := "application/x-tar"
	if _, isImage := ociimage.ArchiveKind(path); !isImage {
		kind, err := artifact.DetectType(path)
		if err != nil {
			return nil, "", nil, fmt.Errorf("%s: %v; give a folder, a .zip, a .tar.gz or a container image archive (podman save)", path, baton.ErrorMessage(err))
		}
		ct = "application/zip"
		if kind == "tar.gz" {
			ct = "application/gzip"
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", nil, err
	}
	return f, ct, func() { f.Close() }, nil
}

// readManifest reads and checks a baton.toml given with --manifest.
func readManifest(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--manifest: %w", err)
	}
	if _, err := manifest.ParseImage(data); err != nil {
		return "", fmt.Errorf("--manifest %s: %s", path, baton.ErrorMessage(err))
	}
	return string(data), nil
}

// imageCredentials fills the registry login of an image pull from an
// auth file (--registry-auth): podman's auth.json or docker's
// config.json, read by go-containerregistry's keychain.
func imageCredentials(img *baton.ImagePull, authFile string) error {
	if authFile == "" {
		return nil
	}
	user, pass, err := registryCredentials(img.Ref, authFile)
	if err != nil {
		return fmt.Errorf("--registry-auth %s: %w", authFile, err)
	}
	if user == "" && pass == "" {
		return baton.Errorf(baton.EINVALID, "--registry-auth %s has no credentials for the registry of %s; log in with podman login --authfile %s REGISTRY", authFile, img.Ref, authFile)
	}
	img.Username, img.Password = user, pass
	return nil
}

// dirtySuffix marks a commit id taken from git HEAD when the deployed
// folder had uncommitted changes: what was deployed is not that commit.
const dirtySuffix = "-dirty"

// fillProvenance fills commit, author and message from CI variables or git.
// A commit taken from a working tree with uncommitted changes (in the
// deployed folder, or under the working directory for an archive) is
// marked HEAD-dirty.
func fillProvenance(o *api.DeployOptions, path string) {
	firstEnv := func(names ...string) string {
		for _, n := range names {
			if v := os.Getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	if o.Commit == "" {
		o.Commit = firstEnv("GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_SOURCEVERSION", "GIT_COMMIT")
	}
	if o.Author == "" {
		o.Author = firstEnv("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_REQUESTEDFOR", "USER")
	}
	if o.Message == "" {
		o.Message = firstEnv("CI_COMMIT_TITLE", "BUILD_SOURCEVERSIONMESSAGE")
	}
	if o.OrderKey == 0 {
		// A run number that is not a number is left out, not an error:
		// the deploy does not depend on it unless newer-only asks.
		o.OrderKey, _ = baton.ParseOrderKey(firstEnv("GITHUB_RUN_NUMBER", "CI_PIPELINE_IID", "BUILD_BUILDID"))
	}
	dir := path
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		dir = "."
	}
	git := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	if o.Commit == "" {
		if o.Commit = git("rev-parse", "HEAD"); o.Commit != "" && git("status", "--porcelain", "--", ".") != "" {
			// What is uploaded is the working tree, not HEAD: say so.
			o.Commit += dirtySuffix
		}
	}
	head := strings.TrimSuffix(o.Commit, dirtySuffix)
	if o.Commit != "" && o.Message == "" {
		o.Message = git("log", "-1", "--format=%s", head)
	}
	if o.Commit != "" && os.Getenv("GITHUB_ACTOR") == "" && os.Getenv("GITLAB_USER_LOGIN") == "" {
		if a := git("log", "-1", "--format=%an", head); a != "" {
			o.Author = a
		}
	}
}

// follow streams a deployment's log until it ends and turns its final
// state into the exit code.
func follow(ctx context.Context, e *env, id string, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	out := bufio.NewWriter(e.stdout)
	next := ""
	d, err := e.client().Follow(ctx, id, func(ev api.Event) {
		if ev.Name == "log" {
			fmt.Fprintln(out, ev.Data)
			out.Flush()
			if i := strings.Index(ev.Data, baton.AutoSwapPrefix); i >= 0 {
				next = strings.TrimSpace(ev.Data[i+len(baton.AutoSwapPrefix):])
			}
		}
	})
	out.Flush()
	if err == nil && d.State == baton.StateSucceeded && next != "" {
		fmt.Fprintf(e.stderr, "following the auto-swap %s\n", next)
		return follow(ctx, e, next, timeout)
	}
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return &exitError{ExitTimeout, fmt.Errorf("gave up waiting for %s %s after %s; it goes on: baton logs -f %s", noun(d.Kind), id, timeout, id)}
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return interrupted(e, id, d.Kind)
		}
		return err
	}
	return resultError(d)
}
