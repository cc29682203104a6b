package audit

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

type keyMap map[string]crypto.PublicKey

func (m keyMap) AuditorKey(_ context.Context, kid string) (crypto.PublicKey, error) {
	if kid == "down" {
		return nil, fmt.Errorf("%w: vault sealed", ErrUnavailable)
	}
	k, ok := m[kid]
	if !ok {
		return nil, errors.New("unknown key")
	}
	return k, nil
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type fixture struct {
	ed  ed25519.PrivateKey
	ec  *ecdsa.PrivateKey
	rsa *rsa.PrivateKey
	v   *Verifier
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{ed: ed, ec: ec, rsa: rk}
	f.v = &Verifier{
		Keys:     keyMap{"ed": ed.Public(), "ec": ec.Public(), "rsa": rk.Public()},
		Issuer:   "quill-audit-idp",
		Audience: "quill-audit",
		Now:      func() time.Time { return t0 },
		Leeway:   5 * time.Second,
	}
	return f
}

func (f *fixture) opts(kid string) TokenOptions {
	return TokenOptions{KeyID: kid, Issuer: f.v.Issuer, Audience: f.v.Audience, Subject: "alice", TTL: time.Hour, Now: t0}
}

func (f *fixture) issue(tb testing.TB, key crypto.Signer, o TokenOptions) string {
	tb.Helper()
	tok, err := IssueToken(key, o)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// forge builds a token from raw header and claims with a given signature
// function, for attacks IssueToken would never produce.
func forge(header, claims map[string]any, sign func(signingInput string) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return in + "." + base64.RawURLEncoding.EncodeToString(sign(in))
}

func (f *fixture) claims() map[string]any {
	return map[string]any{"iss": f.v.Issuer, "aud": f.v.Audience, "sub": "mallory", "role": "auditor",
		"exp": t0.Add(time.Hour).Unix(), "nbf": t0.Add(-time.Minute).Unix()}
}

func TestVerifyAccepts(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		kid string
		key crypto.Signer
	}{{"ed", f.ed}, {"ec", f.ec}, {"rsa", f.rsa}} {
		t.Run(c.kid, func(t *testing.T) {
			o := f.opts(c.kid)
			o.Scope = Merchants("M200", "M100")
			a, err := f.v.Verify(context.Background(), f.issue(t, c.key, o))
			if err != nil {
				t.Fatal(err)
			}
			if a.Subject != "alice" || a.Scope.Unlimited() || !a.Scope.Allows("M100") || !a.Scope.Allows("M200") || a.Scope.Allows("M300") {
				t.Fatalf("auditor = %+v", a)
			}
		})
	}
	a, err := f.v.Verify(context.Background(), f.issue(t, f.ed, f.opts("ed")))
	if err != nil || !a.Scope.Unlimited() || !a.Scope.Allows("anything") {
		t.Fatalf("unscoped: %+v %v", a, err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	f := newFixture(t)
	pubDER, _ := x509.MarshalPKIXPublicKey(f.rsa.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hmacWith := func(secret []byte) func(string) []byte {
		return func(in string) []byte {
			s, err := jwt.SigningMethodHS256.Sign(in, secret)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	valid := func(mod func(o *TokenOptions)) string {
		o := f.opts("ed")
		mod(&o)
		return f.issue(t, f.ed, o)
	}
	edSig := func(in string) []byte { return ed25519.Sign(f.ed, []byte(in)) }
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrToken},
		{"garbage", "not.a.jwt", ErrToken},
		{"alg none", forge(map[string]any{"alg": "none", "kid": "ed", "typ": "JWT"}, f.claims(), func(string) []byte { return nil }), ErrToken},
		{"alg none with jwt's magic key", func() string {
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(f.claims())).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return tok
		}(), ErrToken},
		{"HS256 keyed with the RSA public key PEM", forge(map[string]any{"alg": "HS256", "kid": "rsa"}, f.claims(), hmacWith(pubPEM)), ErrToken},
		{"HS256 keyed with the RSA public key DER", forge(map[string]any{"alg": "HS256", "kid": "rsa"}, f.claims(), hmacWith(pubDER)), ErrToken},
		{"HS512 keyed with the Ed25519 public key", forge(map[string]any{"alg": "HS512", "kid": "ed"}, f.claims(), func(in string) []byte {
			s, _ := jwt.SigningMethodHS512.Sign(in, []byte(f.ed.Public().(ed25519.PublicKey)))
			return s
		}), ErrToken},
		{"RS256 header on the Ed25519 key", forge(map[string]any{"alg": "RS256", "kid": "ed"}, f.claims(), edSig), ErrToken},
		{"EdDSA header on the RSA key", forge(map[string]any{"alg": "EdDSA", "kid": "rsa"}, f.claims(), edSig), ErrToken},
		{"unknown kid", valid(func(o *TokenOptions) { o.KeyID = "nope" }), ErrToken},
		{"missing kid", forge(map[string]any{"alg": "EdDSA"}, f.claims(), edSig), ErrToken},
		{"signed by another key under a known kid", func() string {
			_, other, _ := ed25519.GenerateKey(rand.Reader)
			return f.issue(t, other, f.opts("ed"))
		}(), ErrToken},
		{"expired", valid(func(o *TokenOptions) { o.Now = t0.Add(-2 * time.Hour) }), ErrToken},
		{"expired beyond the leeway", valid(func(o *TokenOptions) { o.Now, o.TTL = t0.Add(-time.Hour), time.Hour-6*time.Second }), ErrToken},
		{"not yet valid", valid(func(o *TokenOptions) { o.Now = t0.Add(time.Minute) }), ErrToken},
		{"no exp", forge(map[string]any{"alg": "EdDSA", "kid": "ed"}, func() map[string]any { c := f.claims(); delete(c, "exp"); return c }(), edSig), ErrToken},
		{"wrong audience", valid(func(o *TokenOptions) { o.Audience = "quill" }), ErrToken},
		{"wrong issuer", valid(func(o *TokenOptions) { o.Issuer = "quill-dev-login" }), ErrToken},
		{"no sub", forge(map[string]any{"alg": "EdDSA", "kid": "ed"}, func() map[string]any { c := f.claims(); delete(c, "sub"); return c }(), edSig), ErrToken},
		{"empty scope", forge(map[string]any{"alg": "EdDSA", "kid": "ed"}, func() map[string]any { c := f.claims(); c["scope"] = " "; return c }(), edSig), ErrToken},
		{"scope item without prefix", forge(map[string]any{"alg": "EdDSA", "kid": "ed"}, func() map[string]any { c := f.claims(); c["scope"] = "M100"; return c }(), edSig), ErrToken},
		{"scope not a string", forge(map[string]any{"alg": "EdDSA", "kid": "ed"}, func() map[string]any { c := f.claims(); c["scope"] = []string{"merchant:M100"}; return c }(), edSig), ErrToken},
		{"payer token (no role)", forge(map[string]any{"alg": "EdDSA", "kid": "ed"}, func() map[string]any { c := f.claims(); delete(c, "role"); return c }(), edSig), ErrForbidden},
		{"other role", valid(func(o *TokenOptions) { o.Role = "operator" }), ErrForbidden},
		{"key store down", valid(func(o *TokenOptions) { o.KeyID = "down" }), ErrUnavailable},
		{"oversized", strings.Repeat("a", maxTokenLen+1), ErrToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := f.v.Verify(context.Background(), tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %+v, %v; want %v", a, err, tt.want)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Fatal("error text contains the token")
			}
		})
	}
	// Within the leeway an expired token still passes: the leeway is applied.
	o := f.opts("ed")
	o.Now, o.TTL = t0.Add(-time.Hour), time.Hour-3*time.Second
	if _, err := f.v.Verify(context.Background(), f.issue(t, f.ed, o)); err != nil {
		t.Fatalf("token 3s past exp with 5s leeway: %v", err)
	}
}

func TestParseScope(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"merchant:M1", "merchant:M1", true},
		{"merchant:M2  merchant:M1 merchant:M2", "merchant:M1 merchant:M2", true},
		{"", "", false},
		{"merchant:", "", false},
		{"merchant:M1 account:user:1", "", false},
	} {
		s, err := ParseScope(c.in)
		if (err == nil) != c.ok || (c.ok && s.String() != c.want) {
			t.Errorf("ParseScope(%q) = %q, %v", c.in, s, err)
		}
	}
}

func FuzzParseScope(f *testing.F) {
	f.Add("merchant:M1 merchant:M2")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseScope(in)
		if err != nil {
			return
		}
		again, err := ParseScope(s.String())
		if err != nil || again.String() != s.String() {
			t.Fatalf("round trip of %q: %q, %v", in, again, err)
		}
	})
}
