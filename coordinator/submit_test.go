package coordinator_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// TestSubmitRefusedUploadStoresNothing: an upload refused once its content
// is known (not an archive; a manifest beside an archive) is neither
// queued nor kept in the artifact store, while an accepted one is stored
// under its digest before it is queued.
func TestSubmitRefusedUploadStoresNothing(t *testing.T) {
	b := startBaton(t)
	b.createApp("web")
	ctx := context.Background()
	store := filepath.Join(b.data, "artifacts")
	files := func() []string {
		var out []string
		filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(store, p)
				out = append(out, rel)
			}
			return nil
		})
		return out
	}

	_, err := b.c.Deploy(ctx, "web", strings.NewReader("not an archive"), api.DeployOptions{ContentType: "application/octet-stream"})
	if baton.ErrorCode(err) != baton.EUNPROCESSABLE {
		t.Fatalf("deploy of a text file = %v, want %s", err, baton.EUNPROCESSABLE)
	}
	_, err = b.deployErr("web", appDir(t, "v1"), api.DeployOptions{Manifest: "[run]\ncommand = \"./app\"\n"})
	if baton.ErrorCode(err) != baton.EINVALID {
		t.Fatalf("deploy of an archive with a manifest = %v, want %s", err, baton.EINVALID)
	}
	if got := files(); len(got) != 0 {
		t.Fatalf("refused uploads left %v in the artifact store", got)
	}
	if ds := b.history("web"); len(ds) != 0 {
		t.Fatalf("refused uploads queued %d deployments", len(ds))
	}

	d := b.succeed(b.deploy("web", appDir(t, "v2"), api.DeployOptions{}).ID)
	if got := files(); !slices.Contains(got, filepath.Join("sha256", d.ArtifactDigest)) {
		t.Fatalf("the artifact store holds %v, want sha256/%s", got, d.ArtifactDigest)
	}
}
