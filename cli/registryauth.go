package cli

import (
	"fmt"
	"os"

	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/name"
)

// registryCredentials reads the login for the registry of an image
// reference from an auth file: podman's auth.json and docker's
// config.json have the same "auths" shape. Empty user and password: the
// file has none for that registry.
func registryCredentials(ref, authFile string) (user, pass string, err error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	f, err := os.Open(authFile)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	cf, err := config.LoadFromReader(f)
	if err != nil {
		return "", "", fmt.Errorf("not an auth.json or docker config.json: %w", err)
	}
	for _, key := range []string{r.Context().String(), r.Context().RegistryStr()} {
		a, err := cf.GetAuthConfig(key)
		if err != nil {
			return "", "", err
		}
		if a.Username != "" || a.Password != "" {
			return a.Username, a.Password, nil
		}
	}
	return "", "", nil
}
