package gitdeploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// quarantineEnv lets baton's own git commands read a push that pre-receive
// has not accepted yet: git keeps its objects in a quarantine folder
// (objects/tmp_objdir-incoming-*) until every hook has passed. The folder must be the
// repository's own.
func quarantineEnv(repo, quarantine string) ([]string, error) {
	if quarantine == "" {
		return nil, fmt.Errorf("git did not say where this push's objects are (GIT_QUARANTINE_PATH); baton needs git 2.11 or newer on its host")
	}
	objects, err := filepath.EvalSymlinks(filepath.Join(repo, "objects"))
	if err != nil {
		return nil, err
	}
	q, err := filepath.EvalSymlinks(quarantine)
	if err != nil {
		return nil, fmt.Errorf("quarantine of the push: %w", err)
	}
	if filepath.Dir(q) != objects || !strings.Contains(filepath.Base(q), "incoming-") {
		return nil, fmt.Errorf("quarantine %s of the push is not in repository %s", quarantine, repo)
	}
	alt := objects
	if strings.ContainsAny(alt, ":\"\\") {
		alt = strconv.Quote(alt) // git reads a quoted entry C-style
	}
	return []string{"GIT_OBJECT_DIRECTORY=" + q, "GIT_ALTERNATE_OBJECT_DIRECTORIES=" + alt, "GIT_QUARANTINE_PATH=" + q}, nil
}

// commit is what a deployment records of the pushed commit.
type commit struct {
	Sha, Author, Subject string
}

// readCommit reads sha's id, author name and subject.
func readCommit(ctx context.Context, repo string, env []string, sha string) (commit, error) {
	out, err := runGit(ctx, repo, env, "log", "-1", "--no-show-signature", "--format=%H%x00%an%x00%s", sha+"^{commit}", "--")
	if err != nil {
		return commit{}, fmt.Errorf("read pushed commit %s: %w", short(sha), err)
	}
	f := strings.SplitN(strings.TrimRight(string(out), "\n"), "\x00", 3)
	if len(f) != 3 {
		return commit{}, fmt.Errorf("read pushed commit %s: unexpected git log output %q", short(sha), out)
	}
	return commit{Sha: f[0], Author: f[1], Subject: f[2]}, nil
}

// submit exports the commit's tree as a tar.gz (git archive honours
// export-ignore attributes; submodules are not included) and hands it to
// the coordinator, which stores it before queueing the deployment.
func (h *Handler) submit(ctx context.Context, s *session, t Target, opts pushOptions, c commit, env []string) (baton.SubmitResult, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "--git-dir", s.repo, "archive", "--format=tar.gz", c.Sha)
	cmd.Env = gitEnv(env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		return baton.SubmitResult{}, fmt.Errorf("git archive: %w", err)
	}
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("git archive %s: %v: %s", short(c.Sha), err, strings.TrimSpace(stderr.String()))
		}
		// A failed export must fail the upload rather than end it cleanly.
		pw.CloseWithError(err)
	}()
	res, err := h.cfg.Deployer.Submit(ctx, baton.SubmitRequest{
		App: s.app, Slot: t.Slot, Artifact: pr, MaxUpload: h.cfg.MaxUpload, Policy: opts.Policy,
		Message: c.Subject, Commit: c.Sha, Author: c.Author, Force: opts.Force, OrderKey: opts.OrderKey,
	})
	// Submit may stop reading early (refused, too large): unblock git archive.
	pr.CloseWithError(io.ErrClosedPipe)
	<-waited
	return res, err
}

// follow prints the deployment's log as it grows and returns the
// deployment once it is final.
func (h *Handler) follow(ctx context.Context, d baton.Deployment, out *reply) (baton.Deployment, error) {
	var after int64
	emit := func() error {
		lines, err := h.cfg.Store.Log(ctx, d.ID, after)
		for _, l := range lines {
			out.say("%s %s", l.Time.Format("15:04:05"), l.Text)
			after = l.ID
		}
		return err
	}
	for {
		changed := h.cfg.Deployer.Changes()
		if err := emit(); err != nil {
			return d, err
		}
		cur, err := h.cfg.Store.Deployment(ctx, d.ID)
		if err != nil {
			return d, err
		}
		d = cur
		if d.State.Final() {
			// The last lines may have been written with the final state.
			return d, emit()
		}
		select {
		case <-ctx.Done():
			return d, context.Cause(ctx)
		case <-changed:
		}
	}
}

// stillServes says what serves the slot after a failed deployment.
func (h *Handler) stillServes(ctx context.Context, app, slot string) string {
	a, err := h.cfg.Store.App(ctx, app)
	if err != nil {
		return "what served before still serves"
	}
	for _, s := range a.Slots {
		if s.Name == slot && s.LiveRevision != "" {
			return fmt.Sprintf("%s still serves %s", s.LiveRevision, h.slotURL(app, slot))
		}
	}
	return fmt.Sprintf("nothing serves %s yet", h.slotURL(app, slot))
}

// slotURL is where the proxy serves a slot: http://APP.DOMAIN:PORT/ or
// http://APP-SLOT.DOMAIN:PORT/.
func (h *Handler) slotURL(app, slot string) string {
	host := app
	if slot != baton.ProductionSlot {
		host += "-" + slot
	}
	host += "." + h.cfg.Domain
	if _, port, err := net.SplitHostPort(h.cfg.ProxyAddr); err == nil && port != "80" {
		host = net.JoinHostPort(host, port)
	}
	return "http://" + host + "/"
}

func (h *Handler) now() time.Time { return time.Now() }
