package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/bench/internal/harness"
	"github.com/batonhq/baton/internal/testimage"
)

// This file is deployload -images: the deploy of a container image beside
// the same app as an archive, with no load. Each round deploys
//
//	cold:    a new ~20 MB image (a static example app plus incompressible
//	         assets) pulled from a registry on loopback: pull, verify,
//	         unpack, start under runc, health check;
//	warm:    the same image again (-force): nothing to pull or unpack;
//	archive: the same files as a zip, run as plain processes.
//
// and splits each into baton's overhead and the app's start (phases
// starting + health-checking), as the load run does.

// imageAssets is the incompressible part of the bench image.
const imageAssets = 12 << 20

func runImages(ctx context.Context, o options) int {
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, fmt.Errorf("the run took longer than -timeout %s", o.timeout))
	defer cancel()
	static, err := testimage.StaticBinary("./" + strings.TrimPrefix(o.example, "./"))
	if err != nil {
		return fail(err)
	}
	assets := make([]byte, imageAssets)
	if _, err := rand.Read(assets); err != nil {
		return fail(err)
	}
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	regAddr := strings.TrimPrefix(reg.URL, "http://")

	b, stopBaton, err := harness.StartAnnounced(ctx, harness.Config{Bin: o.baton}, "deployload", o.keep)
	if err != nil {
		return fail(err)
	}
	defer stopBaton()
	c := b.Client(2)
	for _, app := range []string{"img", "zip"} {
		if _, err := c.CreateApp(ctx, app); err != nil {
			return fail(err)
		}
	}
	splits := map[string][]split{}
	var imageSize int64
	for i := range o.images {
		v := fmt.Sprintf("v%d", i+1)
		img, size, err := benchImage(static, assets, v)
		if err != nil {
			return fail(err)
		}
		imageSize = size
		ref := regAddr + "/img:" + v
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			return fail(err)
		}
		if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
			return fail(fmt.Errorf("push %s: %w", ref, err))
		}
		step("round %d of %d: cold image, warm image, archive", i+1, o.images)
		for _, kind := range []string{"cold image", "warm image", "archive"} {
			opt := api.DeployOptions{Message: "deployload -images " + v}
			app := "img"
			var body io.Reader
			switch kind {
			case "cold image":
				opt.Image = &baton.ImagePull{Ref: ref, Insecure: true}
			case "warm image":
				opt.Image, opt.Force = &baton.ImagePull{Ref: ref, Insecure: true}, true
			case "archive":
				app, opt.ContentType = "zip", "application/zip"
				z, err := benchZip(static, assets, v)
				if err != nil {
					return fail(err)
				}
				body = bytes.NewReader(z)
			}
			s, err := timedDeploy(ctx, c, app, body, opt)
			if err != nil {
				b.Keep = true
				return fail(fmt.Errorf("%s %s: %w", kind, v, err))
			}
			splits[kind] = append(splits[kind], s)
		}
	}
	md := imagesMarkdown(o, splits, imageSize)
	if err := harness.WriteReport(md, o.out); err != nil {
		return fail(err)
	}
	return 0
}

// timedDeploy deploys and splits the deployment's time by its phases.
func timedDeploy(ctx context.Context, c *api.Client, app string, body io.Reader, opt api.DeployOptions) (split, error) {
	o := &op{t0: time.Now()}
	res, err := c.Deploy(ctx, app, body, opt)
	if err != nil {
		return split{}, err
	}
	d, err := c.Follow(ctx, res.Deployment.ID, func(api.Event) {})
	if err != nil {
		return split{}, err
	}
	o.t2, o.d = time.Now(), d
	text, err := c.Log(ctx, d.ID)
	if err != nil {
		return split{}, err
	}
	if d.State != baton.StateSucceeded {
		return split{}, fmt.Errorf("%s ended %s: %s\n%s", d.ID, d.State, d.Error, text)
	}
	if o.phases, o.serves, err = parseLog(text); err != nil {
		return split{}, err
	}
	return splitOf(o)
}

const benchManifest = `[run]
command = "./hello"
instances = 2
[health]
path = "/healthz"
interval = "50ms"
`

// benchImage is the app at version v with its assets as an image, and
// its compressed size.
func benchImage(static, assets []byte, v string) (v1.Image, int64, error) {
	layer, err := testimage.Layer(testimage.File{Name: "app/", Mode: 0o755}, testimage.File{Name: "app/hello", Mode: 0o755, Body: static},
		testimage.File{Name: "app/assets.bin", Mode: 0o644, Body: assets}, testimage.File{Name: "app/version.txt", Mode: 0o644, Body: []byte(v + "\n")},
		testimage.File{Name: "app/baton.toml", Mode: 0o644, Body: []byte(strings.Replace(benchManifest, `"./hello"`, `"/app/hello"`, 1))})
	if err != nil {
		return nil, 0, err
	}
	img, err := testimage.Image(v1.Config{Entrypoint: []string{"/app/hello"}, WorkingDir: "/app"}, layer)
	if err != nil {
		return nil, 0, err
	}
	size, err := layer.Size()
	return img, size, err
}

// benchZip is the same app as a zip archive.
func benchZip(static, assets []byte, v string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "deployload-zip-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for n, body := range map[string][]byte{"hello": static, "assets.bin": assets, "version.txt": []byte(v + "\n"), "baton.toml": []byte(benchManifest)} {
		if err := os.WriteFile(filepath.Join(dir, n), body, 0o755); err != nil {
			return nil, err
		}
	}
	ex, err := harness.NewExample(dir, filepath.Join(dir, "hello"), benchManifest)
	if err != nil {
		return nil, err
	}
	return ex.Zip(v)
}

func imagesMarkdown(o options, splits map[string][]split, imageSize int64) string {
	var w strings.Builder
	fmt.Fprintf(&w, "# deployload -images: a container image beside the same app as an archive\n\n")
	fmt.Fprintf(&w, "`deployload -images %d` on %s: %s. The app: examples/hello built static plus %s of incompressible assets (image layer %s compressed), 2 instances, health check every 50 ms. Each round: a **cold** image deploy (a new image pulled from a registry on loopback: pull, verify, unpack, start under runc), a **warm** redeploy of the same digest (`--force`: nothing pulled or unpacked), and the same files as a zip **archive** (run as plain processes). No load.\n\n",
		o.images, time.Now().UTC().Format("2006-01-02"), harness.LoadAvg(), baton.FormatSize(imageAssets), baton.FormatSize(imageSize))
	fmt.Fprintf(&w, "| ms, p50 of %d | request → queued (upload or pull) | extracting (unpack) | app: starting + health | switching + draining + bookkeeping | **total** | **baton's overhead** (total − app) |\n|---|---|---|---|---|---|---|\n", o.images)
	for _, kind := range []string{"cold image", "warm image", "archive"} {
		ss := splits[kind]
		p50 := func(get func(split) time.Duration) string {
			ds := make([]time.Duration, 0, len(ss))
			for _, s := range ss {
				ds = append(ds, get(s))
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			return harness.Ms(harness.Percentile(ds, 0.5))
		}
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s | %s |\n", kind,
			p50(func(s split) time.Duration { return s.upload }),
			p50(func(s split) time.Duration { return s.extract }),
			p50(func(s split) time.Duration { return s.app }),
			p50(func(s split) time.Duration { return s.switching + s.drain + s.queue + s.other + s.notice }),
			p50(func(s split) time.Duration { return s.total }),
			p50(func(s split) time.Duration { return s.overhead }))
	}
	return w.String()
}
