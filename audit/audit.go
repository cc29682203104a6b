package audit

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
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors returned by this package.
var (
	// ErrToken means the bearer token was refused: malformed, badly signed,
	// unknown key, wrong algorithm, expired, not yet valid, wrong issuer or
	// audience, bad scope.
	ErrToken = errors.New("audit: auditor token not accepted")
	// ErrForbidden means the token is valid but does not carry the auditor role.
	ErrForbidden = errors.New("audit: token lacks the auditor role")
	// ErrUnavailable means the key store could not answer; refuse, retry later.
	ErrUnavailable = errors.New("audit: key store unavailable")
)

// Role is the value of the "role" claim an auditor token must carry.
const Role = "auditor"

// scopePrefix starts each scope item.
const scopePrefix = "merchant:"

// maxTokenLen rejects absurd tokens before any parsing work.
const maxTokenLen = 8 << 10

// Scope is the set of merchants an auditor may see; the zero value (All)
// means every merchant.
type Scope struct {
	merchants []string // sorted; nil means all
}

// All is the scope of an unrestricted auditor.
var All = Scope{}

// Merchants returns a scope limited to ids.
func Merchants(ids ...string) Scope {
	s := slices.Clone(ids)
	slices.Sort(s)
	return Scope{merchants: slices.Compact(s)}
}

// Unlimited reports whether the scope covers every merchant.
func (s Scope) Unlimited() bool { return s.merchants == nil }

// List returns the merchants of a limited scope (nil for an unlimited one).
func (s Scope) List() []string { return slices.Clone(s.merchants) }

// Allows reports whether merchant's entries are visible.
func (s Scope) Allows(merchant string) bool {
	if s.merchants == nil {
		return true
	}
	_, ok := slices.BinarySearch(s.merchants, merchant)
	return ok
}

// String returns the scope as the claim spells it ("" for All).
func (s Scope) String() string {
	items := make([]string, len(s.merchants))
	for i, m := range s.merchants {
		items[i] = scopePrefix + m
	}
	return strings.Join(items, " ")
}

// ParseScope parses a scope claim: one or more space-separated
// "merchant:ID" items. It returns an error for an empty claim or any other item.
func ParseScope(claim string) (Scope, error) {
	fields := strings.Fields(claim)
	if len(fields) == 0 {
		return Scope{}, errors.New("empty scope")
	}
	ids := make([]string, 0, len(fields))
	for _, f := range fields {
		id, ok := strings.CutPrefix(f, scopePrefix)
		if !ok || id == "" {
			return Scope{}, fmt.Errorf("scope item %q is not merchant:ID", f)
		}
		ids = append(ids, id)
	}
	return Merchants(ids...), nil
}

// Auditor is a verified auditor.
type Auditor struct {
	Subject string // the token's sub
	TokenID string // jti, may be empty
	Scope   Scope
	Expires time.Time
}

// Keys finds auditor-token verification keys.
type Keys interface {
	// AuditorKey returns the public key registered under kid (an
	// ed25519.PublicKey, *ecdsa.PublicKey on P-256 or *rsa.PublicKey). It
	// returns an error for an unknown or unusable kid, and one wrapping
	// ErrUnavailable if the store cannot answer.
	AuditorKey(ctx context.Context, kid string) (crypto.PublicKey, error)
}

// Verifier verifies auditor tokens. All fields but Now and Leeway must be set
// before first use and not changed after.
type Verifier struct {
	Keys     Keys
	Issuer   string
	Audience string
	Now      func() time.Time // nil means time.Now
	Leeway   time.Duration    // clock skew allowed on exp and nbf
}

// claims are the registered claims plus Quill's.
type claims struct {
	jwt.RegisteredClaims
	Role  string  `json:"role"`
	Scope *string `json:"scope,omitempty"`
}

// AlgorithmFor returns the one JWS alg that pub verifies: "EdDSA" for
// Ed25519, "ES256" for P-256, "RS256" for RSA; an error for anything else.
func AlgorithmFor(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return "EdDSA", nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return "ES256", nil
		}
	case *rsa.PublicKey:
		return "RS256", nil
	}
	return "", fmt.Errorf("audit: unsupported key type %T", pub)
}

// Verify verifies token and returns the auditor it names. It returns an error
// wrapping ErrToken if the token is refused, ErrForbidden if it lacks the
// auditor role, and ErrUnavailable if the key store cannot answer.
func (v *Verifier) Verify(ctx context.Context, token string) (Auditor, error) {
	if v.Keys == nil || v.Issuer == "" || v.Audience == "" {
		return Auditor{}, errors.New("audit: verifier is not fully configured")
	}
	if token == "" {
		return Auditor{}, fmt.Errorf("%w: no token", ErrToken)
	}
	if len(token) > maxTokenLen {
		return Auditor{}, fmt.Errorf("%w: token longer than %d bytes", ErrToken, maxTokenLen)
	}
	now := v.Now
	if now == nil {
		now = time.Now
	}
	p := jwt.NewParser(
		// Asymmetric algorithms only: "none" and HS* never reach the key lookup.
		jwt.WithValidMethods([]string{"EdDSA", "ES256", "RS256"}),
		jwt.WithIssuer(v.Issuer),
		jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
		jwt.WithLeeway(v.Leeway),
		jwt.WithStrictDecoding(),
	)
	var c claims
	var keyErr error
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("missing kid header")
		}
		k, err := v.Keys.AuditorKey(ctx, kid)
		if err != nil {
			keyErr = err
			return nil, fmt.Errorf("key %q: %w", kid, err)
		}
		alg, err := AlgorithmFor(k)
		if err != nil {
			return nil, err
		}
		// The key pins the algorithm: an RS256 token cannot use an Ed25519
		// key's slot, whatever its header says.
		if t.Method.Alg() != alg {
			return nil, fmt.Errorf("alg %q but key %q is for %s", t.Method.Alg(), kid, alg)
		}
		return k, nil
	})
	if err != nil {
		if keyErr != nil && errors.Is(keyErr, ErrUnavailable) {
			return Auditor{}, fmt.Errorf("audit: auditor keys: %w", keyErr)
		}
		return Auditor{}, fmt.Errorf("%w: %v", ErrToken, err)
	}
	if c.Subject == "" {
		return Auditor{}, fmt.Errorf("%w: missing sub", ErrToken)
	}
	scope := All
	if c.Scope != nil {
		if scope, err = ParseScope(*c.Scope); err != nil {
			return Auditor{}, fmt.Errorf("%w: %v", ErrToken, err)
		}
	}
	if c.Role != Role {
		return Auditor{}, fmt.Errorf("%w: role %q", ErrForbidden, c.Role)
	}
	return Auditor{Subject: c.Subject, TokenID: c.ID, Scope: scope, Expires: c.ExpiresAt.Time}, nil
}

// TokenOptions are the claims IssueToken writes.
type TokenOptions struct {
	KeyID    string
	Issuer   string
	Audience string
	Subject  string
	Role     string // Role if empty
	Scope    Scope  // All: no scope claim
	TTL      time.Duration
	Now      time.Time
}

// IssueToken signs an auditor token with key, for dev tools and tests. The
// alg is the one AlgorithmFor(key.Public()) pins.
func IssueToken(key crypto.Signer, o TokenOptions) (string, error) {
	if o.KeyID == "" || o.Issuer == "" || o.Audience == "" || o.Subject == "" || o.TTL <= 0 {
		return "", errors.New("audit: token needs kid, issuer, audience, subject and a positive ttl")
	}
	alg, err := AlgorithmFor(key.Public())
	if err != nil {
		return "", err
	}
	if o.Role == "" {
		o.Role = Role
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    o.Issuer,
			Audience:  jwt.ClaimStrings{o.Audience},
			Subject:   o.Subject,
			ID:        rand.Text(),
			IssuedAt:  jwt.NewNumericDate(o.Now),
			NotBefore: jwt.NewNumericDate(o.Now),
			ExpiresAt: jwt.NewNumericDate(o.Now.Add(o.TTL)),
		},
		Role: o.Role,
	}
	if !o.Scope.Unlimited() {
		s := o.Scope.String()
		c.Scope = &s
	}
	t := jwt.NewWithClaims(jwt.GetSigningMethod(alg), c)
	t.Header["kid"] = o.KeyID
	ss, err := t.SigningString()
	if err != nil {
		return "", fmt.Errorf("audit: token: %w", err)
	}
	sig, err := signJWS(key, alg, ss)
	if err != nil {
		return "", fmt.Errorf("audit: token: %w", err)
	}
	return ss + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// signJWS produces the JWS signature of ss with any crypto.Signer, so key
// wrappers and HSMs work.
func signJWS(key crypto.Signer, alg, ss string) ([]byte, error) {
	switch alg {
	case "EdDSA":
		return key.Sign(rand.Reader, []byte(ss), crypto.Hash(0))
	case "RS256":
		d := sha256.Sum256([]byte(ss))
		return key.Sign(rand.Reader, d[:], crypto.SHA256)
	case "ES256":
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
