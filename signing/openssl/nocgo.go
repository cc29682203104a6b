//go:build !cgo

package openssl

import (
	"crypto"
	"fmt"

	"github.com/quillpay/quill/signing"
)

// Crypto is the OpenSSL backend. Built without cgo there is none: Load
// always fails and the methods refuse every key.
type Crypto struct{}

// Load reports that OpenSSL is unavailable in a build without cgo.
func Load(lib string) (*Crypto, error) {
	return nil, fmt.Errorf("%w: built without cgo (CGO_ENABLED=0)", ErrUnavailable)
}

// Name returns "openssl".
func (*Crypto) Name() string { return "openssl" }

// Version returns "unavailable".
func (*Crypto) Version() string { return "unavailable" }

// NewSigner refuses every key.
func (*Crypto) NewSigner(crypto.Signer) (crypto.Signer, error) {
	return nil, fmt.Errorf("%w: %w", signing.ErrUnsupportedKey, ErrUnavailable)
}

// Verify refuses every key.
func (*Crypto) Verify(crypto.PublicKey, []byte, []byte, crypto.SignerOpts) error {
	return fmt.Errorf("%w: %w", signing.ErrUnsupportedKey, ErrUnavailable)
}
