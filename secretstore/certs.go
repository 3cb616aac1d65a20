package secretstore

import (
	"context"

	"github.com/batonhq/baton"
)

// Private keys in the certificate storage (baton.IsCertKey: certificate
// and ACME account keys) are sealed like secret settings, bound to their
// storage key; certificates and metadata, which are public, stay plain.

// certApp is the additional data's "app" of certificate storage values.
const certApp = "\x00certs"

// PutCert seals private keys.
func (s *Store) PutCert(ctx context.Context, key string, value []byte) error {
	if baton.IsCertKey(key) {
		value = []byte(s.seal(certApp, key, string(value)))
	}
	return s.Store.PutCert(ctx, key, value)
}

// Cert opens private keys.
func (s *Store) Cert(ctx context.Context, key string) (baton.CertEntry, error) {
	e, err := s.Store.Cert(ctx, key)
	if err != nil || !baton.IsCertKey(key) {
		return e, err
	}
	v, err := s.open(certApp, key, string(e.Value))
	if err != nil {
		return e, baton.Errorf(baton.ECONFLICT, "the private key %s in the certificate storage cannot be decrypted with this server's secret key: "+
			"controllers sharing a store need the same --secret-key file", key)
	}
	e.Value = []byte(v)
	return e, nil
}
