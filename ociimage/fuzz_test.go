package ociimage

import (
	"archive/tar"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FuzzLayerExtract unpacks a layer of arbitrary tar bytes over a fixed
// lower layer, as Rootfs does (mutate.Extract into artifact.ExtractTar,
// without the blob store's fsyncs, to keep it fast), and checks what every
// input must keep: no panic, success or a baton refusal, nothing written
// outside the rootfs, and on success no setuid bits, devices or fifos.
func FuzzLayerExtract(f *testing.F) {
	for _, es := range [][]entry{
		{dirE("app/", 0o755), modeE("app/run", 0o755), symlinkE("app/cur", "/app/run"), hardlinkE("app/h", "app/run")},
		{fileE("../evil", "x")},
		{fileE("/evil", "x")},
		{symlinkE("l", "/tmp"), fileE("l/evil", "x")},
		{symlinkE("l", "../../../.."), fileE("l/evil", "x")},
		{dirE("d/", 0o755), symlinkE("d/l", ".."), symlinkE("x", "d/l/.."), fileE("x/evil", "x")},
		{hardlinkE("h", "../../etc/passwd"), hardlinkE("g", "base/file")},
		{specialE("dev/null", tar.TypeChar), specialE("p", tar.TypeFifo)},
		{modeE("su", 0o4755), modeE("sg", 0o2755), dirE("t/", 0o1777), dirE("ro/", 0o500), fileE("ro/f", "x")},
		{fileE(".wh.base", ""), fileE("base/.wh..wh..opq", "")},
		{symlinkE("base", "/etc"), fileE("base/passwd", "x")},
	} {
		f.Add(tarBytes(f, es...))
	}
	lower := static.NewLayer(tarBytes(f, dirE("base/", 0o755), fileE("base/file", "lower")), types.OCIUncompressedLayer)
	lim := artifact.Limits{MaxFiles: 200, MaxBytes: 1 << 20}
	explain := func(err error) error { return baton.Errorf(baton.EUNPROCESSABLE, "layer: %v", err) }
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := mutate.AppendLayers(empty.Image, lower, static.NewLayer(data, types.OCIUncompressedLayer))
		if err != nil {
			t.Fatal(err)
		}
		top := t.TempDir()
		outside := filepath.Join(top, "outside")
		if err := os.Mkdir(outside, 0o755); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(top, "rootfs")
		err = flatten(context.Background(), img, dir, lim, explain)
		if err != nil {
			var be *baton.Error
			if !errors.As(err, &be) || (be.Code != baton.EUNPROCESSABLE && be.Code != baton.ETOOLARGE) {
				t.Fatalf("flatten = %v (%T), want nil or an unprocessable/too-large *baton.Error", err, err)
			}
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Fatalf("wrote outside the rootfs: %v", entries)
		}
		if entries, _ := os.ReadDir(top); len(entries) != 1+btoi(err == nil) {
			t.Fatalf("beside the rootfs: %v (err %v)", entries, err)
		}
		if err != nil {
			return
		}
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			m := fi.Mode()
			if m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0 {
				t.Errorf("%s has mode %v", strings.TrimPrefix(p, dir), m)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
