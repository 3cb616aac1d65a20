package main

import (
	"crypto/tls"
	"errors"

	"github.com/batonhq/baton/internal/selfsigned"
)

// tlsConfig is nil for plain HTTP, else the configuration of -tls (a
// self-signed ECDSA P-256 certificate for 127.0.0.1 and *.localhost) or
// of -tls-cert and -tls-key.
func tlsConfig(selfSigned bool, certFile, keyFile string) (*tls.Config, error) {
	switch {
	case selfSigned && (certFile != "" || keyFile != ""):
		return nil, errors.New("-tls makes its own certificate: give it or -tls-cert and -tls-key, not both")
	case (certFile == "") != (keyFile == ""):
		return nil, errors.New("-tls-cert and -tls-key go together")
	case certFile != "":
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		return &tls.Config{Certificates: []tls.Certificate{pair}}, nil
	case !selfSigned:
		return nil, nil
	}
	c, err := selfsigned.New("batonproxy bench")
	if err != nil {
		return nil, err
	}
	return c.Config(), nil
}
