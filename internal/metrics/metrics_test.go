package metrics_test

import (
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
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/internal/fakeclock"
	"github.com/quillpay/quill/internal/metrics"
	"github.com/quillpay/quill/signing"
)

func TestObserveRequestLabels(t *testing.T) {
	m := metrics.New()
	for _, r := range []api.RequestRecord{
		{Route: "/v1/payments", Method: "POST", Status: 200, Latency: 3 * time.Millisecond},
		{Route: "/v1/payments", Method: "POST", Status: 200, Latency: 4 * time.Millisecond},
		{Route: "/v1/payments/{order_id}", Method: "GET", Status: 401, Code: "signature_invalid", Latency: time.Millisecond},
		{Route: "", Method: "BREW", Status: 404, Code: "route_not_found"},
		{Route: "", Method: "PROPFIND", Status: 404, Code: "route_not_found"},
	} {
		m.ObserveRequest(r)
	}
	want := `
# HELP quill_http_requests_total Merchant API requests answered, by chi route pattern, method, status and problem code (none for a success).
# TYPE quill_http_requests_total counter
quill_http_requests_total{code="none",method="POST",route="/v1/payments",status="200"} 2
quill_http_requests_total{code="route_not_found",method="other",route="unmatched",status="404"} 2
quill_http_requests_total{code="signature_invalid",method="GET",route="/v1/payments/{order_id}",status="401"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), stringsReader(want), "quill_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.Registry(), "quill_http_request_duration_seconds"); n != 3 {
		t.Errorf("%d latency series, want 3 (one per route and method)", n)
	}
}

func TestLedgerObserver(t *testing.T) {
	m := metrics.New()
	depth := 7
	m.LedgerQueue(func() int { return depth })
	m.BatchCommitted(3, 2*time.Millisecond)
	m.BatchCommitted(5, 4*time.Millisecond)
	want := `
# HELP quill_ledger_queue_depth Entries waiting for the ledger writer; it grows when commits cannot keep up.
# TYPE quill_ledger_queue_depth gauge
quill_ledger_queue_depth 7
`
	if err := testutil.GatherAndCompare(m.Registry(), stringsReader(want), "quill_ledger_queue_depth"); err != nil {
		t.Error(err)
	}
	count, sum := histogram(t, m, "quill_ledger_batch_entries")
	if count != 2 || sum != 8 {
		t.Errorf("batch entries: count %d sum %v, want 2 and 8", count, sum)
	}
	count, sum = histogram(t, m, "quill_ledger_commit_duration_seconds")
	if count != 2 || sum < 0.0059 || sum > 0.0061 {
		t.Errorf("commit seconds: count %d sum %v, want 2 and 0.006", count, sum)
	}
}

func TestKeyStoreAge(t *testing.T) {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	var loaded time.Time
	m := metrics.New()
	m.KeyStore(func() time.Time { return loaded }, clock.Now, 10*time.Minute)
	age := func() float64 {
		t.Helper()
		return gauge(t, m, "quill_keys_age_seconds")
	}
	if a := age(); a != -1 {
		t.Errorf("age before a load = %v, want -1", a)
	}
	loaded = clock.Now()
	clock.Advance(90 * time.Second)
	if a := age(); a != 90 {
		t.Errorf("age = %v, want 90", a)
	}
	if s := gauge(t, m, "quill_keys_max_stale_seconds"); s != 600 {
		t.Errorf("max stale = %v, want 600", s)
	}
}

type fakeAuth struct{ err error }

func (a fakeAuth) Verify(context.Context, signing.Request) (signing.Verified, error) {
	return signing.Verified{}, a.err
}

func (a fakeAuth) VerifyMessage(context.Context, signing.MessageRequest) (signing.Verified, error) {
	if a.err != nil {
		return signing.Verified{}, a.err
	}
	return signing.Verified{Scheme: signing.SchemeHTTPSig, Algorithm: signing.Ed25519}, nil
}

func TestVerificationResults(t *testing.T) {
	m := metrics.New()
	for _, err := range []error{
		nil, nil,
		&signing.Failure{Err: signing.ErrBadSignature},
		&signing.Failure{Err: signing.ErrReplay},
		&signing.Failure{Err: signing.ErrStale},
		fmt.Errorf("%w: redis: timeout", signing.ErrUnavailable),
		errors.New("key store: connection refused"),
	} {
		m.Authenticator(fakeAuth{err}, "openssl").Verify(context.Background(), signing.Request{})
	}
	// Scheme B through the same wrapper: Go's crypto whatever the scheme A
	// backend, the verified key's algorithm, "unknown" when none verified.
	auth := m.Authenticator(fakeAuth{}, "openssl")
	auth.VerifyMessage(context.Background(), signing.MessageRequest{})
	m.Authenticator(fakeAuth{&signing.Failure{Err: signing.ErrUnknownKey}}, "openssl").VerifyMessage(context.Background(), signing.MessageRequest{})
	m.ObserveVerification(metrics.SchemeB, signing.Ed25519, "go", &signing.Failure{Err: signing.ErrReplay})
	want := `
# HELP quill_signature_verifications_total Request signature verifications, by scheme, algorithm, crypto backend and result (ok or the refusal).
# TYPE quill_signature_verifications_total counter
quill_signature_verifications_total{algorithm="ed25519",backend="go",result="ok",scheme="rfc9421"} 1
quill_signature_verifications_total{algorithm="ed25519",backend="go",result="replay",scheme="rfc9421"} 1
quill_signature_verifications_total{algorithm="rsa-v1_5-sha256",backend="openssl",result="bad_signature",scheme="wechatpay"} 1
quill_signature_verifications_total{algorithm="rsa-v1_5-sha256",backend="openssl",result="error",scheme="wechatpay"} 1
quill_signature_verifications_total{algorithm="rsa-v1_5-sha256",backend="openssl",result="ok",scheme="wechatpay"} 2
quill_signature_verifications_total{algorithm="rsa-v1_5-sha256",backend="openssl",result="replay",scheme="wechatpay"} 1
quill_signature_verifications_total{algorithm="rsa-v1_5-sha256",backend="openssl",result="stale",scheme="wechatpay"} 1
quill_signature_verifications_total{algorithm="rsa-v1_5-sha256",backend="openssl",result="unavailable",scheme="wechatpay"} 1
quill_signature_verifications_total{algorithm="unknown",backend="go",result="unknown_key",scheme="rfc9421"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), stringsReader(want), "quill_signature_verifications_total"); err != nil {
		t.Error(err)
	}
}

type fakeNonces struct{ errs []error }

func (f *fakeNonces) Claim(context.Context, string, string, time.Duration) error {
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

func TestNonceStoreCounts(t *testing.T) {
	m := metrics.New()
	inner := &fakeNonces{errs: []error{nil, signing.ErrReplay, fmt.Errorf("%w: redis: i/o timeout", signing.ErrUnavailable), nil}}
	s := m.NonceStore(inner)
	wantErrs := []error{nil, signing.ErrReplay, signing.ErrUnavailable, nil}
	for i, want := range wantErrs {
		if err := s.Claim(context.Background(), "M1", "N", time.Minute); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Fatalf("claim %d: %v, want %v passed through", i, err, want)
		}
	}
	want := `
# HELP quill_nonce_claims_total Nonce claims in the replay guard, by result: ok, replay, or error (store unreachable or uncertain: the request got a 503).
# TYPE quill_nonce_claims_total counter
quill_nonce_claims_total{result="error"} 1
quill_nonce_claims_total{result="ok"} 2
quill_nonce_claims_total{result="replay"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), stringsReader(want), "quill_nonce_claims_total"); err != nil {
		t.Error(err)
	}
	if count, _ := histogram(t, m, "quill_nonce_claim_duration_seconds"); count != 4 {
		t.Errorf("%d claim latencies observed, want 4", count)
	}
}

type onePlatformKey struct{ s crypto.Signer }

func (p onePlatformKey) SigningKey(context.Context) (string, crypto.Signer, error) {
	return "P1", p.s, nil
}

func TestResponseSignaturesByAlgorithm(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	d := sha256.Sum256([]byte("body"))
	m := metrics.New()
	for _, c := range []struct {
		key    crypto.Signer
		digest []byte
		opts   crypto.SignerOpts
	}{
		{rk, d[:], crypto.SHA256},
		{rk, d[:], crypto.SHA256},
		{ek, d[:], crypto.SHA256},
		{edk, []byte("body"), crypto.Hash(0)},
	} {
		serial, s, err := m.PlatformKeys(onePlatformKey{c.key}, metrics.SchemeA, "go").SigningKey(context.Background())
		if err != nil || serial != "P1" {
			t.Fatalf("SigningKey: %q %v", serial, err)
		}
		sig, err := s.Sign(rand.Reader, c.digest, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := (signing.GoCrypto{}).Verify(s.Public(), c.digest, sig, c.opts); err != nil {
			t.Errorf("wrapped signer's signature does not verify: %v", err)
		}
	}
	want := `
# HELP quill_response_signatures_total Response signatures made with the platform key, by scheme, algorithm, crypto backend and result (ok or error).
# TYPE quill_response_signatures_total counter
quill_response_signatures_total{algorithm="ecdsa-p256-sha256",backend="go",result="ok",scheme="wechatpay"} 1
quill_response_signatures_total{algorithm="ed25519",backend="go",result="ok",scheme="wechatpay"} 1
quill_response_signatures_total{algorithm="rsa-v1_5-sha256",backend="go",result="ok",scheme="wechatpay"} 2
`
	if err := testutil.GatherAndCompare(m.Registry(), stringsReader(want), "quill_response_signatures_total"); err != nil {
		t.Error(err)
	}
}

// nopSigner signs nothing, so BenchmarkHooksPerRequest times only the hooks.
type nopSigner struct{ pub crypto.PublicKey }

func (s nopSigner) Public() crypto.PublicKey { return s.pub }
func (s nopSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, nil
}

type nopNonces struct{}

func (nopNonces) Claim(context.Context, string, string, time.Duration) error { return nil }

// BenchmarkHooksPerRequest is what the metrics add to one verified request:
// the verification count, a timed nonce claim, a timed response signature
// (wrapping the signer included) and the request count and latency, around
// operations that do nothing.
func BenchmarkHooksPerRequest(b *testing.B) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	m := metrics.New()
	auth := m.Authenticator(fakeAuth{}, "go")
	nonces := m.NonceStore(nopNonces{})
	platform := m.PlatformKeys(onePlatformKey{nopSigner{&rk.PublicKey}}, metrics.SchemeA, "go")
	ctx := context.Background()
	d := sha256.Sum256([]byte("body"))
	rec := api.RequestRecord{Route: "/v1/payments", Method: "POST", Status: 200, Latency: 2 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		auth.Verify(ctx, signing.Request{})
		nonces.Claim(ctx, "M1", "N1", time.Minute)
		_, s, _ := platform.SigningKey(ctx)
		s.Sign(rand.Reader, d[:], crypto.SHA256)
		m.ObserveRequest(rec)
	}
}
