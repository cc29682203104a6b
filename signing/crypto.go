package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrUnsupportedKey means a Crypto backend cannot use a key: its type, curve
// or shape is not one the backend implements, or the key is inconsistent (its
// private half does not produce signatures its public half verifies).
var ErrUnsupportedKey = errors.New("signing: key not usable by the crypto backend")

// Crypto is the arithmetic behind Quill's signatures: load a private key into
// a signer, and verify a signature with a public key. Quill has two: GoCrypto
// (the standard library, always there) and the OpenSSL one in signing/openssl.
// Both implement the same algorithms with the crypto.Signer conventions:
//
//   - RSA PKCS#1 v1.5: digest is the hash of the message, opts its crypto.Hash.
//   - RSA-PSS: opts is an *rsa.PSSOptions (SaltLength as in crypto/rsa).
//   - ECDSA P-256: digest is the hash, the signature ASN.1 DER.
//   - Ed25519: digest is the message itself, opts crypto.Hash(0).
//
// RSA PKCS#1 v1.5 signatures are deterministic, so every backend produces the
// same bytes for the same key and digest; a backend's signatures verify with
// every other backend. Implementations are safe for concurrent use, and so are
// the signers they return.
type Crypto interface {
	// Name is the backend's short name for logs and readiness: "go" or "openssl".
	Name() string
	// Version describes the implementation, e.g. the Go or OpenSSL version.
	Version() string
	// NewSigner loads key's private half into the backend and returns a signer
	// with the same public key. It returns an error wrapping ErrUnsupportedKey
	// if the backend cannot load the key or the loaded key fails CheckSigner.
	// The error never contains key material.
	NewSigner(key crypto.Signer) (crypto.Signer, error)
	// Verify checks that sig is pub's signature of digest under opts. It
	// returns an error wrapping ErrBadSignature if it is not, and one wrapping
	// ErrUnsupportedKey if the backend cannot use pub or opts.
	Verify(pub crypto.PublicKey, digest, sig []byte, opts crypto.SignerOpts) error
}

// GoCrypto is the Crypto of Go's standard library (crypto/rsa, crypto/ecdsa,
// crypto/ed25519). It needs no setup and is the default wherever a Crypto is
// optional.
type GoCrypto struct{}

// Name returns "go".
func (GoCrypto) Name() string { return "go" }

// Version returns the Go version the program was built with.
func (GoCrypto) Version() string { return runtime.Version() }

// NewSigner returns key itself once it passes CheckSigner: Go's own keys need
// no loading. key must be an *rsa.PrivateKey (two primes or more), an
// *ecdsa.PrivateKey on P-256 or an ed25519.PrivateKey.
func (GoCrypto) NewSigner(key crypto.Signer) (crypto.Signer, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("%w: RSA key is inconsistent", ErrUnsupportedKey)
		}
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: ECDSA key is not on P-256", ErrUnsupportedKey)
		}
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("%w: Ed25519 key has %d bytes", ErrUnsupportedKey, len(k))
		}
	default:
		return nil, fmt.Errorf("%w: key type %T", ErrUnsupportedKey, key)
	}
	if err := CheckSigner(key); err != nil {
		return nil, err
	}
	return key, nil
}

// Verify checks sig with crypto/rsa, crypto/ecdsa or crypto/ed25519.
func (GoCrypto) Verify(pub crypto.PublicKey, digest, sig []byte, opts crypto.SignerOpts) error {
	if opts == nil {
		return fmt.Errorf("%w: no signature options", ErrUnsupportedKey)
	}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		var err error
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			err = rsa.VerifyPSS(pub, pss.Hash, digest, sig, pss)
		} else {
			err = rsa.VerifyPKCS1v15(pub, opts.HashFunc(), digest, sig)
		}
		if err != nil {
			return ErrBadSignature
		}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return fmt.Errorf("%w: ECDSA key is not on P-256", ErrUnsupportedKey)
		}
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return ErrBadSignature
		}
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize || opts.HashFunc() != 0 {
			return fmt.Errorf("%w: Ed25519 needs a %d-byte key and the message itself", ErrUnsupportedKey, ed25519.PublicKeySize)
		}
		if !ed25519.Verify(pub, digest, sig) {
			return ErrBadSignature
		}
	default:
		return fmt.Errorf("%w: key type %T", ErrUnsupportedKey, pub)
	}
	return nil
}

// CheckSigner signs a fixed message with s, in the key's default algorithm
// (PKCS#1 v1.5 SHA-256 for RSA, SHA-256 for ECDSA, pure Ed25519), and verifies
// the signature with GoCrypto against s.Public(). A backend calls it when it
// loads a key, so a key it cannot use, or mis-loaded, is refused then rather
// than at the first request. Errors wrap ErrUnsupportedKey.
func CheckSigner(s crypto.Signer) error {
	msg := []byte("quill signing backend self-test\n")
	d := sha256.Sum256(msg)
	digest, opts := d[:], crypto.SignerOpts(crypto.SHA256)
	if _, ok := s.Public().(ed25519.PublicKey); ok {
		digest, opts = msg, crypto.Hash(0)
	}
	sig, err := s.Sign(rand.Reader, digest, opts)
	if err != nil {
		return fmt.Errorf("%w: self-test signature: %w", ErrUnsupportedKey, err)
	}
	if err := (GoCrypto{}).Verify(s.Public(), digest, sig, opts); err != nil {
		return fmt.Errorf("%w: self-test signature does not verify with the public key", ErrUnsupportedKey)
	}
	return nil
}

// BackendKeys is PlatformKeys whose signer runs on Crypto: it loads each
// platform key Keys returns into Crypto once and hands out the loaded signer
// while the key stays current. It is safe for concurrent use.
type BackendKeys struct {
	keys   PlatformKeys
	crypto Crypto
	mu     sync.Mutex // serializes loads
	cur    atomic.Pointer[loadedKey]
}

type loadedKey struct {
	serial string
	pub    interface{ Equal(crypto.PublicKey) bool }
	signer crypto.Signer
}

// NewBackendKeys wraps keys so that their signers run on c.
func NewBackendKeys(keys PlatformKeys, c Crypto) *BackendKeys {
	return &BackendKeys{keys: keys, crypto: c}
}

// SigningKey returns the current platform key id and its signer loaded into
// the backend. It returns the error of the wrapped PlatformKeys as is, and
// one wrapping ErrUnsupportedKey if the backend cannot load the key.
func (b *BackendKeys) SigningKey(ctx context.Context) (string, crypto.Signer, error) {
	serial, key, err := b.keys.SigningKey(ctx)
	if err != nil {
		return "", nil, err
	}
	if l := b.cur.Load(); l != nil && l.serial == serial && l.pub.Equal(key.Public()) {
		return serial, l.signer, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if l := b.cur.Load(); l != nil && l.serial == serial && l.pub.Equal(key.Public()) {
		return serial, l.signer, nil
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return "", nil, fmt.Errorf("%w: platform key %s: public key type %T", ErrUnsupportedKey, serial, key.Public())
	}
	s, err := b.crypto.NewSigner(key)
	if err != nil {
		return "", nil, fmt.Errorf("platform key %s on %s: %w", serial, b.crypto.Name(), err)
	}
	b.cur.Store(&loadedKey{serial: serial, pub: pub, signer: s})
	return serial, s, nil
}

// verifyPKCS1 checks an RSA PKCS#1 v1.5 SHA-256 signature with v.Crypto.
// Verify keeps digest and sig on its stack; handing them to an interface
// method (or to GoCrypto.Verify, whose other algorithms let them escape)
// would move them to the heap on every request, so the Go path calls
// crypto/rsa itself and only another backend pays for copies.
func (v *Verifier) verifyPKCS1(pub *rsa.PublicKey, digest, sig []byte) error {
	switch c := v.Crypto.(type) {
	case nil, GoCrypto:
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig) != nil {
			return ErrBadSignature
		}
		return nil
	default:
		return c.Verify(pub, bytes.Clone(digest), bytes.Clone(sig), crypto.SHA256)
	}
}
