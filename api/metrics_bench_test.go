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

// schemeAOnly is a scheme A verifier as an api.Authenticator: the benchmark
// sends no scheme B request.
type schemeAOnly struct{ *signing.Verifier }

func (schemeAOnly) VerifyMessage(context.Context, signing.MessageRequest) (signing.Verified, error) {
	return signing.Verified{}, signing.ErrAlgorithm
}

type benchPlatform struct{ key crypto.Signer }

func (p benchPlatform) SigningKey(context.Context) (string, crypto.Signer, error) {
	return "PLATFORM1", p.key, nil
}

func (p benchPlatform) PlatformPublicKeys(context.Context) ([]keys.PublicKey, error) {
	return []keys.PublicKey{{ID: "PLATFORM1", Public: p.key.Public(), Status: keys.Active}}, nil
}

// BenchmarkRequestMetrics sends one signed GET /v1/certificates through the
// merchant API handler (scheme A verification, response signature, access
// log) without and with every metrics hook cmd/quill installs, alternately in
// one loop, and reports both times per request and their ratio. The RSA-2048 platform key is what
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
		var auth api.Authenticator = schemeAOnly{&signing.Verifier{Keys: benchKeys{&merchantKey.PublicKey}, Nonces: anyNonce{}, Now: func() time.Time { return now }}}
		var keys signing.PlatformKeys = pk
		var observe func(api.RequestRecord)
		if withMetrics {
			m := metrics.New()
			auth = m.Authenticator(schemeAOnly{&signing.Verifier{Keys: benchKeys{&merchantKey.PublicKey}, Nonces: m.NonceStore(anyNonce{}), Now: func() time.Time { return now }}}, "go")
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
		b.Run(platform.name, func(b *testing.B) {
			plain, instrumented := handler(platform.key, false), handler(platform.key, true)
			req := httptest.NewRequest("GET", "/v1/certificates", nil)
			req.Header.Set("Authorization", auth)
			serve := func(h http.Handler) time.Duration {
				start := time.Now()
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
				return time.Since(start)
			}
			// Alternate the two within one loop, so a noisy neighbour slows
			// both alike and the ratio stays meaningful.
			var tPlain, tMetrics time.Duration
			n := 0
			for b.Loop() {
				if n%2 == 0 {
					tPlain += serve(plain)
					tMetrics += serve(instrumented)
				} else {
					tMetrics += serve(instrumented)
					tPlain += serve(plain)
				}
				n++
			}
			b.ReportMetric(float64(tPlain.Nanoseconds())/float64(n), "plain-ns/req")
			b.ReportMetric(float64(tMetrics.Nanoseconds())/float64(n), "metrics-ns/req")
			b.ReportMetric(float64(tMetrics)/float64(tPlain), "ratio")
		})
	}
}
