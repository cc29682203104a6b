//go:build !cgo

package openssl_test

import (
	"crypto"
	"errors"
	"testing"

	"github.com/quillpay/quill/signing"
	"github.com/quillpay/quill/signing/openssl"
)

// TestUnavailableWithoutCgo: built with CGO_ENABLED=0 the backend says it is
// unavailable, so the server falls back to Go (auto) or refuses to start.
func TestUnavailableWithoutCgo(t *testing.T) {
	c, err := openssl.Load(openssl.DefaultLibrary)
	if c != nil || !errors.Is(err, openssl.ErrUnavailable) {
		t.Fatalf("Load = %v, %v; want ErrUnavailable", c, err)
	}
	var stub openssl.Crypto
	if _, err := stub.NewSigner(nil); !errors.Is(err, signing.ErrUnsupportedKey) || !errors.Is(err, openssl.ErrUnavailable) {
		t.Fatalf("NewSigner = %v", err)
	}
	if err := stub.Verify(nil, nil, nil, crypto.SHA256); !errors.Is(err, signing.ErrUnsupportedKey) {
		t.Fatalf("Verify = %v", err)
	}
}
