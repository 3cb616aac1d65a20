package baton

import (
	"context"
	"strings"
	"time"
)

// Domain is a custom host name served by one slot of one app, besides the
// slot's own APP.DOMAIN / APP-SLOT.DOMAIN name. It stays with its slot on a
// swap: swaps move revisions, not names.
type Domain struct {
	Name      string    `json:"name"`
	App       string    `json:"app"`
	Slot      string    `json:"slot"`
	CreatedAt time.Time `json:"created_at"`
}

// DomainStore keeps custom domains.
type DomainStore interface {
	// AddDomain claims d.Name for d.App's slot d.Slot in one transaction;
	// ECONFLICT naming the owning app and slot if the name is taken,
	// ENOTFOUND if the app or slot does not exist. The caller validates
	// the name (ValidateDomain). Deleting the slot or the app removes its
	// domains.
	AddDomain(ctx context.Context, d Domain) (Domain, error)
	// Domains lists the domains of app ("" for every app), by name.
	Domains(ctx context.Context, app string) ([]Domain, error)
	// DeleteDomain removes the domain name of app; ENOTFOUND if app has
	// no such domain.
	DeleteDomain(ctx context.Context, app, name string) error
}

// CertEntry is one value of the certificate storage.
type CertEntry struct {
	Key      string
	Value    []byte
	Modified time.Time
}

// CertStore keeps what the ACME client stores (certificates, their private
// keys, account data, challenge tokens) under slash-separated keys, so that
// every controller sharing the store serves the same certificates. Locks
// for it are leases (LeaseStore) under CertLockKey.
type CertStore interface {
	// PutCert creates or replaces the value of key.
	PutCert(ctx context.Context, key string, value []byte) error
	// Cert returns the entry of key; ENOTFOUND if there is none.
	Cert(ctx context.Context, key string) (CertEntry, error)
	// DeleteCert removes key and every key under key+"/"; ENOTFOUND if
	// there was none.
	DeleteCert(ctx context.Context, key string) error
	// CertKeys lists the keys under prefix+"/" ("" for all), by key,
	// without values.
	CertKeys(ctx context.Context, prefix string) ([]string, error)
}

// CertLockKey is the lease key that guards the certificate storage's lock
// name (an ACME client's "issue_cert_NAME" and the like).
func CertLockKey(name string) string { return "cert:" + name }

// IsCertKey reports whether a certificate storage key holds private key
// material, which the secrets wrapper seals.
func IsCertKey(key string) bool { return strings.HasSuffix(key, ".key") }

// ValidateDomain checks and normalizes a custom domain name: a fully
// qualified name of at least two lowercase LDH labels (letters, digits,
// '-'; IDNs in their ASCII "xn--" form), each 1-63 bytes, at most 253 in
// all, with no wildcard, no IP address, not "localhost" itself. A name
// under baton's own domain (batonDomain) is refused: baton serves those
// as APP.DOMAIN / APP-SLOT.DOMAIN already, and a claim there could take
// another app's name. Case and one trailing dot are normalized away.
func ValidateDomain(name, batonDomain string) (string, error) {
	n := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
	switch {
	case n == "":
		return "", Errorf(EINVALID, "domain name is empty; give a name like shop.example.com")
	case strings.Contains(n, "*"):
		return "", Errorf(EINVALID, "domain %q is a wildcard; add each name the app serves (shop.example.com, www.shop.example.com)", name)
	case len(n) > 253:
		return "", Errorf(EINVALID, "domain %q is longer than 253 bytes", name)
	}
	labels := strings.Split(n, ".")
	if len(labels) < 2 {
		return "", Errorf(EINVALID, "domain %q is a single label; give a fully qualified name like shop.example.com", name)
	}
	allDigits := true
	for _, l := range labels {
		if !ldhLabel(l) {
			return "", Errorf(EINVALID, "domain %q has the label %q, which is not a DNS label: use 1-63 letters, digits and '-', not starting or ending with '-' (international names in their xn-- form)", name, l)
		}
		if len(l) >= 4 && l[2:4] == "--" && !strings.HasPrefix(l, "xn") {
			return "", Errorf(EINVALID, "domain %q has the label %q with \"--\" in positions 3-4, which DNS reserves for encodings other than xn--", name, l)
		}
		if strings.Trim(l, "0123456789") != "" {
			allDigits = false
		}
	}
	if allDigits || strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", Errorf(EINVALID, "domain %q looks like an IP address; baton serves names, not addresses", name)
	}
	if n == "localhost" {
		return "", Errorf(EINVALID, "domain %q cannot be claimed", name)
	}
	if d := strings.ToLower(strings.TrimSuffix(batonDomain, ".")); d != "" && (n == d || strings.HasSuffix(n, "."+d)) {
		return "", Errorf(EINVALID, "domain %q is under baton's own domain %s, whose names baton gives each app and slot (APP.%s, APP-SLOT.%s); claim a name outside it", name, d, d, d)
	}
	return n, nil
}

// ldhLabel reports whether l is a lowercase LDH label of 1-63 bytes.
func ldhLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// SlotHost is the name baton gives a slot under its domain: APP.DOMAIN for
// production, APP-SLOT.DOMAIN for the others.
func SlotHost(app, slot, domain string) string {
	if slot == ProductionSlot {
		return app + "." + domain
	}
	return app + "-" + slot + "." + domain
}

// CertificateStatus is what a controller knows of the certificate of one
// name it serves over HTTPS.
type CertificateStatus struct {
	Name string `json:"name"`
	// Issuer is the issuing CA's name ("" until there is a certificate);
	// Static is set for a certificate the operator brought.
	Issuer    string     `json:"issuer,omitempty"`
	Static    bool       `json:"static,omitempty"`
	NotBefore *time.Time `json:"not_before,omitempty"`
	NotAfter  *time.Time `json:"not_after,omitempty"`
	// RenewedAt is when this controller last obtained or renewed it.
	RenewedAt *time.Time `json:"renewed_at,omitempty"`
	// LastError is the last failure to obtain or renew it (a failed
	// challenge among them), cleared by a success.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// CertRenewWindow is how close to its expiry a certificate that has not
// been renewed becomes a conflict.
const CertRenewWindow = 14 * 24 * time.Hour

// Overdue reports whether the certificate should have been renewed by
// now and was not: it expires within CertRenewWindow, and within the last
// third of its lifetime (when an ACME client renews), so short-lived
// certificates are judged by their own clock. A static certificate (which
// baton does not renew) is overdue within CertRenewWindow.
func (c CertificateStatus) Overdue(now time.Time) bool {
	if c.NotAfter == nil {
		return false
	}
	left := c.NotAfter.Sub(now)
	if c.NotBefore != nil && !c.Static {
		if third := c.NotAfter.Sub(*c.NotBefore) / 3; left >= third {
			return false
		}
	}
	return left < CertRenewWindow
}

// ErrDomainTaken is the refusal of a claim on a name another slot owns.
func ErrDomainTaken(owner Domain) error {
	return Errorf(ECONFLICT, "domain %s is already served by app %s (slot %s); remove it there first with `baton domains remove %s %s`",
		owner.Name, owner.App, owner.Slot, owner.App, owner.Name)
}

// ErrNoSuchDomain is the answer for a domain an app does not have.
func ErrNoSuchDomain(app, name string) error {
	return Errorf(ENOTFOUND, "app %s has no domain %s; `baton domains list %s` lists its domains", app, name, app)
}

// CertKeyRange is the half-open range [lo, hi) of the keys under
// prefix+"/" in byte order ("" for all keys: hi is empty then).
func CertKeyRange(prefix string) (lo, hi string) {
	if prefix == "" {
		return "", ""
	}
	return prefix + "/", prefix + "0" // '0' follows '/'
}
