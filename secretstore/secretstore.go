// Package secretstore keeps secret settings encrypted at rest: a
// baton.Store that seals their values with AES-256-GCM before they reach
// the store it wraps, and opens them again for the coordinator, which
// needs them to start instances.
//
// Secret values are kept in three places, all sealed: the settings of a
// slot, the environment a revision snapshots (Revision.Env), and the
// params of the settings operation that set them (Deployment.Params).
// Settings and revisions are opened on every read; a deployment's params
// are opened only for StartDeployment (the coordinator running it), and
// masked everywhere else, so the API, its event stream and the dashboard
// never see them.
package secretstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"

	"github.com/batonhq/baton"
)

// sealedPrefix marks a sealed value; the rest is base64url(nonce ‖
// ciphertext). Values without it are plain (stored before encryption
// existed, or not secret) and pass unchanged.
const sealedPrefix = "baton-sealed:v1:"

// sealedValue matches a sealed value inside a larger text (JSON params).
var sealedValue = regexp.MustCompile(regexp.QuoteMeta(sealedPrefix) + `[A-Za-z0-9_-]*`)

// Store is a baton.Store that encrypts secret setting values.
type Store struct {
	baton.Store
	aead cipher.AEAD
}

var _ baton.Store = (*Store)(nil)

// New wraps inner; key is KeySize bytes (see LoadOrCreateKey).
func New(inner baton.Store, key []byte) (*Store, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Store{Store: inner, aead: aead}, nil
}

// Sealed reports whether v is a sealed value.
func Sealed(v string) bool { return strings.HasPrefix(v, sealedPrefix) }

// additional binds a sealed value to its app and key, so a sealed value
// copied to another setting does not open there.
func additional(app, key string) []byte { return []byte(app + "\x00" + key) }

// seal encrypts the value of setting key of app.
func (s *Store) seal(app, key, value string) string {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(value)+s.aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails on supported platforms
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(value), additional(app, key)))
}

// open decrypts a sealed value; a plain value is returned unchanged.
func (s *Store) open(app, key, value string) (string, error) {
	rest, ok := strings.CutPrefix(value, sealedPrefix)
	if !ok {
		return value, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err == nil && len(b) >= s.aead.NonceSize() {
		var plain []byte
		n := s.aead.NonceSize()
		if plain, err = s.aead.Open(nil, b[:n], b[n:], additional(app, key)); err == nil {
			return string(plain), nil
		}
	}
	return "", baton.Errorf(baton.ECONFLICT, "secret setting %s of app %s cannot be decrypted with this server's secret key: "+
		"the key file was replaced, or another controller sharing the store has a different one; set the setting again", key, app)
}

// PutSetting seals a secret setting's value before storing it.
func (s *Store) PutSetting(ctx context.Context, f baton.Fence, st baton.Setting) error {
	if st.Secret {
		st.Value = s.seal(st.App, st.Key, st.Value)
	}
	return s.Store.PutSetting(ctx, f, st)
}

// Settings returns a slot's settings with secret values opened.
func (s *Store) Settings(ctx context.Context, app, slot string) ([]baton.Setting, error) {
	ss, err := s.Store.Settings(ctx, app, slot)
	if err != nil {
		return nil, err
	}
	for i, st := range ss {
		if ss[i].Value, err = s.open(app, st.Key, st.Value); err != nil {
			return nil, err
		}
	}
	return ss, nil
}

// CreateRevision seals the values in r.Env that are secret settings of
// r's slot; the revision it returns has them open.
func (s *Store) CreateRevision(ctx context.Context, f baton.Fence, r baton.Revision) (baton.Revision, error) {
	plain := r.Env
	if len(r.Env) > 0 {
		// Settings change under the app lock this write is fenced by, so
		// these flags are the ones r.Env was taken from.
		ss, err := s.Store.Settings(ctx, r.App, r.Slot)
		if err != nil {
			return r, err
		}
		secret := map[string]bool{}
		for _, st := range ss {
			secret[st.Key] = st.Secret
		}
		r.Env = make(map[string]string, len(plain))
		for k, v := range plain {
			if secret[k] {
				v = s.seal(r.App, k, v)
			}
			r.Env[k] = v
		}
	}
	out, err := s.Store.CreateRevision(ctx, f, r)
	out.Env = plain
	return out, err
}

// openEnv opens the sealed values of a revision's environment.
func (s *Store) openEnv(r *baton.Revision) error {
	for k, v := range r.Env {
		plain, err := s.open(r.App, k, v)
		if err != nil {
			return err
		}
		r.Env[k] = plain
	}
	return nil
}

// Revision returns a revision with its environment opened.
func (s *Store) Revision(ctx context.Context, name string) (baton.Revision, error) {
	r, err := s.Store.Revision(ctx, name)
	if err != nil {
		return r, err
	}
	return r, s.openEnv(&r)
}

// Revisions returns an app's revisions with their environments opened.
func (s *Store) Revisions(ctx context.Context, app string) ([]baton.Revision, error) {
	rs, err := s.Store.Revisions(ctx, app)
	if err != nil {
		return nil, err
	}
	for i := range rs {
		if err := s.openEnv(&rs[i]); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// sealParams seals the secret values a settings operation sets.
func (s *Store) sealParams(d *baton.Deployment) error {
	if d.Kind != baton.KindConfig || d.Params == "" {
		return nil
	}
	ch, err := baton.DecodeParams[baton.SettingsChange](d.Kind, d.Params)
	if err != nil {
		return err
	}
	sealed := false
	for i, st := range ch.Set {
		if st.Secret && !Sealed(st.Value) {
			ch.Set[i].Value, sealed = s.seal(d.App, st.Key, st.Value), true
		}
	}
	if sealed {
		if d.Params, err = baton.EncodeParams(d.Kind, ch); err != nil {
			return err
		}
	}
	return nil
}

// openParams opens the sealed values of a settings operation.
func (s *Store) openParams(d *baton.Deployment) error {
	if d.Kind != baton.KindConfig || !strings.Contains(d.Params, sealedPrefix) {
		return nil
	}
	ch, err := baton.DecodeParams[baton.SettingsChange](d.Kind, d.Params)
	if err != nil {
		return err
	}
	for i, st := range ch.Set {
		v, err := s.open(d.App, st.Key, st.Value)
		if err != nil {
			return err
		}
		ch.Set[i].Value = v
	}
	d.Params, err = baton.EncodeParams(d.Kind, ch)
	return err
}

// mask hides sealed values in a deployment's params.
func mask(d *baton.Deployment) {
	if strings.Contains(d.Params, sealedPrefix) {
		d.Params = sealedValue.ReplaceAllString(d.Params, baton.SecretMask)
	}
}

func maskAll(ds []baton.Deployment) []baton.Deployment {
	for i := range ds {
		mask(&ds[i])
	}
	return ds
}

// maskErr hides sealed values in the holder a refusal names.
func maskErr(err error) error {
	var e *baton.Error
	if errors.As(err, &e) && e.Conflict != nil && e.Conflict.Holder != nil {
		h := *e.Conflict.Holder
		mask(&h)
		c := *e.Conflict
		c.Holder = &h
		e.Conflict = &c
	}
	return err
}

// Enqueue seals the secret values of a settings operation before the
// store records it.
func (s *Store) Enqueue(ctx context.Context, req baton.EnqueueRequest) (baton.EnqueueResult, error) {
	if err := s.sealParams(&req.Deployment); err != nil {
		return baton.EnqueueResult{}, err
	}
	res, err := s.Store.Enqueue(ctx, req)
	mask(&res.Deployment)
	return res, maskErr(err)
}

// StartDeployment returns the deployment with its params opened: the
// coordinator applies them. A deployment whose secrets cannot be opened
// fails at once, saying why, rather than run with wrong values.
func (s *Store) StartDeployment(ctx context.Context, f baton.Fence, id string) (baton.Deployment, error) {
	d, err := s.Store.StartDeployment(ctx, f, id)
	if err != nil {
		return d, err
	}
	if err := s.openParams(&d); err != nil {
		reason := baton.ErrorMessage(err)
		_ = s.Store.AppendLog(ctx, id, "deployment failed: "+reason)
		if ferr := s.Store.FinishDeployment(ctx, f, id, baton.StateFailed, reason); ferr != nil {
			err = errors.Join(err, ferr)
		}
		mask(&d)
		return d, err
	}
	return d, nil
}

// Deployment returns a deployment with secret values masked.
func (s *Store) Deployment(ctx context.Context, id string) (baton.Deployment, error) {
	d, err := s.Store.Deployment(ctx, id)
	mask(&d)
	return d, err
}

// Deployments returns deployments with secret values masked.
func (s *Store) Deployments(ctx context.Context, f baton.DeploymentFilter) ([]baton.Deployment, error) {
	ds, err := s.Store.Deployments(ctx, f)
	return maskAll(ds), err
}

// CancelQueued cancels a queued deployment; secret values are masked.
func (s *Store) CancelQueued(ctx context.Context, id, reason string) (baton.Deployment, error) {
	d, err := s.Store.CancelQueued(ctx, id, reason)
	mask(&d)
	return d, err
}

// FailInterrupted ends interrupted deployments (see baton.Store); secret values are masked.
func (s *Store) FailInterrupted(ctx context.Context, apps []string) ([]baton.Deployment, error) {
	ds, err := s.Store.FailInterrupted(ctx, apps)
	return maskAll(ds), err
}

// FailExpired ends deployments whose lease expired; secret values are masked.
func (s *Store) FailExpired(ctx context.Context) ([]baton.Deployment, error) {
	ds, err := s.Store.FailExpired(ctx)
	return maskAll(ds), err
}
