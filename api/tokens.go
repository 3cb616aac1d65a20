package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name  string      `json:"name"`
	Scope baton.Scope `json:"scope"`
	// Apps limits a deploy token to these apps; empty means every app.
	Apps []string `json:"apps,omitempty"`
	// ExpiresIn is a Go duration ("720h"); empty means the token does not expire.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// CreatedToken is a new token with its secret: the only time the secret
// is ever shown.
type CreatedToken struct {
	baton.Token
	Secret string `json:"secret"`
}

// maxTokenLife bounds expires_in; longer is as good as never.
const maxTokenLife = 10 * 365 * 24 * time.Hour

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var body TokenRequest
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.newToken(r, body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	secret, err := baton.NewTokenSecret()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t.Hash = baton.HashToken(secret)
	t, err = s.Store.CreateToken(r.Context(), t)
	s.auditf(r, "token.create", body.Name, describeToken(t), err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/tokens/"+t.Name)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, CreatedToken{Token: t, Secret: secret})
}

// newToken checks a token request and returns the token it asks for.
func (s *Server) newToken(r *http.Request, body TokenRequest) (baton.Token, error) {
	scope, err := baton.ParseScope(string(body.Scope))
	if err != nil {
		return baton.Token{}, err
	}
	t := baton.Token{ID: baton.NewID("t-"), Name: body.Name, Scope: scope, Apps: body.Apps, CreatedBy: actor(r)}
	if body.ExpiresIn != "" {
		d, err := time.ParseDuration(body.ExpiresIn)
		if err != nil || d <= 0 || d > maxTokenLife {
			return t, baton.Errorf(baton.EINVALID, "expires_in %q must be a positive duration up to 10 years, like 720h", body.ExpiresIn)
		}
		at := s.Auth.now().Add(d).UTC()
		t.ExpiresAt = &at
	}
	// The hash is filled in after validation; a placeholder lets
	// ValidateToken check everything else now.
	t.Hash = strings.Repeat("0", 64)
	err = baton.ValidateToken(t)
	t.Hash = ""
	return t, err
}

// describeToken is a token for the audit log (never its secret).
func describeToken(t baton.Token) string {
	out := "scope " + string(t.Scope)
	if len(t.Apps) > 0 {
		out += " for " + strings.Join(t.Apps, ",")
	}
	if t.ExpiresAt != nil {
		out += fmt.Sprintf(", expires %s", t.ExpiresAt.Format(time.RFC3339))
	}
	return out
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.Store.Tokens(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ts == nil {
		ts = []baton.Token{}
	}
	writeJSON(w, 200, ts)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := s.Store.DeleteToken(r.Context(), name, s.Auth.now())
	s.auditf(r, "token.revoke", name, "", err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// whoami answers the caller's own token, so a client (the dashboard) can
// check a token and show what it may do.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	t, _ := TokenOf(r.Context())
	writeJSON(w, 200, t)
}
