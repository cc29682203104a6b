package certs

import "errors"

// Errors returned by this package.
var (
	ErrNoIdentity = errors.New("certs: certificate names no merchant")
	ErrRevoked    = errors.New("certs: certificate revoked")
	ErrNotClient  = errors.New("certs: certificate not valid for client authentication")
)

// MerchantURIPrefix is the SAN URI form that names a merchant in a client
// certificate: quill://merchant/<id>. It takes precedence over the subject CN.
const MerchantURIPrefix = "quill://merchant/"
