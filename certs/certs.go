package certs

import "errors"

// Errors returned by this package.
var (
	ErrNoIdentity = errors.New("certs: certificate names no merchant")
	ErrRevoked    = errors.New("certs: certificate revoked")
	ErrNotClient  = errors.New("certs: certificate not valid for client authentication")
	// ErrBadMaterial is TLS material (a certificate, key, bundle or CRL)
	// that cannot be used; the last good material stays in force.
	ErrBadMaterial = errors.New("certs: unusable TLS material")
	// ErrNotLoaded means no good material of some kind was loaded yet.
	ErrNotLoaded = errors.New("certs: TLS material not loaded")
)

// MerchantURIPrefix is the SAN URI form that names a merchant in a client
// certificate: quill://merchant/<id>. It takes precedence over the subject CN.
const MerchantURIPrefix = "quill://merchant/"
