package artifact

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// packTime is the modification time of every packed entry, so packing the
// same folder twice gives the same bytes, hence the same digest, and the
// server can tell a redeploy of unchanged code.
var packTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Pack writes a zip of dir to w, as Extract would unpack it: paths relative
// to dir with forward slashes, files 0755 if executable else 0644, and
// symlinks as symlinks. It leaves out .git (anywhere), baton-data at the
// top, symlinks that are absolute or lead outside dir, and anything that is
// not a file, folder or symlink.
func Pack(dir string, w io.Writer) error {
	zw := zip.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if d.Name() == ".git" || rel == "baton-data" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			_, err := zw.CreateHeader(packHeader(rel+"/", fs.ModeDir|0o755, zip.Store))
			return err
		case d.Type()&fs.ModeSymlink != 0:
			return packLink(zw, p, rel)
		case d.Type().IsRegular():
			return packFile(zw, p, rel)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pack %s: %w", dir, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("pack %s: %w", dir, err)
	}
	return nil
}

func packHeader(name string, mode fs.FileMode, method uint16) *zip.FileHeader {
	h := &zip.FileHeader{Name: name, Method: method, Modified: packTime}
	h.SetMode(mode)
	return h
}

func packFile(zw *zip.Writer, p, rel string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	mode := fs.FileMode(0o644)
	if info.Mode()&0o111 != 0 {
		mode = 0o755
	}
	fw, err := zw.CreateHeader(packHeader(rel, mode, zip.Deflate))
	if err != nil {
		return err
	}
	_, err = io.Copy(fw, f)
	return err
}

func packLink(zw *zip.Writer, p, rel string) error {
	target, err := os.Readlink(p)
	if err != nil {
		return err
	}
	slashed := filepath.ToSlash(target)
	if filepath.IsAbs(target) || path.IsAbs(slashed) {
		return nil
	}
	if to := path.Join(path.Dir(rel), slashed); to == ".." || strings.HasPrefix(to, "../") {
		return nil
	}
	fw, err := zw.CreateHeader(packHeader(rel, fs.ModeSymlink|0o777, zip.Store))
	if err != nil {
		return err
	}
	_, err = io.WriteString(fw, slashed)
	return err
}
