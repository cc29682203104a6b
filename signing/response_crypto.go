package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// VerifyResponseWith is VerifyResponse with c's arithmetic, for a client that
// verifies many responses and wants a faster backend than Go's (the OpenSSL
// one in signing/openssl verifies RSA-2048 faster; see docs/BENCHMARKS.md).
// It returns an error wrapping ErrBadSignature if the signature does not
// verify or is not base64, one wrapping ErrUnsupportedKey if c cannot use
// pub, and nil otherwise. Like VerifyResponse it does not check the
// timestamp's freshness.
func VerifyResponseWith(c Crypto, pub crypto.PublicKey, sig ResponseSignature, body []byte) error {
	raw, err := base64.StdEncoding.DecodeString(sig.Signature)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", ErrBadSignature)
	}
	msg := responseMessage(sig.Timestamp, sig.Nonce, body)
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		return c.Verify(pub, d[:], raw, crypto.SHA256)
	case ed25519.PublicKey:
		return c.Verify(pub, msg, raw, crypto.Hash(0))
	}
	return fmt.Errorf("%w: unsupported key type %T", ErrBadSignature, pub)
}
