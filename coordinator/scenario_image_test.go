package coordinator_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestScenarioImagePullPushAndSwap: an image pulled from a registry by
// reference deploys and serves, and status names its digest and ref; a
// push into baton's registry deploys production and, pushed to
// APP/SLOT, a slot (whose image brings its own baton.toml); a swap then
// moves the staged image into production. Under load, no request fails
// throughout.
func TestScenarioImagePullPushAndSwap(t *testing.T) {
	t.Parallel()
	b := startImageBaton(t)
	b.createApp("ip", "staging")
	reg := imageRegistry(t)
	v1img := exampleImage(t, "v1", nil)
	mustPushImage(t, reg+"/hello:v1", v1img)

	d := b.deployImage("ip", reg+"/hello:v1", api.DeployOptions{})
	b.serves(host("ip", ""), "v1")
	b.checkImage("ip", "production", d.Revision, imageDigest(t, v1img), reg+"/hello:v1", 1)
	if a := b.ask(host("ip", "")); a.Revision != d.Revision || a.Settings["GREETING"] != "from-the-image" {
		t.Fatalf("production answers %+v, want %s with the image's GREETING", a, d.Revision)
	}
	if n := len(b.runcContainers()); n != 1 {
		t.Fatalf("runc lists %d containers, want v1's 1", n)
	}

	load := b.startLoad(host("ip", ""), 4)
	eventually(t, 10*time.Second, "load sees v1", func() bool { return load.count("v1") > 20 })

	v2img := exampleImage(t, "v2", nil)
	d2 := b.succeed(b.pushToBaton("ip", "v2", v2img).ID)
	eventually(t, 10*time.Second, "load sees v2", func() bool { return load.count("v2") > 20 })
	b.checkImage("ip", "production", d2.Revision, imageDigest(t, v2img), "push ip:v2", 1)

	// The staged image's own baton.toml asks for 2 instances.
	v3img := exampleImage(t, "v3", map[string]string{"baton.toml": "[run]\ninstances = 2\n[health]\npath = \"/healthz\"\ninterval = \"50ms\"\n"})
	d3 := b.succeed(b.pushToBaton("ip/staging", "v3", v3img).ID)
	if d3.Slot != "staging" {
		t.Fatalf("a push to ip/staging deployed slot %q", d3.Slot)
	}
	b.serves(host("ip", "staging"), "v3")
	b.checkImage("ip", "staging", d3.Revision, imageDigest(t, v3img), "push ip/staging:v3", 2)
	eventually(t, 10*time.Second, "3 containers: v2's and v3's", func() bool { return len(b.runcContainers()) == 3 })

	sw, err := b.c.Swap(context.Background(), "ip", "staging", "production", false, "")
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(sw.ID)
	eventually(t, 10*time.Second, "load sees v3 after the swap", func() bool { return load.count("v3") > 20 })
	versions := load.finishClean(t, "while images went live and swapped")
	if versions["v1"] == 0 || versions["v2"] == 0 || versions["v3"] == 0 {
		t.Fatalf("requests per version %v: want all of v1, v2, v3", versions)
	}
	b.serves(host("ip", ""), "v3")
	b.serves(host("ip", "staging"), "v2")
	if got := b.routing("ip"); len(got) != 2 || got[d3.Revision] != 100 || got[d2.Revision] != 100 {
		t.Fatalf("routing after the swap: %v, want %s and %s at 100", got, d3.Revision, d2.Revision)
	}
	b.noLocks()
}

// TestScenarioImageSettingsAndRestart: an image deployed with a manifest
// (a [run] command, 2 instances) serves again after a restart of baton,
// whose containers from before are gone or adopted; with the revision's
// folder gone, baton prepares the image again and serves it as deployed;
// a settings change then restarts it as a new revision whose containers
// see the setting beside the image's environment, with the same manifest,
// also once its folder is gone; so does a rollback to the deployed
// revision with the current settings.
func TestScenarioImageSettingsAndRestart(t *testing.T) {
	t.Parallel()
	b := startImageBaton(t)
	ctx := context.Background()
	b.createApp("ir")
	reg := imageRegistry(t)
	img := exampleImage(t, "v1", nil)
	mustPushImage(t, reg+"/ir:v1", img)
	digest := imageDigest(t, img)

	mf := "[run]\ncommand = \"/app/hello\"\ninstances = 2\n[health]\npath = \"/healthz\"\ninterval = \"50ms\"\n"
	d := b.deployImage("ir", reg+"/ir:v1", api.DeployOptions{Manifest: mf})
	b.checkImage("ir", "production", d.Revision, digest, reg+"/ir:v1", 2)
	var before map[string]int
	eventually(t, 10*time.Second, "2 containers", func() bool {
		before = b.runcContainers()
		return len(before) == 2
	})

	b.restart()
	b.waitImageServes("ir", d.Revision, 2)
	after := b.runcContainers()
	for id, pid := range before {
		if _, adopted := after[id]; adopted && after[id] == pid {
			continue
		}
		if st := procState(pid); st != "" && st != "Z" {
			t.Errorf("container %s (pid %d) of before the restart runs on (state %s), but baton lists %v", id, pid, st, after)
		}
	}

	// The folder gone: the image is prepared again, with the manifest the
	// deploy gave (2 instances; the image's labels say 1).
	revDir := b.revisionDir("ir", d.Revision)
	b.restartWithout(revDir)
	b.waitImageServes("ir", d.Revision, 2)
	b.checkImage("ir", "production", d.Revision, digest, reg+"/ir:v1", 2)
	for _, f := range []string{"image.json", "baton.toml"} {
		if _, err := os.Stat(filepath.Join(revDir, f)); err != nil {
			t.Errorf("the restored folder has no %s: %v", f, err)
		}
	}

	set, err := b.c.SetSettings(ctx, "ir", "production", []baton.Setting{{Key: "FEATURE", Value: "on"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	set = b.succeed(set.ID)
	if set.Revision == "" || set.Revision == d.Revision {
		t.Fatalf("the settings change ran revision %q, want a new one after %s", set.Revision, d.Revision)
	}
	a := b.serves(host("ir", ""), "v1")
	if a.Revision != set.Revision || a.Settings["FEATURE"] != "on" || a.Settings["GREETING"] != "from-the-image" {
		t.Fatalf("after the settings change production answers %+v, want %s with FEATURE=on and the image's GREETING", a, set.Revision)
	}
	b.checkImage("ir", "production", set.Revision, digest, reg+"/ir:v1", 2)
	eventually(t, 10*time.Second, "only the new revision's 2 containers run", func() bool { return len(b.runcContainers()) == 2 })

	// The settings change's revision, its folder gone, is prepared again
	// with the manifest of the deploy that brought its code (found through
	// its source revision): 2 instances and the [run] command, not the
	// image's labels and entrypoint.
	setDir := b.revisionDir("ir", set.Revision)
	b.restartWithout(setDir)
	b.waitImageServes("ir", set.Revision, 2)
	b.checkImage("ir", "production", set.Revision, digest, reg+"/ir:v1", 2)
	if m, err := os.ReadFile(filepath.Join(setDir, "baton.toml")); err != nil || string(m) != mf {
		t.Fatalf("the settings change's restored folder has baton.toml %q (%v), want the deploy's %q", m, err, mf)
	}

	// A rollback to the deployed revision with the slot's current settings
	// makes a new revision from the image, again with the deploy's manifest.
	rb, err := b.c.Rollback(ctx, "ir", "production", baton.RollbackParams{To: d.Revision, CurrentSettings: true}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	rb = b.succeed(rb.ID)
	if rb.Revision == d.Revision || rb.Revision == set.Revision {
		t.Fatalf("rollback with the current settings ran %s, want a new revision", rb.Revision)
	}
	a = b.serves(host("ir", ""), "v1")
	if a.Revision != rb.Revision || a.Settings["FEATURE"] != "on" {
		t.Fatalf("after the rollback production answers %+v, want %s with FEATURE=on", a, rb.Revision)
	}
	b.checkImage("ir", "production", rb.Revision, digest, reg+"/ir:v1", 2)
	if m, err := os.ReadFile(filepath.Join(b.revisionDir("ir", rb.Revision), "baton.toml")); err != nil || string(m) != mf {
		t.Fatalf("the rollback's revision has baton.toml %q (%v), want the deploy's %q", m, err, mf)
	}
	b.noLocks()
}

// TestScenarioImageRefused: an image that cannot be had (an unknown tag,
// a registry that refuses without or with wrong credentials, a registry
// that does not answer) or has nothing to run, a manifest that does not
// parse, a push to an unknown app or without a token are refused at once
// with a sentence that says why, queue nothing and hold nothing; an image
// whose own baton.toml is broken fails its deployment and leaves nothing.
// Production serves on throughout; with the right credentials the private
// image deploys.
func TestScenarioImageRefused(t *testing.T) {
	t.Parallel()
	b := startImageBaton(t)
	ctx := context.Background()
	b.createApp("bad")
	reg := imageRegistry(t)
	private := imageRegistry(t, "ci", "s3cret")
	mustPushImage(t, reg+"/bad:v1", exampleImage(t, "v1", nil))
	mustPushImage(t, private+"/bad:v2", exampleImage(t, "v2", nil), remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"}))
	mustPushImage(t, reg+"/bad:idle", idleImage(t, "v0"))
	b.deployImage("bad", reg+"/bad:v1", api.DeployOptions{})
	b.serves(host("bad", ""), "v1")
	before := len(b.history("bad"))

	for _, bad := range []struct {
		what       string
		pull       baton.ImagePull
		code, want string
	}{
		{"an unknown tag", baton.ImagePull{Ref: reg + "/bad:nope"}, baton.ENOTFOUND, "has no image " + reg + "/bad:nope"},
		{"an unknown repository", baton.ImagePull{Ref: reg + "/nothing:v1"}, baton.ENOTFOUND, "has no image " + reg + "/nothing:v1"},
		{"a private registry, no credentials", baton.ImagePull{Ref: private + "/bad:v2"}, baton.EUNAUTHORIZED, "refused access"},
		{"a private registry, a wrong password", baton.ImagePull{Ref: private + "/bad:v2", Username: "ci", Password: "wrong"}, baton.EUNAUTHORIZED, "refused access"},
		{"a registry that does not answer", baton.ImagePull{Ref: closedRegistryAddr(t) + "/bad:v1"}, baton.EUNAVAILABLE, "cannot be reached"},
		{"not a reference", baton.ImagePull{Ref: "Not A Ref"}, baton.EINVALID, "is not an image reference"},
		{"an image with nothing to run", baton.ImagePull{Ref: reg + "/bad:idle"}, baton.EUNPROCESSABLE, "would not know what to run"},
	} {
		bad.pull.Insecure = true
		_, err := b.c.Deploy(ctx, "bad", nil, api.DeployOptions{Image: &bad.pull})
		if baton.ErrorCode(err) != bad.code || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("deploy of %s (%s): %v, want %s saying %q", bad.what, bad.pull.Ref, err, bad.code, bad.want)
		}
	}
	_, err := b.c.Deploy(ctx, "bad", nil, api.DeployOptions{Image: &baton.ImagePull{Ref: reg + "/bad:v1", Insecure: true}, Manifest: "[run\n"})
	if err == nil || !strings.Contains(err.Error(), "baton.toml line 1") {
		t.Errorf("deploy with a manifest that does not parse: %v, want a refusal naming the line", err)
	}
	if err := pushImage(b.srv.APIAddr()+"/nosuch:v1", exampleImage(t, "v1", nil), remote.WithAuth(&authn.Basic{Username: "baton", Password: b.token})); err == nil || !strings.Contains(err.Error(), `app "nosuch" does not exist`) {
		t.Errorf("push to an unknown app: %v, want a refusal naming it", err)
	}
	// A refusal of a HEAD has no body: the client shows only the status.
	if err := pushImage(b.srv.APIAddr()+"/bad:v9", exampleImage(t, "v1", nil)); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("push without a token: %v, want 401", err)
	}
	if after := len(b.history("bad")); after != before {
		t.Fatalf("refused deploys queued something: %d deployments, then %d", before, after)
	}
	b.noLocks()
	b.serves(host("bad", ""), "v1")

	b.deployImage("bad", private+"/bad:v2", api.DeployOptions{Image: &baton.ImagePull{Username: "ci", Password: "s3cret"}})
	b.serves(host("bad", ""), "v2")

	// Its baton.toml is read only once the deployment unpacks the image.
	mustPushImage(t, reg+"/bad:v3", exampleImage(t, "v3", map[string]string{"baton.toml": "[run]\ninstances = \"many\"\n"}))
	res, err := b.c.Deploy(ctx, "bad", nil, api.DeployOptions{Image: &baton.ImagePull{Ref: reg + "/bad:v3", Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	d := b.waitFinal(res.Deployment.ID)
	if d.State != baton.StateFailed || !strings.Contains(d.Error, "instances must be a whole number") {
		t.Errorf("deploy of an image whose baton.toml is broken: %s %q, want failed saying why", d.State, d.Error)
	}
	b.assertClean(d)
	b.serves(host("bad", ""), "v2")
	eventually(t, 10*time.Second, "v2's container alone", func() bool { return len(b.runcContainers()) == 1 })
}

// TestScenarioImageArchiveAndLostImage: an image archive (docker save's
// format) uploaded as the artifact deploys an image without labels or
// baton.toml, run with baton's defaults; once the revision's folder and
// the image store are both gone, baton cannot start it again and says so
// in status, and a new deployment replaces it.
func TestScenarioImageArchiveAndLostImage(t *testing.T) {
	t.Parallel()
	b := startImageBaton(t)
	ctx := context.Background()
	b.createApp("ia")
	img := plainExampleImage(t, "v1")
	tag, err := name.NewTag("hello:v1")
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if err := tarball.Write(tag, img, &archive); err != nil {
		t.Fatal(err)
	}
	res, err := b.c.Deploy(ctx, "ia", &archive, api.DeployOptions{ContentType: "application/x-tar"})
	if err != nil {
		t.Fatal(err)
	}
	d := b.succeed(res.Deployment.ID)
	b.serves(host("ia", ""), "v1")
	b.checkImage("ia", "production", d.Revision, imageDigest(t, img), "archive", 1)
	if _, err := os.Stat(filepath.Join(b.revisionDir("ia", d.Revision), "baton.toml")); !os.IsNotExist(err) {
		t.Fatalf("the revision of an image with no baton.toml has one (%v)", err)
	}

	b.restartWithout(b.revisionDir("ia", d.Revision), filepath.Join(b.data, "images"))
	var conflict baton.Conflict
	eventually(t, 20*time.Second, "conflict restore_failed", func() bool {
		st, err := b.c.Status(ctx, "ia")
		for _, cf := range st.Conflicts {
			if cf.Code == baton.ConflictRestoreFailed {
				conflict = cf
			}
		}
		return err == nil && conflict.Code != ""
	})
	if !strings.Contains(conflict.Message, d.Revision) || !strings.Contains(conflict.Message, imageDigest(t, img)+" is missing") {
		t.Errorf("conflict %+v does not say what is missing", conflict)
	}
	if n := len(b.runcContainers()); n != 0 {
		t.Errorf("runc lists %d containers of a revision that cannot start", n)
	}

	reg := imageRegistry(t)
	v2img := exampleImage(t, "v2", nil)
	mustPushImage(t, reg+"/ia:v2", v2img)
	d2 := b.deployImage("ia", reg+"/ia:v2", api.DeployOptions{})
	b.serves(host("ia", ""), "v2")
	b.checkImage("ia", "production", d2.Revision, imageDigest(t, v2img), reg+"/ia:v2", 1)
	eventually(t, 10*time.Second, "the conflict clears", func() bool {
		st, err := b.c.Status(ctx, "ia")
		return err == nil && len(st.Conflicts) == 0
	})
	b.noLocks()
}

// TestScenarioImageRunCommand: the [run] command a deploy's manifest
// gives runs through the image's /bin/sh when it has one, else split on
// spaces; an absolute link at /bin/sh resolves inside the image, not on
// the host.
func TestScenarioImageRunCommand(t *testing.T) {
	t.Parallel()
	b := startImageBaton(t)
	b.createApp("rc", "staging", "abs", "dangling")
	reg := imageRegistry(t)
	mustPushImage(t, reg+"/rc:sh", shellExampleImage(t, "v1", "../app/hello"))
	mustPushImage(t, reg+"/rc:plain", exampleImage(t, "v2", nil))
	// Absolute links resolve inside the image: to its own file, and not
	// to the host's /usr/bin/env, which the image does not have.
	mustPushImage(t, reg+"/rc:abs", shellExampleImage(t, "v3", "/app/hello"))
	mustPushImage(t, reg+"/rc:dangling", shellExampleImage(t, "v4", "/usr/bin/env"))
	mf := "[run]\ncommand = \"/app/hello from the manifest\"\n[health]\npath = \"/healthz\"\ninterval = \"50ms\"\n"
	for _, c := range []struct {
		slot, tag, version string
		want               []string
	}{
		{"production", "sh", "v1", []string{"/bin/sh", "-c", "/app/hello from the manifest"}},
		{"staging", "plain", "v2", []string{"/app/hello", "from", "the", "manifest"}},
		{"abs", "abs", "v3", []string{"/bin/sh", "-c", "/app/hello from the manifest"}},
		{"dangling", "dangling", "v4", []string{"/app/hello", "from", "the", "manifest"}},
	} {
		d := b.deployImage("rc", reg+"/rc:"+c.tag, api.DeployOptions{Slot: c.slot, Manifest: mf})
		b.serves(host("rc", c.slot), c.version)
		got := b.containerArgs(d.Revision)
		if len(got) != 1 || strings.Join(got[0], "\x00") != strings.Join(c.want, "\x00") {
			t.Errorf("%s runs %q, want %q", c.tag, got, c.want)
		}
	}
}

// TestScenarioImageBuildTimeSetting: a settings change of a setting the
// image's deploy named as build-time ([build] env) builds again, and the
// new revision keeps the manifest that deploy gave (its [run] command and
// 2 instances; the image's labels say 1).
func TestScenarioImageBuildTimeSetting(t *testing.T) {
	t.Parallel()
	b := startImageBaton(t)
	ctx := context.Background()
	b.createApp("bt")
	reg := imageRegistry(t)
	img := exampleImage(t, "v1", nil)
	mustPushImage(t, reg+"/bt:v1", img)
	mf := "[run]\ncommand = \"/app/hello\"\ninstances = 2\n[build]\ncommand = \"/app/hello say built\"\nenv = [\"FEATURE\"]\n[health]\npath = \"/healthz\"\ninterval = \"50ms\"\n"
	d := b.deployImage("bt", reg+"/bt:v1", api.DeployOptions{Manifest: mf})
	b.checkImage("bt", "production", d.Revision, imageDigest(t, img), reg+"/bt:v1", 2)

	set, err := b.c.SetSettings(ctx, "bt", "production", []baton.Setting{{Key: "FEATURE", Value: "on"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	set = b.succeed(set.ID)
	log, _ := b.c.Log(ctx, set.ID)
	if !strings.Contains(log, "build-time setting FEATURE changed") || !strings.Contains(log, "built") {
		t.Fatalf("the settings change did not build again:\n%s", log)
	}
	if a := b.serves(host("bt", ""), "v1"); a.Revision != set.Revision || a.Settings["FEATURE"] != "on" {
		t.Fatalf("after the settings change production answers %+v, want %s with FEATURE=on", a, set.Revision)
	}
	b.checkImage("bt", "production", set.Revision, imageDigest(t, img), reg+"/bt:v1", 2)
	if m, err := os.ReadFile(filepath.Join(b.revisionDir("bt", set.Revision), "baton.toml")); err != nil || string(m) != mf {
		t.Fatalf("the rebuilt revision has baton.toml %q (%v), want the deploy's %q", m, err, mf)
	}
	b.noLocks()
}
