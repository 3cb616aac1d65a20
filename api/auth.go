package api

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
)

// Auth authenticates requests by access token and slows down guessing:
// an address whose authentications keep failing is refused for a while.
// The API, the git endpoint and the Kudu API share one Auth, so they
// share its limit too.
type Auth struct {
	Tokens baton.TokenStore
	// Audit receives Record's entries.
	Audit  baton.AuditStore
	Logger *slog.Logger
	// FailLimit is how many failed authentications one address may make
	// per minute (a burst of FailLimit, then one per 60s/FailLimit); default 10.
	FailLimit int
	// Now is the clock; default time.Now.
	Now func() time.Time

	once     sync.Once
	failures *failLimiter
}

func (a *Auth) init() {
	a.once.Do(func() {
		if a.FailLimit <= 0 {
			a.FailLimit = 10
		}
		if a.Now == nil {
			a.Now = time.Now
		}
		if a.Logger == nil {
			a.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		a.failures = newFailLimiter(a.FailLimit)
	})
}

// now is the Auth's clock.
func (a *Auth) now() time.Time {
	a.init()
	return a.Now()
}

// touchEvery is how stale a token's last_used_at may get: recording every
// use would make every request a write.
const touchEvery = time.Minute

// Credential returns the secret a request authenticates with: a Bearer
// token, or the password of HTTP Basic (any user name), which is what git
// and Kudu clients send.
func Credential(r *http.Request) (string, bool) {
	if _, pass, ok := r.BasicAuth(); ok {
		return pass, pass != ""
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// errNoCredentials is the answer to a request without a token.
var errNoCredentials = baton.Errorf(baton.EUNAUTHORIZED,
	"this needs an access token: send Authorization: Bearer TOKEN (the admin token is in the server's data directory, DATA/admin.token; `baton tokens create` makes more)")

// Authenticate returns the token the request carries.
func (a *Auth) Authenticate(r *http.Request) (baton.Token, error) {
	secret, ok := Credential(r)
	if !ok {
		return baton.Token{}, errNoCredentials
	}
	return a.Check(r, secret)
}

// Check returns the token whose secret is secret. Refusals are
// EUNAUTHORIZED, or ERATELIMITED once r's address has failed too often.
func (a *Auth) Check(r *http.Request, secret string) (baton.Token, error) {
	a.init()
	addr := remoteIP(r)
	now := a.now()
	if wait := a.failures.wait(addr, now); wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		e := baton.Errorf(baton.ERATELIMITED, "too many failed authentications from %s; retry in %ds", addr, secs)
		e.RetryAfterSeconds = secs
		return baton.Token{}, e
	}
	fail := func(reason string) (baton.Token, error) {
		a.failures.fail(addr, now)
		a.Logger.Warn("authentication failed", "remote", addr, "reason", reason, "method", r.Method, "path", r.URL.Path)
		return baton.Token{}, baton.Errorf(baton.EUNAUTHORIZED, "%s", reason)
	}
	if !baton.WellFormedToken(secret) {
		return fail("the credentials are not a baton token (baton_…)")
	}
	t, err := a.Tokens.TokenByHash(r.Context(), baton.HashToken(secret))
	if baton.ErrorCode(err) == baton.ENOTFOUND {
		return fail("the token is not valid: revoked, mistyped, or from another baton")
	}
	if err != nil {
		return t, err
	}
	if t.Expired(now) {
		return fail("token " + t.Name + " expired at " + t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= touchEvery {
		if err := a.Tokens.TouchToken(context.WithoutCancel(r.Context()), t.ID, now); err != nil {
			a.Logger.Warn("record token use", "token", t.Name, "err", err)
		}
	}
	return t, nil
}

// Authorize checks that secret is a token that may do what needs scope
// need on app: the check the git endpoint and the Kudu API make.
func (a *Auth) Authorize(r *http.Request, secret string, need baton.Scope, app string) (baton.Token, error) {
	t, err := a.Check(r, secret)
	if err != nil {
		return t, err
	}
	return t, t.Allows(need, app)
}

// remoteIP is the address failures are counted by: the client's IP
// without its port (each connection has another port).
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// tokenKey carries the authenticated token through a request's context.
type tokenKey struct{}

func withToken(ctx context.Context, t baton.Token) context.Context {
	return context.WithValue(ctx, tokenKey{}, t)
}

// TokenOf returns the token a request was authenticated with.
func TokenOf(ctx context.Context) (baton.Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(baton.Token)
	return t, ok
}

// actor names who made a request for the audit log: the token's name.
func actor(r *http.Request) string {
	t, _ := TokenOf(r.Context())
	if t.Name == "" {
		return "anonymous"
	}
	return t.Name
}

// Record appends an action and its outcome to the audit log, with the
// token's name as actor and the request's address.
func (a *Auth) Record(r *http.Request, t baton.Token, action, target, detail string, err error) {
	a.init()
	outcome := "ok"
	if err != nil {
		outcome = "refused: " + baton.ErrorMessage(err)
	}
	name := t.Name
	if name == "" {
		name = "anonymous"
	}
	e := baton.AuditEntry{Actor: name, Action: action, Target: target, Detail: detail, Outcome: outcome, Remote: r.RemoteAddr}
	if aerr := a.Audit.AddAudit(context.WithoutCancel(r.Context()), e); aerr != nil {
		a.Logger.Error("write audit entry", "action", action, "err", aerr)
	}
}
