package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/internal/atomicfile"
	"github.com/batonhq/baton/kudu"
	"github.com/batonhq/baton/secretstore"
	"github.com/batonhq/baton/web"
)

// AdminTokenFile is the file in the data directory that holds the admin
// token created on first start.
const AdminTokenFile = "admin.token"

// adminTokenName is the name of the first admin token.
const adminTokenName = "admin"

// secure readies what keeps baton's API and secrets safe: the secret key
// and the store wrapper that seals secret settings with it, the first
// admin token, the token checker that the API, git and Kudu share, and TLS.
func (s *Server) secure(ctx context.Context) error {
	keyPath := s.keyFile()
	key, created, err := secretstore.LoadOrCreateKey(keyPath)
	if err != nil {
		return err
	}
	if created {
		s.log.Info("created the key that encrypts secret settings; controllers sharing a store need the same key file", "file", keyPath)
	}
	sealed, err := secretstore.New(s.store, key)
	if err != nil {
		return err
	}
	s.store = sealed
	if err := s.bootstrapAdmin(ctx); err != nil {
		return err
	}
	s.auth = &api.Auth{Tokens: s.store, Audit: s.store, Logger: s.log, FailLimit: s.cfg.AuthFailLimit}
	return s.listenSecurely()
}

// keyFile is the path of the key that seals secret settings.
func (s *Server) keyFile() string {
	if s.cfg.SecretKeyFile != "" {
		return s.cfg.SecretKeyFile
	}
	return filepath.Join(s.cfg.DataDir, "secret.key")
}

// bootstrapAdmin creates the admin token when the store has no token at
// all, and writes it to DATA/admin.token (mode 0600). A well-formed token
// already in that file is adopted, so a data directory can be provisioned
// with a known token. The secret is never logged.
func (s *Server) bootstrapAdmin(ctx context.Context) error {
	ts, err := s.store.Tokens(ctx)
	if err != nil {
		return fmt.Errorf("read tokens: %w", err)
	}
	if len(ts) > 0 {
		return nil
	}
	path := filepath.Join(s.cfg.DataDir, AdminTokenFile)
	secret, adopted, err := adminSecret(path)
	if err != nil {
		return err
	}
	_, err = s.store.CreateToken(ctx, baton.Token{ID: baton.NewID("t-"), Name: adminTokenName, Scope: baton.ScopeAdmin,
		Hash: baton.HashToken(secret), CreatedBy: "baton serve"})
	if baton.ErrorCode(err) == baton.ECONFLICT {
		// Another controller sharing the store made the first token at
		// the same moment: keep the file only if it holds that token.
		if _, err := s.store.TokenByHash(ctx, baton.HashToken(secret)); err == nil {
			return nil
		}
		s.log.Info("another controller created the admin token; this data directory has none")
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("create the admin token: %w", err)
	}
	verb := "created"
	if adopted {
		verb = "adopted"
	}
	s.log.Info(verb+" the admin token; the CLI on this machine reads it from the data directory, others need it in BATON_TOKEN", "file", path)
	return nil
}

// adminSecret returns the well-formed token in path, or writes a new one
// there (through a temporary file, mode 0600). Replacing a file that is
// not a token is safe: with no token in the store, nobody can be using it.
func adminSecret(path string) (secret string, adopted bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil && baton.WellFormedToken(strings.TrimSpace(string(b))) {
		if err := os.Chmod(path, 0o600); err != nil {
			return "", false, err
		}
		return strings.TrimSpace(string(b)), true, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	if secret, err = baton.NewTokenSecret(); err != nil {
		return "", false, err
	}
	if err := atomicfile.Write(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write %s: %w", path, err)
	}
	return secret, false, nil
}

// AdminTokenFile returns the path of the admin token file of this data
// directory, "" when it has none (another controller made the token).
func (s *Server) AdminTokenFile() string {
	path := filepath.Join(s.cfg.DataDir, AdminTokenFile)
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

// APIURL is the base URL of the API: https when it serves TLS.
func (s *Server) APIURL() string {
	if s.apiTLS {
		return "https://" + s.APIAddr()
	}
	return "http://" + s.APIAddr()
}

// listenSecurely serves the API over TLS when a certificate is configured,
// and warns when tokens would cross a network in clear text.
func (s *Server) listenSecurely() error {
	config, err := s.loadKeyPair("--tls", "the API's", "serve the API over HTTPS", s.cfg.TLSCert, s.cfg.TLSKey)
	if err != nil {
		return err
	}
	if config == nil {
		if host, _, err := net.SplitHostPort(s.APIAddr()); err == nil {
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				s.log.Warn("the API listens beyond this machine without TLS: tokens cross the network in clear text; use --tls-cert and --tls-key, or a TLS proxy", "api", s.APIAddr())
			}
		}
		return nil
	}
	s.apiLn = tls.NewListener(s.apiLn, config)
	s.apiTLS = true
	return nil
}

// secureMounts returns the scope each mount needs at the API's door, and
// makes the git endpoint ask for credentials the way git understands.
func (s *Server) secureMounts(mounts map[string]http.Handler) map[string]baton.Scope {
	if git, ok := mounts["/git/"]; ok {
		mounts["/git/"] = gitChallenge(git)
	}
	return map[string]baton.Scope{
		// The dashboard's page and assets hold no data; its API calls
		// carry a token.
		"GET /{$}":          api.Public,
		"GET " + web.Prefix: api.Public,
		// Kudu and git check tokens themselves (authorizeKudu,
		// authorizeGit), with the credentials their clients send.
		kudu.PathPattern: api.Public,
		"/git/":          api.Public,
		"/v2/":           api.Public, // authorizeRegistry
		"GET /metrics":   baton.ScopeRead,
	}
}

// gitChallenge asks a git client without credentials for them: git sends
// its user name and password (the token) only after a 401 that names
// Basic.
func gitChallenge(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := api.Credential(r); !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="baton git", charset="UTF-8"`)
		}
		h.ServeHTTP(w, r)
	})
}

// authorizeKudu is the Kudu API's Authorize: a token as the Basic
// password (any user) or as a Bearer token; reads need scope read,
// deployments and settings scope deploy for the app.
func (s *Server) authorizeKudu(r *http.Request, app string, c kudu.Credentials) error {
	need := baton.ScopeDeploy
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		need = baton.ScopeRead
	}
	t, err := s.auth.Authorize(r, c.Secret, need, app)
	if need == baton.ScopeDeploy && baton.ErrorCode(err) != baton.EUNAUTHORIZED && baton.ErrorCode(err) != baton.ERATELIMITED {
		s.auth.Record(r, t, "kudu", app, r.Method+" "+r.URL.Path, err)
	}
	return hookError(err)
}

// authorizeGit is the git endpoint's Authorize: the token is the Basic
// password (remote http://x:TOKEN@HOST/git/APP.git, or a credential
// helper); fetching needs scope read, pushing scope deploy for the app.
func (s *Server) authorizeGit(r *http.Request, app string, write bool) error {
	secret, ok := api.Credential(r)
	if !ok {
		return baton.Errorf(baton.EUNAUTHORIZED, "git needs a baton token as the password: add the remote as http://baton:TOKEN@HOST/git/%s.git, or give it to a git credential helper", app)
	}
	need := baton.ScopeRead
	if write {
		need = baton.ScopeDeploy
	}
	t, err := s.auth.Authorize(r, secret, need, app)
	// A push is two requests (advertisement, then the pack): record the pack.
	if write && r.Method == http.MethodPost && baton.ErrorCode(err) != baton.EUNAUTHORIZED && baton.ErrorCode(err) != baton.ERATELIMITED {
		s.auth.Record(r, t, "git.push", app, r.URL.Path, err)
	}
	return hookError(err)
}

// hookError adapts an Auth refusal to the git and Kudu handlers, whose
// problem tables predate ERATELIMITED: it goes out as their other 429.
func hookError(err error) error {
	var e *baton.Error
	if errors.As(err, &e) && e.Code == baton.ERATELIMITED {
		return &baton.Error{Code: baton.EQUEUEFULL, Message: e.Message, RetryAfterSeconds: e.RetryAfterSeconds}
	}
	return err
}
