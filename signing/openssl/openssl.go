//go:build cgo

package openssl

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"io"
	"math/big"
	"runtime"
	"sync"
	"weak"

	"github.com/golang-fips/openssl/v2"
	"github.com/golang-fips/openssl/v2/bbig"

	"github.com/quillpay/quill/signing"
)

// Crypto is the OpenSSL backend, a signing.Crypto. Make it with Load; it is
// safe for concurrent use. Public keys passed to Verify are loaded into
// OpenSSL once and cached while the Go key is alive; like crypto/rsa's own
// precomputations, the cache assumes a key is not modified after first use
// (a modified key is noticed and reloaded).
type Crypto struct {
	version string
	ed25519 bool
	rsaPubs cache[rsa.PublicKey, *openssl.PublicKeyRSA]
	ecPubs  cache[ecdsa.PublicKey, *openssl.PublicKeyECDSA]
}

// Load opens the libcrypto shared library lib (DefaultLibrary normally) with
// dlopen and initializes it. Only the first call in a process initializes the
// library; later calls return the first call's outcome whatever lib they name.
// It returns an error wrapping ErrUnavailable if the library does not load.
func Load(lib string) (*Crypto, error) {
	if err := openssl.Init(lib); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, lib, err)
	}
	return &Crypto{version: openssl.VersionText(), ed25519: openssl.SupportsEd25519()}, nil
}

// Name returns "openssl".
func (*Crypto) Name() string { return "openssl" }

// Version returns OpenSSL's version text, e.g. "OpenSSL 3.0.17 1 Jul 2025".
func (c *Crypto) Version() string { return c.version }

// NewSigner copies key into OpenSSL and returns a signer for it. key must be
// an *rsa.PrivateKey with two primes (PKCS#1 v1.5 and PSS), an
// *ecdsa.PrivateKey on P-256 or an ed25519.PrivateKey (pure Ed25519 only,
// if the library implements it). The loaded key must pass
// signing.CheckSigner. Errors wrap signing.ErrUnsupportedKey.
func (c *Crypto) NewSigner(key crypto.Signer) (crypto.Signer, error) {
	var s crypto.Signer
	var err error
	switch k := key.(type) {
	case *rsa.PrivateKey:
		s, err = newRSASigner(k)
	case *ecdsa.PrivateKey:
		s, err = newECDSASigner(k)
	case ed25519.PrivateKey:
		if !c.ed25519 {
			return nil, fmt.Errorf("%w: this OpenSSL has no Ed25519", signing.ErrUnsupportedKey)
		}
		s, err = newEd25519Signer(k)
	default:
		return nil, fmt.Errorf("%w: key type %T", signing.ErrUnsupportedKey, key)
	}
	if err != nil {
		return nil, err
	}
	if err := signing.CheckSigner(s); err != nil {
		return nil, err
	}
	return s, nil
}

// unsupported wraps an OpenSSL error. OpenSSL's messages name functions and
// reasons, never key material.
func unsupported(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", signing.ErrUnsupportedKey, what, err)
}

// redacted keeps signers from printing anything but their type.
type redacted struct{}

func (redacted) String() string { return "openssl.Signer{REDACTED}" }

// Format redacts for every verb, including %#v.
func (r redacted) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

// GoString redacts.
func (r redacted) GoString() string { return r.String() }

type rsaSigner struct {
	redacted
	pub  *rsa.PublicKey
	priv *openssl.PrivateKeyRSA
}

func newRSASigner(k *rsa.PrivateKey) (*rsaSigner, error) {
	if len(k.Primes) != 2 {
		return nil, fmt.Errorf("%w: RSA key with %d primes (OpenSSL backend takes 2)", signing.ErrUnsupportedKey, len(k.Primes))
	}
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("%w: RSA key is inconsistent", signing.ErrUnsupportedKey)
	}
	p, q := k.Primes[0], k.Primes[1]
	dp, dq, qinv := k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv
	if dp == nil || dq == nil || qinv == nil {
		// Computed here rather than by k.Precompute, which would modify the
		// caller's key.
		one := big.NewInt(1)
		dp = new(big.Int).Mod(k.D, new(big.Int).Sub(p, one))
		dq = new(big.Int).Mod(k.D, new(big.Int).Sub(q, one))
		qinv = new(big.Int).ModInverse(q, p)
	}
	priv, err := openssl.NewPrivateKeyRSA(bbig.Enc(k.N), bbig.Enc(big.NewInt(int64(k.E))), bbig.Enc(k.D),
		bbig.Enc(p), bbig.Enc(q), bbig.Enc(dp), bbig.Enc(dq), bbig.Enc(qinv))
	if err != nil {
		return nil, unsupported("load RSA key", err)
	}
	return &rsaSigner{pub: &k.PublicKey, priv: priv}, nil
}

func (s *rsaSigner) Public() crypto.PublicKey { return s.pub }

// Sign signs digest with RSASSA-PSS if opts is an *rsa.PSSOptions, with
// PKCS#1 v1.5 otherwise. rand is not used: both are computed in OpenSSL.
func (s *rsaSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	h := opts.HashFunc()
	if !sha2Digest(h, digest) {
		return nil, fmt.Errorf("openssl: RSA signs a SHA-256, SHA-384 or SHA-512 digest of the right length")
	}
	if pss, ok := opts.(*rsa.PSSOptions); ok {
		return openssl.SignRSAPSS(s.priv, h, digest, pss.SaltLength)
	}
	return openssl.SignRSAPKCS1v15(s.priv, h, digest)
}

// sha2Digest reports whether digest is a digest of h, one of the hashes the
// RSA signatures here use.
func sha2Digest(h crypto.Hash, digest []byte) bool {
	switch h {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
		return len(digest) == h.Size()
	}
	return false
}

type ecdsaSigner struct {
	redacted
	pub  *ecdsa.PublicKey
	priv *openssl.PrivateKeyECDSA
}

func newECDSASigner(k *ecdsa.PrivateKey) (*ecdsaSigner, error) {
	if k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: ECDSA key is not on P-256", signing.ErrUnsupportedKey)
	}
	d, err := k.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: ECDSA key is invalid", signing.ErrUnsupportedKey)
	}
	x, y, err := ecPoint(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	priv, err := openssl.NewPrivateKeyECDSA("P-256", x, y, bbig.Enc(new(big.Int).SetBytes(d)))
	if err != nil {
		return nil, unsupported("load ECDSA key", err)
	}
	return &ecdsaSigner{pub: &k.PublicKey, priv: priv}, nil
}

// ecPoint returns pub's coordinates for OpenSSL.
func ecPoint(pub *ecdsa.PublicKey) (x, y openssl.BigInt, err error) {
	b, err := pub.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil || len(b) != 65 {
		return nil, nil, fmt.Errorf("%w: ECDSA public key is invalid", signing.ErrUnsupportedKey)
	}
	return bbig.Enc(new(big.Int).SetBytes(b[1:33])), bbig.Enc(new(big.Int).SetBytes(b[33:])), nil
}

func (s *ecdsaSigner) Public() crypto.PublicKey { return s.pub }

// Sign returns an ASN.1 DER ECDSA signature of digest; the nonce comes from
// OpenSSL's generator, not from rand.
func (s *ecdsaSigner) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	return openssl.SignMarshalECDSA(s.priv, digest)
}

type ed25519Signer struct {
	redacted
	pub  ed25519.PublicKey
	priv *openssl.PrivateKeyEd25519
}

func newEd25519Signer(k ed25519.PrivateKey) (*ed25519Signer, error) {
	if len(k) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: Ed25519 key has %d bytes", signing.ErrUnsupportedKey, len(k))
	}
	priv, err := openssl.NewPrivateKeyEd25519FromSeed(k.Seed())
	if err != nil {
		return nil, unsupported("load Ed25519 key", err)
	}
	return &ed25519Signer{pub: k.Public().(ed25519.PublicKey), priv: priv}, nil
}

func (s *ed25519Signer) Public() crypto.PublicKey { return s.pub }

// Sign signs message (not a digest) with pure Ed25519; opts must be
// crypto.Hash(0) (Ed25519ph and contexts are not supported).
func (s *ed25519Signer) Sign(_ io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != 0 {
		return nil, fmt.Errorf("openssl: Ed25519 signs the message itself (crypto.Hash(0))")
	}
	if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
		return nil, fmt.Errorf("openssl: Ed25519 contexts are not supported")
	}
	return openssl.SignEd25519(s.priv, message)
}

// Verify checks sig in OpenSSL, with the conventions of signing.Crypto.
func (c *Crypto) Verify(pub crypto.PublicKey, digest, sig []byte, opts crypto.SignerOpts) error {
	if opts == nil {
		return fmt.Errorf("%w: no signature options", signing.ErrUnsupportedKey)
	}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		h := opts.HashFunc()
		if !sha2Digest(h, digest) {
			if h != crypto.SHA256 && h != crypto.SHA384 && h != crypto.SHA512 {
				return fmt.Errorf("%w: RSA verifies a SHA-256, SHA-384 or SHA-512 digest", signing.ErrUnsupportedKey)
			}
			return signing.ErrBadSignature
		}
		k, err := c.rsaPubs.get(pub, loadRSAPublic)
		if err != nil {
			return err
		}
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			err = openssl.VerifyRSAPSS(k, h, digest, sig, pss.SaltLength)
		} else {
			err = openssl.VerifyRSAPKCS1v15(k, h, digest, sig)
		}
		if err != nil {
			return signing.ErrBadSignature
		}
	case *ecdsa.PublicKey:
		k, err := c.ecPubs.get(pub, loadECDSAPublic)
		if err != nil {
			return err
		}
		if !openssl.VerifyECDSA(k, digest, sig) {
			return signing.ErrBadSignature
		}
	case ed25519.PublicKey:
		if !c.ed25519 {
			return fmt.Errorf("%w: this OpenSSL has no Ed25519", signing.ErrUnsupportedKey)
		}
		if len(pub) != ed25519.PublicKeySize || opts.HashFunc() != 0 {
			return fmt.Errorf("%w: Ed25519 needs a %d-byte key and the message itself", signing.ErrUnsupportedKey, ed25519.PublicKeySize)
		}
		k, err := openssl.NewPublicKeyEd25119(pub)
		if err != nil {
			return unsupported("load Ed25519 public key", err)
		}
		if openssl.VerifyEd25519(k, digest, sig) != nil {
			return signing.ErrBadSignature
		}
	default:
		return fmt.Errorf("%w: key type %T", signing.ErrUnsupportedKey, pub)
	}
	return nil
}

func loadRSAPublic(pub *rsa.PublicKey) (*openssl.PublicKeyRSA, func(*rsa.PublicKey) bool, error) {
	// crypto/rsa refuses keys under 1024 bits; so does this backend, to
	// accept exactly what GoCrypto accepts.
	if pub.N == nil || pub.N.BitLen() < 1024 || pub.E < 2 {
		return nil, nil, fmt.Errorf("%w: RSA public key is too small or invalid", signing.ErrUnsupportedKey)
	}
	k, err := openssl.NewPublicKeyRSA(bbig.Enc(pub.N), bbig.Enc(big.NewInt(int64(pub.E))))
	if err != nil {
		return nil, nil, unsupported("load RSA public key", err)
	}
	n, e := new(big.Int).Set(pub.N), pub.E
	return k, func(p *rsa.PublicKey) bool { return p.E == e && p.N != nil && p.N.Cmp(n) == 0 }, nil
}

func loadECDSAPublic(pub *ecdsa.PublicKey) (*openssl.PublicKeyECDSA, func(*ecdsa.PublicKey) bool, error) {
	if pub.Curve != elliptic.P256() {
		return nil, nil, fmt.Errorf("%w: ECDSA key is not on P-256", signing.ErrUnsupportedKey)
	}
	x, y, err := ecPoint(pub)
	if err != nil {
		return nil, nil, err
	}
	k, err := openssl.NewPublicKeyECDSA("P-256", x, y)
	if err != nil {
		return nil, nil, unsupported("load ECDSA public key", err)
	}
	orig, _ := pub.Bytes()
	return k, func(p *ecdsa.PublicKey) bool {
		b, err := p.Bytes()
		return err == nil && p.Curve == elliptic.P256() && string(b) == string(orig)
	}, nil
}

// cache maps Go public keys to their OpenSSL copies. Entries are keyed by a
// weak pointer, so the cache does not keep a key alive, and are removed once
// the Go key is collected.
type cache[K, V any] struct{ m sync.Map } // weak.Pointer[K] → *cached[K, V]

type cached[K, V any] struct {
	v    V
	same func(*K) bool // whether the Go key still holds what was loaded
}

func (c *cache[K, V]) get(k *K, load func(*K) (V, func(*K) bool, error)) (V, error) {
	wp := weak.Make(k)
	if e, ok := c.m.Load(wp); ok {
		if e := e.(*cached[K, V]); e.same(k) {
			return e.v, nil
		}
	}
	v, same, err := load(k)
	if err != nil {
		return v, err
	}
	if _, replaced := c.m.Swap(wp, &cached[K, V]{v: v, same: same}); !replaced {
		runtime.AddCleanup(k, func(wp weak.Pointer[K]) { c.m.Delete(wp) }, wp)
	}
	return v, nil
}
