package policy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

type mapKeys map[string]crypto.PublicKey

func (m mapKeys) TokenKey(_ context.Context, kid string) (crypto.PublicKey, error) {
	if kid == "vault-down" {
		return nil, fmt.Errorf("%w: vault sealed", ErrUnavailable)
	}
	k, ok := m[kid]
	if !ok {
		return nil, errors.New("unknown key id")
	}
	return k, nil
}

type fakeDenylist struct {
	jtis, subjects map[string]bool
	err            error
}

func (d *fakeDenylist) Denied(_ context.Context, jti, subject string) (bool, error) {
	if d.err != nil {
		return false, d.err
	}
	return d.jtis[jti] || d.subjects[subject], nil
}

var tokenNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

type tokenFixture struct {
	priv ed25519.PrivateKey
	v    *TokenVerifier
	deny *fakeDenylist
}

func newTokenFixture(tb testing.TB) *tokenFixture {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	deny := &fakeDenylist{jtis: map[string]bool{"revoked-jti": true}, subjects: map[string]bool{"banned-user": true}}
	return &tokenFixture{priv: priv, deny: deny, v: &TokenVerifier{
		// "raw" models a key store handing out raw key bytes: only the pinned
		// algorithm stops them being used as an HMAC secret.
		Keys:      mapKeys{"k1": pub, "raw": []byte(pub)},
		Denylist:  deny,
		Issuer:    "https://login.example",
		Audience:  "quill",
		Algorithm: "EdDSA",
		Now:       func() time.Time { return tokenNow },
		Leeway:    30 * time.Second,
	}}
}

// claims returns valid claims that a test case may edit.
func (f *tokenFixture) claims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "https://login.example",
		"aud": "quill",
		"sub": "user42",
		"jti": "jti-1",
		"iat": tokenNow.Unix(),
		"exp": tokenNow.Add(10 * time.Minute).Unix(),
	}
}

// sign signs claims with method and key, setting the kid header unless empty.
func sign(tb testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(method, claims)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestVerifyPayer(t *testing.T) {
	f := newTokenFixture(t)
	edit := func(fn func(jwt.MapClaims)) jwt.MapClaims {
		c := f.claims()
		fn(c)
		return c
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	pub := f.v.Keys.(mapKeys)["k1"].(ed25519.PublicKey)
	b64 := base64.RawURLEncoding.EncodeToString
	noneToken := b64([]byte(`{"alg":"none","kid":"k1","typ":"JWT"}`)) + "." + b64([]byte(`{"iss":"https://login.example","aud":"quill","sub":"user42","jti":"x","exp":9999999999}`)) + "."

	tests := []struct {
		name  string
		token string
		want  error // nil means accepted
	}{
		{"valid", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", f.claims()), nil},
		{"valid audience list", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit(func(c jwt.MapClaims) { c["aud"] = []string{"other", "quill"} })), nil},
		{"expired within leeway", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit(func(c jwt.MapClaims) { c["exp"] = tokenNow.Add(-10 * time.Second).Unix() })), nil},
		{"expired", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit(func(c jwt.MapClaims) { c["exp"] = tokenNow.Add(-time.Minute).Unix() })), ErrPayerToken},
		{"not yet valid", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit(func(c jwt.MapClaims) { c["nbf"] = tokenNow.Add(time.Minute).Unix() })), ErrPayerToken},
		{"missing exp", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit(func(c jwt.MapClaims) { delete(c, "exp") })), ErrPayerToken},
		{"wrong aud", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit(func(c jwt.MapClaims) { c["aud"] = "someone-else" })), ErrPayerToken},
		{"missing aud", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit(func(c jwt.MapClaims) { delete(c, "aud") })), ErrPayerToken},
		{"wrong iss", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), ErrPayerToken},
		{"missing sub", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit(func(c jwt.MapClaims) { delete(c, "sub") })), ErrPayerToken},
		{"missing jti", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit(func(c jwt.MapClaims) { delete(c, "jti") })), ErrPayerToken},
		{"missing kid", sign(t, jwt.SigningMethodEdDSA, f.priv, "", f.claims()), ErrPayerToken},
		{"unknown kid", sign(t, jwt.SigningMethodEdDSA, f.priv, "k2", f.claims()), ErrPayerToken},
		{"other key same kid", sign(t, jwt.SigningMethodEdDSA, otherKey, "k1", f.claims()), ErrPayerToken},
		{"alg none", noneToken, ErrPayerToken},
		{"alg none via library", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", f.claims()), ErrPayerToken},
		{"alg swapped to HS256 with public key", sign(t, jwt.SigningMethodHS256, []byte(pub), "k1", f.claims()), ErrPayerToken},
		{"alg swapped to HS256 with raw key bytes", sign(t, jwt.SigningMethodHS256, []byte(pub), "raw", f.claims()), ErrPayerToken},
		{"tampered payload", tamper(t, sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", f.claims())), ErrPayerToken},
		{"garbage", "not.a.token", ErrPayerToken},
		{"empty", "", ErrPayerToken},
		{"huge", strings.Repeat("a", 9000), ErrPayerToken},
		{"denylisted jti", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit(func(c jwt.MapClaims) { c["jti"] = "revoked-jti" })), ErrPayerToken},
		{"denylisted subject", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit(func(c jwt.MapClaims) { c["sub"] = "banned-user" })), ErrPayerToken},
		{"key store down", sign(t, jwt.SigningMethodEdDSA, f.priv, "vault-down", f.claims()), ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.v.VerifyPayer(context.Background(), tt.token)
			if tt.want == nil {
				if err != nil || p.Subject == "" || p.TokenID == "" {
					t.Fatalf("VerifyPayer = %+v, %v; want accepted", p, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyPayer error = %v; want %v", err, tt.want)
			}
			if tt.want == ErrPayerToken && errors.Is(err, ErrUnavailable) {
				t.Fatalf("VerifyPayer error = %v is also ErrUnavailable", err)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Fatal("error text contains the token")
			}
		})
	}
}

func tamper(tb testing.TB, token string) string {
	tb.Helper()
	parts := strings.Split(token, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://login.example","aud":"quill","sub":"admin","jti":"j","exp":9999999999}`))
	return strings.Join(parts, ".")
}

func TestVerifyPayerDenylistDown(t *testing.T) {
	f := newTokenFixture(t)
	f.deny.err = errors.New("dial tcp: connection refused")
	_, err := f.v.VerifyPayer(context.Background(), sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", f.claims()))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrPayerToken) {
		t.Fatalf("error = %v; want ErrUnavailable", err)
	}
}

func TestVerifyPayerMisconfigured(t *testing.T) {
	f := newTokenFixture(t)
	f.v.Algorithm = ""
	_, err := f.v.VerifyPayer(context.Background(), sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", f.claims()))
	if err == nil || errors.Is(err, ErrPayerToken) {
		t.Fatalf("error = %v; want a configuration error", err)
	}
}

func TestIssuePayerToken(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		alg     string
		key     crypto.Signer
		wantErr bool
	}{
		{"EdDSA", edKey, false},
		{"ES256", ecKey, false},
		{"RS256", rsaKey, false},
		{"ES256", ec384, true},
		{"ES256", edKey, true},
		{"RS256", ecKey, true},
		{"EdDSA", rsaKey, true},
		{"HS256", edKey, true},
		{"none", edKey, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %T", tt.alg, tt.key), func(t *testing.T) {
			tok, err := IssuePayerToken(tt.key, tt.alg, "k9", "iss", "aud", "user7", 5*time.Minute, tokenNow)
			if tt.wantErr {
				if err == nil {
					t.Fatal("IssuePayerToken succeeded; want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v := &TokenVerifier{
				Keys: mapKeys{"k9": tt.key.Public()}, Denylist: &fakeDenylist{},
				Issuer: "iss", Audience: "aud", Algorithm: tt.alg,
				Now: func() time.Time { return tokenNow.Add(time.Minute) },
			}
			p, err := v.VerifyPayer(context.Background(), tok)
			if err != nil || p.Subject != "user7" || p.TokenID == "" {
				t.Fatalf("VerifyPayer = %+v, %v", p, err)
			}
			v.Now = func() time.Time { return tokenNow.Add(6 * time.Minute) }
			if _, err := v.VerifyPayer(context.Background(), tok); !errors.Is(err, ErrPayerToken) {
				t.Fatalf("after ttl: error = %v; want ErrPayerToken", err)
			}
			other := *v
			other.Algorithm = map[string]string{"EdDSA": "ES256", "ES256": "RS256", "RS256": "EdDSA"}[tt.alg]
			other.Now = func() time.Time { return tokenNow }
			if _, err := other.VerifyPayer(context.Background(), tok); !errors.Is(err, ErrPayerToken) {
				t.Fatalf("pinned to %s: error = %v; want ErrPayerToken", other.Algorithm, err)
			}
		})
	}
}

// TestSubjectIgnoresOnlyTimeAndRevocation: Subject names the payer of an
// expired, not yet valid or revoked token (a retry may carry one), and of no
// token whose signature, algorithm, issuer or audience fails.
func TestSubjectIgnoresOnlyTimeAndRevocation(t *testing.T) {
	f := newTokenFixture(t)
	edit := func(k string, v any) jwt.MapClaims {
		c := f.claims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	for _, tt := range []struct {
		name  string
		token string
		want  string // "" means refused
	}{
		{"valid", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", f.claims()), "user42"},
		{"expired", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit("exp", tokenNow.Add(-time.Hour).Unix())), "user42"},
		{"not yet valid", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit("nbf", tokenNow.Add(time.Hour).Unix())), "user42"},
		{"revoked jti", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit("jti", "revoked-jti")), "user42"},
		{"other key", sign(t, jwt.SigningMethodEdDSA, other, "k1", f.claims()), ""},
		{"unknown kid", sign(t, jwt.SigningMethodEdDSA, f.priv, "k9", f.claims()), ""},
		{"HMAC with the public key", sign(t, jwt.SigningMethodHS256, []byte(f.priv.Public().(ed25519.PublicKey)), "raw", f.claims()), ""},
		{"wrong issuer", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit("iss", "https://evil.example")), ""},
		{"wrong audience", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit("aud", "other")), ""},
		{"no subject", sign(t, jwt.SigningMethodEdDSA, f.priv, "k1", edit("sub", nil)), ""},
		{"garbage", "not.a.token", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.v.Subject(context.Background(), tt.token)
			if tt.want == "" {
				if !errors.Is(err, ErrPayerToken) || got != "" {
					t.Fatalf("Subject = %q, %v; want ErrPayerToken", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Subject = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := f.v.Subject(context.Background(), sign(t, jwt.SigningMethodEdDSA, f.priv, "vault-down", f.claims())); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("key store down: %v, want ErrUnavailable", err)
	}
}
