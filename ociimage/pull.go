package ociimage

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// PullOptions say how to reach a registry.
type PullOptions struct {
	// Insecure allows plain HTTP (loopback and test registries).
	Insecure bool
	// AuthFile is a containers auth.json or docker config.json; "" means
	// the usual places (authn.DefaultKeychain).
	AuthFile string
	// Username and Password, if set, win over AuthFile.
	Username, Password string
}

// Pull fetches the image ref ("registry:5000/hello:v1", "hello@sha256:…")
// and holds it; an index gives its linux/amd64 image. An unreachable
// registry is EUNAVAILABLE, refused credentials EUNAUTHORIZED, an unknown
// repository or tag ENOTFOUND.
func (s *Store) Pull(ctx context.Context, ref string, opt PullOptions) (Image, error) {
	var nameOpts []name.Option
	if opt.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nameOpts...)
	if err != nil {
		return Image{}, baton.Errorf(baton.EINVALID, "%s is not an image reference: %v; write it as registry/repository:tag or registry/repository@sha256:…", quote(ref), err)
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(pullTransport())}
	switch {
	case opt.Username != "" || opt.Password != "":
		ropts = append(ropts, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: opt.Username, Password: opt.Password})))
	case opt.AuthFile != "":
		auth, err := authFromFile(opt.AuthFile, r.Context().RegistryStr())
		if err != nil {
			return Image{}, err
		}
		ropts = append(ropts, remote.WithAuth(auth))
	default:
		ropts = append(ropts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	fail := func(what string, err error) error { return remoteErr(r, what, err) }
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return Image{}, fail("fetch manifest", err)
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return Image{}, fail("read image index", err)
		}
		if img, err = indexImage(idx, fail); err != nil {
			return Image{}, err
		}
	} else if img, err = desc.Image(); err != nil {
		return Image{}, fail("read image", err)
	}
	return s.add(ctx, img, r.Name(), "", fail)
}

// pullTransport bounds how long a registry may take to connect and to
// answer; the whole pull is bounded by the caller's context.
func pullTransport() http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	return t
}

// authFromFile reads the credentials for registry from a containers
// auth.json or docker config.json; none there means anonymous.
func authFromFile(path, registry string) (authn.Authenticator, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, baton.Errorf(baton.EINVALID, "cannot read registry auth file %s: %v", quote(path), errors.Unwrap(err))
	}
	var file struct {
		Auths map[string]authn.AuthConfig `json:"auths"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, baton.Errorf(baton.EINVALID, "registry auth file %s is not a containers auth.json or docker config.json: %v", quote(path), err)
	}
	for key, cfg := range file.Auths {
		host := strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
		host, _, _ = strings.Cut(host, "/")
		if host == registry || (registry == name.DefaultRegistry && host == "index.docker.io") {
			return authn.FromConfig(cfg), nil
		}
	}
	return authn.Anonymous, nil
}

// remoteErr turns an error from a registry into a baton error for ref.
func remoteErr(ref name.Reference, what string, err error) error {
	var te *transport.Error
	var ne net.Error
	reg := ref.Context().RegistryStr()
	switch {
	case errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden):
		return baton.Errorf(baton.EUNAUTHORIZED, "registry %s refused access to %s (%d %s); give credentials that may pull it", reg, ref.Context().Name(), te.StatusCode, http.StatusText(te.StatusCode))
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		return baton.Errorf(baton.ENOTFOUND, "registry %s has no image %s; check the repository and tag", reg, ref.Name())
	case errors.As(err, &te) && te.StatusCode == http.StatusTooManyRequests:
		return baton.Errorf(baton.EUNAVAILABLE, "registry %s is limiting requests (429); try again later", reg)
	case errors.As(err, &te) && te.StatusCode >= 500:
		return baton.Errorf(baton.EUNAVAILABLE, "registry %s failed to %s (%d %s); try again later", reg, what, te.StatusCode, http.StatusText(te.StatusCode))
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &ne):
		return baton.Errorf(baton.EUNAVAILABLE, "registry %s cannot be reached: %v; check the address, that it is up, and whether it needs --insecure (plain HTTP)", reg, err)
	}
	var be *baton.Error
	if errors.As(err, &be) {
		return err
	}
	return baton.Errorf(baton.EUNPROCESSABLE, "%s from registry %s: %v; if it persists, the image in the registry is damaged: push it again", what, reg, err)
}
