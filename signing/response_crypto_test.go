package signing_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"testing"

	"github.com/quillpay/quill/signing"
)

// TestVerifyResponseWith checks that a backend's verification of a response
// agrees with VerifyResponse: the genuine signature passes, and a changed
// body, timestamp, nonce, key or an undecodable signature fails with
// ErrBadSignature. (signing/openssl's tests pin the OpenSSL arithmetic to
// Go's; cmd/quill-load runs this path with it.)
func TestVerifyResponseWith(t *testing.T) {
	other := loadKey(t, "other-rsa.key.pem")
	for _, name := range []string{"test-key-rsa.key.pem", "test-key-ecc-p256.key.pem", "test-key-ed25519.key.pem"} {
		key := loadKey(t, name)
		t.Run(name, func(t *testing.T) {
			s := &signing.ResponseSigner{Keys: platformKeys{"P1", key}, Now: clock}
			body := []byte(`{"id":"P1","amount":"12.34"}`)
			sig, err := s.Sign(context.Background(), body)
			if err != nil {
				t.Fatal(err)
			}
			var c signing.Crypto = signing.GoCrypto{}
			if err := signing.VerifyResponseWith(c, key.Public(), sig, body); err != nil {
				t.Fatalf("genuine: %v", err)
			}
			stale, badNonce, notB64 := sig, sig, sig
			stale.Timestamp = "1700000001"
			badNonce.Nonce = "X" + sig.Nonce[1:]
			notB64.Signature = "!" + sig.Signature
			for what, tc := range map[string]struct {
				pub  crypto.PublicKey
				sig  signing.ResponseSignature
				body []byte
			}{
				"body":                 {key.Public(), sig, append(bytes.Clone(body), ' ')},
				"timestamp":            {key.Public(), stale, body},
				"nonce":                {key.Public(), badNonce, body},
				"signature not base64": {key.Public(), notB64, body},
				"other key":            {other.Public(), sig, body},
			} {
				err := signing.VerifyResponseWith(c, tc.pub, tc.sig, tc.body)
				want := signing.VerifyResponse(tc.pub, tc.sig, tc.body)
				if !errors.Is(err, signing.ErrBadSignature) || !errors.Is(want, signing.ErrBadSignature) {
					t.Errorf("tampered %s: VerifyResponseWith = %v, VerifyResponse = %v; want ErrBadSignature from both", what, err, want)
				}
			}
		})
	}
}
