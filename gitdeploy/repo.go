package gitdeploy

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// hookScript is installed as both hooks/pre-receive and hooks/proc-receive.
//
//go:embed hook.sh
var hookScript []byte

// hookNames are the hooks the script serves; it tells them apart by $0.
var hookNames = []string{"pre-receive", "proc-receive"}

// repoPath is where app's bare repository lives: inside the app's folder,
// so deleting the app deletes it.
func (h *Handler) repoPath(app string) string {
	return filepath.Join(h.cfg.DataDir, "apps", app, "repo.git")
}

// ensureRepo returns app's bare repository, creating it on first use, and
// makes sure its hooks are this baton's.
func (h *Handler) ensureRepo(ctx context.Context, app string, targets []Target) (string, error) {
	repo := h.repoPath(app)
	h.repoMu.Lock()
	defer h.repoMu.Unlock()
	if _, err := os.Stat(filepath.Join(repo, "HEAD")); err == nil {
		return repo, installHooks(repo)
	}
	if err := os.MkdirAll(filepath.Dir(repo), 0o755); err != nil {
		return "", fmt.Errorf("create app folder: %w", err)
	}
	// Built beside and renamed into place: a half-made repository is
	// never served, and a crash leaves only a temp folder.
	tmp, err := os.MkdirTemp(filepath.Dir(repo), ".repo-*.tmp")
	if err != nil {
		return "", fmt.Errorf("create repository: %w", err)
	}
	defer os.RemoveAll(tmp)
	branch := defaultTargets()[0].Branch
	if len(targets) > 0 {
		branch = targets[0].Branch
	}
	if _, err := runGit(ctx, "", nil, "init", "--bare", "--quiet", "--template=", tmp); err != nil {
		return "", fmt.Errorf("create repository: %w", err)
	}
	steps := [][]string{
		{"symbolic-ref", "HEAD", "refs/heads/" + branch},
		// Pushes over HTTP without REMOTE_USER need receive-pack enabled.
		{"config", "http.receivepack", "true"},
		// So that git push -o on-conflict=fail reaches the hook.
		{"config", "receive.advertisePushOptions", "true"},
	}
	for _, args := range steps {
		if _, err := runGit(ctx, tmp, nil, args...); err != nil {
			return "", fmt.Errorf("create repository: %w", err)
		}
	}
	if err := installHooks(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, repo); err != nil {
		return "", fmt.Errorf("create repository: %w", err)
	}
	return repo, nil
}

// installHooks writes baton's hooks into repo unless they are current.
func installHooks(repo string) error {
	dir := filepath.Join(repo, "hooks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("install git hooks: %w", err)
	}
	for _, name := range hookNames {
		path := filepath.Join(dir, name)
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, hookScript) {
			if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o100 != 0 {
				continue
			}
		}
		tmp, err := os.CreateTemp(dir, "."+name+"-*")
		if err == nil {
			_, err = tmp.Write(hookScript)
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
		}
		if err == nil {
			err = os.Chmod(tmp.Name(), 0o755)
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			if tmp != nil {
				os.Remove(tmp.Name())
			}
			return fmt.Errorf("install git hook %s: %w", name, err)
		}
	}
	return nil
}

// runGit runs git with baton's git environment plus env and returns its
// standard output; a failure carries git's standard error.
func runGit(ctx context.Context, gitDir string, env []string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	name := args[0]
	if gitDir != "" {
		args = append([]string{"--git-dir", gitDir}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = gitEnv(env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &gitError{cmd: name, stderr: strings.TrimSpace(stderr.String()), err: err}
	}
	return out, nil
}

// gitError is a failed git command: its message is git's own, and it
// unwraps to the *exec.ExitError.
type gitError struct {
	cmd, stderr string
	err         error
}

func (e *gitError) Error() string {
	if e.stderr != "" {
		return "git " + e.cmd + ": " + e.stderr
	}
	return "git " + e.cmd + ": " + e.err.Error()
}

func (e *gitError) Unwrap() error { return e.err }
