package attack

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/policy"
)

// jws signs header.claims with sign (nil: no signature, as alg none has).
func jws(t testing.TB, header, claims map[string]any, sign func(signingInput string) []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign(in)
	}
	tok := in + "." + base64.RawURLEncoding.EncodeToString(sig)
	sent.add(tok)
	return tok
}

func hs256(key []byte) func(string) []byte {
	return func(in string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(in))
		return m.Sum(nil)
	}
}

func (s *server) file(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (s *server) signer(t testing.TB, name string) ed25519.PrivateKey {
	t.Helper()
	k, err := keys.ParsePrivateKeyPEM([]byte(s.file(t, name)))
	if err != nil {
		t.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}

// forgeries are the tokens of issue 11 item 16 for a key ring: alg none,
// HS256 keyed with the registered public key (PEM and raw), a known kid
// signed by a stranger, an unknown kid, and RS256 on an Ed25519 key.
func forgeries(t testing.TB, kid string, pub ed25519.PublicKey, claims map[string]any) map[string]string {
	t.Helper()
	pubPEM, err := keys.MarshalPublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	edSign := func(k ed25519.PrivateKey) func(string) []byte {
		return func(in string) []byte { return ed25519.Sign(k, []byte(in)) }
	}
	return map[string]string{
		"alg none":                            jws(t, map[string]any{"alg": "none", "kid": kid, "typ": "JWT"}, claims, nil),
		"alg None":                            jws(t, map[string]any{"alg": "None", "kid": kid}, claims, nil),
		"HS256 keyed with the public key PEM": jws(t, map[string]any{"alg": "HS256", "kid": kid}, claims, hs256(pubPEM)),
		"HS256 keyed with the raw public key": jws(t, map[string]any{"alg": "HS256", "kid": kid}, claims, hs256(pub)),
		"RS256 header on the Ed25519 key":     jws(t, map[string]any{"alg": "RS256", "kid": kid}, claims, edSign(stranger)),
		"signed by a stranger under the kid":  jws(t, map[string]any{"alg": "EdDSA", "kid": kid}, claims, edSign(stranger)),
		"unknown kid":                         jws(t, map[string]any{"alg": "EdDSA", "kid": "nope"}, claims, edSign(stranger)),
		"no kid":                              jws(t, map[string]any{"alg": "EdDSA"}, claims, edSign(stranger)),
	}
}

// TestPayerTokenAttacksRefused is issue 11 item 16 for payer tokens: a
// payment whose payer_token is forged, expired, not yet valid, for another
// audience or issuer, or given in the URL instead of the body, is a signed
// 422 with the payer_token field error, and nothing moves.
func TestPayerTokenAttacksRefused(t *testing.T) {
	s := shared(t)
	user, _ := s.wallet(t, "10.00")
	kid := s.file(t, "payer-signer.kid")
	key := s.signer(t, "payer-signer.key.pem")
	now := time.Now()
	claims := map[string]any{"iss": devenv.PayerIssuer, "aud": devenv.PayerAudience, "sub": user,
		"jti": rand.Text(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	tokens := forgeries(t, kid, key.Public().(ed25519.PublicKey), claims)
	issue := func(iss, aud string, ttl time.Duration, at time.Time) string {
		tok, err := policy.IssuePayerToken(key, devenv.PayerAlgorithm, kid, iss, aud, user, ttl, at)
		if err != nil {
			t.Fatal(err)
		}
		sent.add(tok)
		return tok
	}
	tokens["expired"] = issue(devenv.PayerIssuer, devenv.PayerAudience, 10*time.Minute, now.Add(-time.Hour))
	tokens["wrong audience"] = issue(devenv.PayerIssuer, "another-service", 10*time.Minute, now)
	tokens["wrong issuer"] = issue("another-login", devenv.PayerAudience, 10*time.Minute, now)
	tokens["an auditor token"] = func() string {
		tok, err := devenv.AuditorToken(s.dir, user, audit.All, 10*time.Minute, now)
		if err != nil {
			t.Fatal(err)
		}
		sent.add(tok)
		return tok
	}()
	nbf := map[string]any{}
	for k, v := range claims {
		nbf[k] = v
	}
	nbf["nbf"] = now.Add(time.Hour).Unix()
	tokens["not yet valid"] = jws(t, map[string]any{"alg": "EdDSA", "kid": kid}, nbf, func(in string) []byte { return ed25519.Sign(key, []byte(in)) })
	for name, tok := range tokens {
		t.Run(name, func(t *testing.T) {
			before := s.state(t)
			r := s.send(t, honest, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", tok))
			refused(t, r, http.StatusUnprocessableEntity, "validation_failed", "")
			if got := fieldErrors(t, r)["payer_token"]; got != "invalid" {
				t.Fatalf("payer_token error %q: %s", got, r.Body)
			}
			if strings.Contains(string(r.Body), tok) {
				t.Fatal("the answer echoes the token")
			}
			s.unchanged(t, before)
		})
	}
	t.Run("token in the URL", func(t *testing.T) {
		before := s.state(t)
		good := issue(devenv.PayerIssuer, devenv.PayerAudience, 10*time.Minute, now)
		body := []byte(`{"order_id":"` + newOrderID() + `","amount":"1.00","currency":"CNY"}`)
		r := s.send(t, honest, "POST", "/v1/payments?payer_token="+url.QueryEscape(good), body)
		refused(t, r, http.StatusUnprocessableEntity, "validation_failed", "")
		if got := fieldErrors(t, r)["payer_token"]; got == "" {
			t.Fatalf("no payer_token error: %s", r.Body)
		}
		s.unchanged(t, before)
	})
	if b := s.walletBalance(t, user); b != 1000 {
		t.Fatalf("wallet %d, want 1000", b)
	}
}

// TestAuditorTokenAttacksRefused is issue 11 item 16 for auditor tokens, on
// the auditor listener: forged, expired, wrong audience or issuer, the
// role missing → 401 token_invalid (403 for the role); a token in the URL →
// 400 token_in_query, even next to a good header. TestAuditorAccess
// (cmd/quill) covers the same on the in-process server with a fake clock.
func TestAuditorTokenAttacksRefused(t *testing.T) {
	s := shared(t)
	kid := s.file(t, "auditor-signer.kid")
	key := s.signer(t, "auditor-signer.key.pem")
	now := time.Now()
	claims := map[string]any{"iss": devenv.AuditorIssuer, "aud": devenv.AuditorAudience, "sub": "mallory",
		"role": audit.Role, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	tokens := forgeries(t, kid, key.Public().(ed25519.PublicKey), claims)
	issue := func(o audit.TokenOptions) string {
		o.KeyID, o.Subject, o.TTL = kid, "mallory", time.Hour
		if o.Issuer == "" {
			o.Issuer = devenv.AuditorIssuer
		}
		if o.Audience == "" {
			o.Audience = devenv.AuditorAudience
		}
		if o.Now.IsZero() {
			o.Now = now
		}
		tok, err := audit.IssueToken(key, o)
		if err != nil {
			t.Fatal(err)
		}
		sent.add(tok)
		return tok
	}
	tokens["expired"] = issue(audit.TokenOptions{Now: now.Add(-2 * time.Hour)})
	tokens["wrong audience"] = issue(audit.TokenOptions{Audience: devenv.PayerAudience})
	tokens["wrong issuer"] = issue(audit.TokenOptions{Issuer: devenv.PayerIssuer})
	tokens["a payer token"] = s.token(t, "42", 10*time.Minute, now)
	good := issue(audit.TokenOptions{})
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	get := func(target, auth string) (int, string) {
		req, _ := http.NewRequest("GET", s.audit+target, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var p struct{ Code string }
		json.Unmarshal(b, &p)
		return res.StatusCode, p.Code
	}
	if st, _ := get("/v1/audit/trial-balance", "Bearer "+good); st != http.StatusOK {
		t.Fatalf("a good token: %d", st)
	}
	for name, tok := range tokens {
		t.Run(name, func(t *testing.T) {
			if st, code := get("/v1/audit/trial-balance", "Bearer "+tok); st != http.StatusUnauthorized || code != "token_invalid" {
				t.Fatalf("%d %s", st, code)
			}
		})
	}
	t.Run("role missing", func(t *testing.T) {
		if st, code := get("/v1/audit/trial-balance", "Bearer "+issue(audit.TokenOptions{Role: "reader"})); st != http.StatusForbidden || code != "forbidden" {
			t.Fatalf("%d %s", st, code)
		}
	})
	for _, q := range []string{"access_token=" + good, "token=" + good, "x=" + good, "Authorization=Bearer%20" + good} {
		t.Run("token in the URL: "+strings.SplitN(q, "=", 2)[0], func(t *testing.T) {
			if st, code := get("/v1/audit/trial-balance?"+q, "Bearer "+good); st != http.StatusBadRequest || code != "token_in_query" {
				t.Fatalf("%d %s", st, code)
			}
		})
	}
}
