package coordinator

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/batonhq/baton"
)

// reuseBuild gives a settings change (KindConfig) the files of the
// revision it re-creates, build output included, so that the app restarts
// with the new environment without building again — unless a changed
// setting is one the manifest names as build-time ([build] env). It
// reports whether it did; if not, prepare unpacks and builds as for a
// deploy.
func (p *pipeline) reuseBuild(ctx context.Context) (bool, error) {
	c := p.c
	if p.d.Kind != baton.KindConfig || p.replaces == "" {
		return false, nil
	}
	rev, err := c.cfg.Store.Revision(ctx, p.replaces)
	if err != nil {
		return false, err
	}
	src, err := c.revisionFiles(ctx, rev)
	if err != nil {
		return false, err
	}
	m, err := loadManifest(src)
	if err != nil {
		return false, err
	}
	if bt := m.Build.BuildTime(p.changed); len(bt) > 0 {
		c.logf(p.d.ID, "build-time setting %s changed ([build] env): building %s's artifact again", strings.Join(bt, ", "), rev.Name)
		return false, nil
	}
	if err := copyTree(ctx, src, p.dir); err != nil {
		return false, fmt.Errorf("copy the files of %s: %w", rev.Name, err)
	}
	if m.Build.Command != "" {
		c.logf(p.d.ID, "reusing the build output of %s: no build-time setting changed ([build] env = [%s])", rev.Name, strings.Join(m.Build.Env, ", "))
	}
	return true, nil
}

// buildEnv is the environment of a build: baton's variables and the
// slot's settings the manifest names as build-time ([build] env).
func (p *pipeline) buildEnv(ctx context.Context, m baton.Manifest) ([]string, error) {
	env := instanceEnv(p.d.App, p.d.Slot, p.rev, p.dir)
	if len(m.Build.Env) == 0 {
		return env, nil
	}
	return p.c.withBuildSettings(ctx, env, p.d.App, p.d.Slot, m)
}

// withBuildSettings appends to env the settings of a slot that m names as
// build-time.
func (c *Coordinator) withBuildSettings(ctx context.Context, env []string, app, slot string, m baton.Manifest) ([]string, error) {
	if len(m.Build.Env) == 0 {
		return env, nil
	}
	ss, err := c.cfg.Store.Settings(ctx, app, slot)
	if err != nil {
		return nil, err
	}
	for _, s := range ss {
		if len(m.Build.BuildTime([]string{s.Key})) > 0 {
			env = append(env, s.Key+"="+s.Value)
		}
	}
	return env, nil
}

// copyTree copies the folder src to dst (which must not exist), keeping
// modes and symbolic links.
func copyTree(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := e.Info()
		if err != nil {
			return err
		}
		switch {
		case e.IsDir():
			return os.MkdirAll(to, info.Mode().Perm()|0o700)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case info.Mode().IsRegular():
			return copyFile(path, to, info.Mode().Perm())
		}
		return nil // sockets, pipes: not files a revision needs
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
