package signing_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/signing"
)

// Test identities. testdata/test-key-rsa.key.pem is the RSA-2048 key of RFC 9421
// Appendix B.1.1; other-rsa.key.pem is an unrelated RSA-2048 key.
const (
	merchant = "1900000001"
	serial   = "test-key-rsa"
)

// now is the fake clock's time in every test.
var now = time.Unix(1700000000, 0)

func clock() time.Time { return now }

// loadKey reads a PEM private key (PKCS #1, SEC 1 or PKCS #8) from testdata.
func loadKey(tb testing.TB, name string) crypto.Signer {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		tb.Fatalf("%s: no PEM block", name)
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return key.(crypto.Signer)
}

// keyMap is an in-memory KeyResolver keyed by "merchant/serial".
type keyMap map[string]crypto.PublicKey

func (m keyMap) VerifyingKey(_ context.Context, merchant, keyID string, _ time.Time) (crypto.PublicKey, error) {
	if k, ok := m[merchant+"/"+keyID]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: %s/%s", signing.ErrUnknownKey, merchant, keyID)
}

// errResolver fails every lookup with err.
type errResolver struct{ err error }

func (r errResolver) VerifyingKey(context.Context, string, string, time.Time) (crypto.PublicKey, error) {
	return nil, r.err
}

// memNonces is an in-memory NonceStore that ignores expiry; err, if set, is
// returned by every Claim.
type memNonces struct {
	mu    sync.Mutex
	seen  map[string]bool
	calls int
	ttl   time.Duration
	err   error
}

func (s *memNonces) Claim(_ context.Context, merchant, nonce string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.ttl = ttl
	if s.err != nil {
		return s.err
	}
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	k := merchant + "\x00" + nonce
	if s.seen[k] {
		return signing.ErrReplay
	}
	s.seen[k] = true
	return nil
}

// noNonces accepts every nonce.
type noNonces struct{}

func (noNonces) Claim(context.Context, string, string, time.Duration) error { return nil }

// platformKeys is a fixed PlatformKeys.
type platformKeys struct {
	serial string
	key    crypto.Signer
}

func (p platformKeys) SigningKey(context.Context) (string, crypto.Signer, error) {
	return p.serial, p.key, nil
}
