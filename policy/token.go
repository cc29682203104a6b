package policy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenKeys finds the public keys that verify payer tokens.
type TokenKeys interface {
	// TokenKey returns the public key with id kid (an ed25519.PublicKey,
	// *ecdsa.PublicKey or *rsa.PublicKey). It returns an error if kid is
	// unknown, and one wrapping ErrUnavailable if the key store cannot answer.
	TokenKey(ctx context.Context, kid string) (crypto.PublicKey, error)
}

// Denylist says whether a payer token has been revoked.
type Denylist interface {
	// Denied reports whether the token id jti or the subject is denied. An
	// error means the denylist cannot answer.
	Denied(ctx context.Context, jti, subject string) (bool, error)
}

// maxTokenLen rejects absurd tokens before any parsing work.
const maxTokenLen = 8 << 10

// TokenVerifier is the PayerVerifier for JWTs issued by the platform's login
// service. The algorithm is pinned: a token naming any other "alg" (including
// "none" or an HMAC algorithm keyed with a public key) is rejected before a
// key is looked up. Tokens must carry a "kid" header and "sub", "jti", "exp",
// the configured "iss" and an "aud" containing Audience; "nbf" is honoured when
// present. All fields must be set before first use and not changed after.
type TokenVerifier struct {
	Keys      TokenKeys
	Denylist  Denylist // required: revocation is never skipped
	Issuer    string
	Audience  string
	Algorithm string           // pinned JWS alg, e.g. "EdDSA", "ES256", "RS256"
	Now       func() time.Time // nil means time.Now
	Leeway    time.Duration    // clock skew allowed on exp and nbf
}

// VerifyPayer verifies token and returns its payer. It returns an error
// wrapping ErrPayerToken if the token is malformed, badly signed, signed with
// an unknown key, expired, for another issuer or audience, missing a required
// claim, or denylisted by jti or subject; and one wrapping ErrUnavailable if
// the denylist or key store cannot answer. Error texts name the failed check
// for logs but never include the token.
func (v *TokenVerifier) VerifyPayer(ctx context.Context, token string) (Payer, error) {
	if v.Algorithm == "" || v.Issuer == "" || v.Audience == "" || v.Keys == nil || v.Denylist == nil {
		return Payer{}, errors.New("policy: token verifier is not fully configured")
	}
	now := v.Now
	if now == nil {
		now = time.Now
	}
	claims, err := v.parse(ctx, token,
		jwt.WithIssuer(v.Issuer),
		jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
		jwt.WithLeeway(v.Leeway),
	)
	if err != nil {
		return Payer{}, err
	}
	if claims.Subject == "" {
		return Payer{}, fmt.Errorf("%w: missing sub", ErrPayerToken)
	}
	if claims.ID == "" {
		return Payer{}, fmt.Errorf("%w: missing jti", ErrPayerToken)
	}
	denied, err := v.Denylist.Denied(ctx, claims.ID, claims.Subject)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return Payer{}, err
		}
		return Payer{}, fmt.Errorf("%w: payer denylist: %w", ErrUnavailable, err)
	}
	if denied {
		return Payer{}, fmt.Errorf("%w: revoked", ErrPayerToken)
	}
	return Payer{Subject: claims.Subject, TokenID: claims.ID}, nil
}

// Subject returns the subject of token if its signature, algorithm, issuer
// and audience verify, ignoring exp, nbf and the denylist: see
// PayerVerifier.Subject. It returns an error wrapping ErrPayerToken for any
// other token, and one wrapping ErrUnavailable if the key store cannot answer.
func (v *TokenVerifier) Subject(ctx context.Context, token string) (string, error) {
	if v.Algorithm == "" || v.Issuer == "" || v.Audience == "" || v.Keys == nil {
		return "", errors.New("policy: token verifier is not fully configured")
	}
	claims, err := v.parse(ctx, token, jwt.WithoutClaimsValidation())
	if err != nil {
		return "", err
	}
	// WithoutClaimsValidation skips iss and aud too: check them here.
	if claims.Issuer != v.Issuer {
		return "", fmt.Errorf("%w: issuer", ErrPayerToken)
	}
	if aud, _ := claims.GetAudience(); !slices.Contains(aud, v.Audience) {
		return "", fmt.Errorf("%w: audience", ErrPayerToken)
	}
	if claims.Subject == "" {
		return "", fmt.Errorf("%w: missing sub", ErrPayerToken)
	}
	return claims.Subject, nil
}

// parse checks token's size, algorithm, key and signature and, with the
// options given, its claims.
func (v *TokenVerifier) parse(ctx context.Context, token string, opts ...jwt.ParserOption) (jwt.RegisteredClaims, error) {
	var claims jwt.RegisteredClaims
	if len(token) > maxTokenLen {
		return claims, fmt.Errorf("%w: token longer than %d bytes", ErrPayerToken, maxTokenLen)
	}
	p := jwt.NewParser(append([]jwt.ParserOption{jwt.WithValidMethods([]string{v.Algorithm})}, opts...)...)
	var keyErr error
	_, err := p.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("missing kid header")
		}
		k, err := v.Keys.TokenKey(ctx, kid)
		if err != nil {
			keyErr = err
			return nil, fmt.Errorf("key %q: %w", kid, err)
		}
		return k, nil
	})
	if err != nil {
		if keyErr != nil && errors.Is(keyErr, ErrUnavailable) {
			return claims, fmt.Errorf("policy: payer token keys: %w", keyErr)
		}
		return claims, fmt.Errorf("%w: %v", ErrPayerToken, err)
	}
	return claims, nil
}

// IssuePayerToken signs a payer token the way the platform's login service
// does, for the dev CLI and tests: header alg and kid; claims iss, aud, sub, a
// random jti, iat = now and exp = now + ttl. alg is "EdDSA" (Ed25519 key),
// "ES256" (P-256 key) or "RS256" (RSA key, PKCS #1 v1.5); key may be any
// crypto.Signer of that type, so key wrappers and HSMs work.
func IssuePayerToken(key crypto.Signer, alg, kid, issuer, audience, subject string, ttl time.Duration, now time.Time) (string, error) {
	if kid == "" || issuer == "" || audience == "" || subject == "" || ttl <= 0 {
		return "", errors.New("policy: payer token needs kid, issuer, audience, subject and a positive ttl")
	}
	method := jwt.GetSigningMethod(alg)
	switch alg {
	case "EdDSA", "ES256", "RS256":
	default:
		return "", fmt.Errorf("policy: unsupported payer token algorithm %q", alg)
	}
	t := jwt.NewWithClaims(method, jwt.RegisteredClaims{
		Issuer:    issuer,
		Audience:  jwt.ClaimStrings{audience},
		Subject:   subject,
		ID:        rand.Text(),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	})
	t.Header["kid"] = kid
	ss, err := t.SigningString()
	if err != nil {
		return "", fmt.Errorf("policy: payer token: %w", err)
	}
	sig, err := signJWS(key, alg, ss)
	if err != nil {
		return "", fmt.Errorf("policy: payer token: %w", err)
	}
	return ss + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// signJWS produces the JWS signature bytes of ss with a generic crypto.Signer.
func signJWS(key crypto.Signer, alg, ss string) ([]byte, error) {
	switch alg {
	case "EdDSA":
		if _, ok := key.Public().(ed25519.PublicKey); !ok {
			return nil, errors.New("EdDSA needs an Ed25519 key")
		}
		return key.Sign(rand.Reader, []byte(ss), crypto.Hash(0))
	case "RS256":
		if _, ok := key.Public().(*rsa.PublicKey); !ok {
			return nil, errors.New("RS256 needs an RSA key")
		}
		d := sha256.Sum256([]byte(ss))
		return key.Sign(rand.Reader, d[:], crypto.SHA256)
	case "ES256":
		pub, ok := key.Public().(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return nil, errors.New("ES256 needs a P-256 key")
		}
		d := sha256.Sum256([]byte(ss))
		der, err := key.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			return nil, err
		}
		var rs struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) > 0 {
			return nil, errors.New("ECDSA signer returned a malformed signature")
		}
		out := make([]byte, 64) // JWS wants fixed-width r ‖ s
		rs.R.FillBytes(out[:32])
		rs.S.FillBytes(out[32:])
		return out, nil
	}
	return nil, fmt.Errorf("unsupported algorithm %q", alg)
}
