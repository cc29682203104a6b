package metrics

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"io"
	"time"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/signing"
)

// Scheme label values.
const (
	SchemeA = "wechatpay"           // WeChat Pay APIv3 (scheme A)
	SchemeB = signing.SchemeHTTPSig // RFC 9421 HTTP Message Signatures (scheme B)
)

// verifyResult names a verification outcome by the signing sentinel it
// matches: a fixed set, never error text.
func verifyResult(err error) string {
	for _, r := range []struct {
		err  error
		name string
	}{
		{signing.ErrReplay, "replay"},
		{signing.ErrBadSignature, "bad_signature"},
		{signing.ErrBadDigest, "bad_digest"},
		{signing.ErrStale, "stale"},
		{signing.ErrUnknownKey, "unknown_key"},
		{signing.ErrWrongMerchant, "wrong_merchant"},
		{signing.ErrAlgorithm, "algorithm"},
		{signing.ErrCoverage, "coverage"},
		{signing.ErrMalformed, "malformed"},
		{signing.ErrUnavailable, "unavailable"},
	} {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	if err == nil {
		return "ok"
	}
	return "error"
}

// Authenticator counts the verifications of next in both schemes. Scheme A
// signatures (RSA PKCS#1 v1.5 SHA-256, the only scheme A algorithm) run on
// backend (signing.Crypto.Name()); scheme B ones (signing.MessageVerifier)
// always on Go's crypto, under the algorithm the verified key names.
func (m *Metrics) Authenticator(next api.Authenticator, backend string) api.Authenticator {
	return &authenticator{next: next, m: m, backend: backend, alg: string(signing.RSAPKCS1SHA256)}
}

type authenticator struct {
	next         api.Authenticator
	m            *Metrics
	backend, alg string
}

func (a *authenticator) Verify(ctx context.Context, r signing.Request) (signing.Verified, error) {
	v, err := a.next.Verify(ctx, r)
	a.m.verifications.WithLabelValues(SchemeA, a.alg, a.backend, verifyResult(err)).Inc()
	return v, err
}

// schemeBBackend is the backend of every scheme B verification and response
// signature: signing.MessageVerifier has no Crypto, and cmd/quill signs
// scheme B answers on Go's crypto whatever --crypto says.
var schemeBBackend = signing.GoCrypto{}.Name()

func (a *authenticator) VerifyMessage(ctx context.Context, r signing.MessageRequest) (signing.Verified, error) {
	v, err := a.next.VerifyMessage(ctx, r)
	a.m.ObserveVerification(SchemeB, v.Algorithm, schemeBBackend, err)
	return v, err
}

// ObserveVerification counts one verification of scheme with algorithm
// (signing.Algorithm, or "" when the request never named a usable key) on
// backend, whose outcome was err; for verifiers other than scheme A's.
func (m *Metrics) ObserveVerification(scheme string, algorithm signing.Algorithm, backend string, err error) {
	alg := string(algorithm)
	if alg == "" {
		alg = "unknown"
	}
	m.verifications.WithLabelValues(scheme, alg, backend, verifyResult(err)).Inc()
}

// NonceStore times and counts the claims of next.
func (m *Metrics) NonceStore(next signing.NonceStore) signing.NonceStore {
	return &nonceStore{next: next, m: m}
}

type nonceStore struct {
	next signing.NonceStore
	m    *Metrics
}

func (s *nonceStore) Claim(ctx context.Context, merchant, nonce string, ttl time.Duration) error {
	start := time.Now()
	err := s.next.Claim(ctx, merchant, nonce, ttl)
	s.m.nonceDuration.Observe(time.Since(start).Seconds())
	result := "ok"
	switch {
	case errors.Is(err, signing.ErrReplay):
		result = "replay"
	case err != nil:
		result = "error"
	}
	s.m.nonceClaims.WithLabelValues(result).Inc()
	return err
}

// PlatformKeys times and counts the response signatures made with the
// signers next hands out, under scheme and backend (the signing.Crypto the
// signers run on). The algorithm label follows each signer's key and options.
func (m *Metrics) PlatformKeys(next signing.PlatformKeys, scheme, backend string) signing.PlatformKeys {
	return &platformKeys{next: next, m: m, scheme: scheme, backend: backend}
}

type platformKeys struct {
	next            signing.PlatformKeys
	m               *Metrics
	scheme, backend string
}

func (p *platformKeys) SigningKey(ctx context.Context) (string, crypto.Signer, error) {
	serial, s, err := p.next.SigningKey(ctx)
	if err != nil {
		return serial, s, err
	}
	// A fresh wrapper each time (one small allocation): comparing signers to
	// reuse one would panic on uncomparable key types such as Ed25519's.
	return serial, &countingSigner{inner: s, p: p}, nil
}

// countingSigner is a crypto.Signer that records each signature.
type countingSigner struct {
	inner crypto.Signer
	p     *platformKeys
}

func (c *countingSigner) Public() crypto.PublicKey { return c.inner.Public() }

func (c *countingSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	start := time.Now()
	sig, err := c.inner.Sign(rand, digest, opts)
	took := time.Since(start)
	alg := algorithmOf(c.inner.Public(), opts)
	result := "ok"
	if err != nil {
		result = "error"
	}
	c.p.m.signatures.WithLabelValues(c.p.scheme, alg, c.p.backend, result).Inc()
	if err == nil {
		c.p.m.signDuration.WithLabelValues(c.p.scheme, alg, c.p.backend).Observe(took.Seconds())
	}
	return sig, err
}

// algorithmOf names the signature algorithm of pub under opts with the RFC
// 9421 registry names, which also cover scheme A's RSA PKCS#1 v1.5 SHA-256.
func algorithmOf(pub crypto.PublicKey, opts crypto.SignerOpts) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			if pss.Hash == crypto.SHA512 {
				return string(signing.RSAPSSSHA512)
			}
			return "rsa-pss"
		}
		if opts != nil && opts.HashFunc() == crypto.SHA256 {
			return string(signing.RSAPKCS1SHA256)
		}
		return "rsa-v1_5"
	case *ecdsa.PublicKey:
		return string(signing.ECDSAP256SHA256)
	case ed25519.PublicKey:
		return string(signing.Ed25519)
	}
	return "other"
}
