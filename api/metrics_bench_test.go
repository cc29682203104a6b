package api_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/internal/metrics"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/signing"
)

type benchKeys struct{ pub crypto.PublicKey }

func (k benchKeys) VerifyingKey(context.Context, string, string, time.Time) (crypto.PublicKey, error) {
	return k.pub, nil
}

// anyNonce accepts every nonce, so one signed request can be sent b.N times.
type anyNonce struct{}

func (anyNonce) Claim(context.Context, string, string, time.Duration) error { return nil }

type benchPlatform struct{ key crypto.Signer }

func (p benchPlatform) SigningKey(context.Context) (string, crypto.Signer, error) {
	return "PLATFORM1", p.key, nil
}

func (p benchPlatform) PlatformPublicKeys(context.Context) ([]keys.PublicKey, error) {
	return []keys.PublicKey{{ID: "PLATFORM1", Public: p.key.Public(), Status: keys.Active}}, nil
}

// BenchmarkRequestMetrics sends one signed GET /v1/certificates through the
// merchant API handler (scheme A verification, response signature, access
// log) without and with every metrics hook cmd/quill installs, so the cost
// of the metrics is a ratio from one run. The RSA-2048 platform key is what
// scheme A serves; the Ed25519 one makes the request about 20 times cheaper,
// so the metrics' share is far larger there.
func BenchmarkRequestMetrics(b *testing.B) {
	merchantKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	rsaPlatform, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	_, edPlatform, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	auth, err := signing.SignRequest(merchantKey, "M1", "K1", "GET", "/v1/certificates", nil, now, "NONCE1")
	if err != nil {
		b.Fatal(err)
	}
	handler := func(platform crypto.Signer, withMetrics bool) http.Handler {
		pk := benchPlatform{platform}
		var auth api.Authenticator = &signing.Verifier{Keys: benchKeys{&merchantKey.PublicKey}, Nonces: anyNonce{}, Now: func() time.Time { return now }}
		var keys signing.PlatformKeys = pk
		var observe func(api.RequestRecord)
		if withMetrics {
			m := metrics.New()
			auth = m.Authenticator(&signing.Verifier{Keys: benchKeys{&merchantKey.PublicKey}, Nonces: m.NonceStore(anyNonce{}), Now: func() time.Time { return now }}, "go")
			keys = m.PlatformKeys(pk, metrics.SchemeA, "go")
			observe = m.ObserveRequest
		}
		return api.NewHandler(api.Deps{
			Auth:     auth,
			Identify: func(*http.Request) (string, error) { return "M1", nil },
			Signer:   &signing.ResponseSigner{Keys: keys, Now: func() time.Time { return now }},
			Platform: pk,
			Log:      zerolog.New(io.Discard),
			Observe:  observe,
		})
	}
	for _, platform := range []struct {
		name string
		key  crypto.Signer
	}{{"rsa2048", rsaPlatform}, {"ed25519", edPlatform}} {
		for _, mode := range []struct {
			name string
			on   bool
		}{{"plain", false}, {"metrics", true}} {
			b.Run(platform.name+"/"+mode.name, func(b *testing.B) {
				h := handler(platform.key, mode.on)
				req := httptest.NewRequest("GET", "/v1/certificates", nil)
				req.Header.Set("Authorization", auth)
				b.ReportAllocs()
				for b.Loop() {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
		}
	}
}
