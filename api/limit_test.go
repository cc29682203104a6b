package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/internal/fakeclock"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/signing"
)

func TestFailureLimiterWindows(t *testing.T) {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	l := NewFailureLimiter(2, 10*time.Second, 0, clock.Now)
	steps := []struct {
		advance  time.Duration
		merchant string
		want     time.Duration
	}{
		{0, "M1", 0},
		{time.Second, "M1", 0},
		{time.Second, "M1", 8 * time.Second}, // third in the window opened at 0
		{0, "M2", 0},                         // per merchant
		{5 * time.Second, "M1", 3 * time.Second},
		{3 * time.Second, "M1", 0}, // the window ended: a new one opens
		{0, "M1", 0},
		{0, "M1", 10 * time.Second},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if got := l.refuse(s.merchant); got != s.want {
			t.Fatalf("step %d (%s): throttled for %s, want %s", i, s.merchant, got, s.want)
		}
	}
}

// countingSigner signs with a fresh nonce each time and counts signatures,
// the cost the limiter exists to bound.
type countingSigner struct{ n atomic.Int64 }

func (c *countingSigner) Prepare(context.Context) (func([]byte) (signing.ResponseSignature, error), error) {
	return func(body []byte) (signing.ResponseSignature, error) {
		n := c.n.Add(1)
		return signing.ResponseSignature{Timestamp: "1", Nonce: fmt.Sprint(n), Serial: "S", Signature: fmt.Sprintf("sig%d-len%d", n, len(body))}, nil
	}, nil
}

// TestThrottledRefusalsCostNoSignature covers issue 5 item 6: past the limit,
// a merchant's refused requests get one cached, signed 429 with Retry-After
// (no new signature each), while its correctly signed requests and other
// merchants are served as usual.
func TestThrottledRefusalsCostNoSignature(t *testing.T) {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	signer := &countingSigner{}
	d := Deps{
		Auth: authFunc(func(_ context.Context, r signing.Request) (signing.Verified, error) {
			if r.Authorization != "good" {
				return signing.Verified{}, &signing.Failure{Err: signing.ErrBadSignature, Hint: "no"}
			}
			return signing.Verified{Merchant: r.Merchant, KeyID: "K"}, nil
		}),
		Identify: func(r *http.Request) (string, error) { return r.Header.Get("X-Cert"), nil },
		Signer:   signer,
		Platform: noKeys{},
		Log:      zerolog.New(io.Discard),
		Failures: NewFailureLimiter(3, 10*time.Second, time.Millisecond, clock.Now),
	}
	h := NewHandler(d)
	send := func(merchant, auth, target string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", target, nil)
		req.Header.Set("X-Cert", merchant)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := 0; i < 3; i++ {
		if rec := send("M1", "bad", "/v1/certificates"); rec.Code != 401 {
			t.Fatalf("refusal %d: %d, want 401", i+1, rec.Code)
		}
	}
	if got := signer.n.Load(); got != 3 {
		t.Fatalf("%d signatures for 3 refusals", got)
	}
	var first string
	for i, target := range []string{"/v1/certificates", "/v1/certificates", "/nope", "/v1/payments/ORD1%00"} {
		rec := send("M1", "bad", target)
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("throttled %s: %d %s", target, rec.Code, rec.Body)
		}
		if code, _ := problemCode(t, rec); code != "too_many_failures" {
			t.Fatalf("code %q", code)
		}
		if ra := rec.Header().Get("Retry-After"); ra != "10" {
			t.Fatalf("Retry-After %q, want 10", ra)
		}
		sig := rec.Header().Get("Wechatpay-Signature")
		if !strings.HasSuffix(sig, fmt.Sprintf("-len%d", rec.Body.Len())) {
			t.Fatalf("signature %q not over the body sent (%d bytes)", sig, rec.Body.Len())
		}
		if i == 0 {
			first = sig
		} else if sig != first {
			t.Fatalf("429 %d signed afresh: %q vs %q", i, sig, first)
		}
		if rec.Header().Get("Request-ID") == "" || strings.Contains(rec.Body.String(), "request_id") {
			t.Fatal("want Request-ID in the header and none in the shared body")
		}
	}
	if got := signer.n.Load(); got != 4 {
		t.Fatalf("%d signatures after 4 throttled refusals, want 4 (3 refusals + the cached 429)", got)
	}
	// HEAD sends no body, so its 429 signs none.
	head := httptest.NewRequest("HEAD", "/v1/certificates", nil)
	head.Header.Set("X-Cert", "M1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, head)
	if rec.Code != http.StatusTooManyRequests || rec.Body.Len() != 0 || !strings.HasSuffix(rec.Header().Get("Wechatpay-Signature"), "-len0") {
		t.Fatalf("HEAD: %d, %d body bytes, signature %q", rec.Code, rec.Body.Len(), rec.Header().Get("Wechatpay-Signature"))
	}
	// A correctly signed request of the same merchant is served, and signed.
	if rec := send("M1", "good", "/v1/certificates"); rec.Code != 200 {
		t.Fatalf("verified request while throttled: %d %s", rec.Code, rec.Body)
	}
	// Another merchant is not throttled.
	if rec := send("M2", "bad", "/v1/certificates"); rec.Code != 401 {
		t.Fatalf("other merchant: %d", rec.Code)
	}
	// Once the window has passed, refusals are full 401s again; the cached
	// 429 is re-signed once it is presignTTL old.
	clock.Advance(10 * time.Second)
	if rec := send("M1", "bad", "/v1/certificates"); rec.Code != 401 {
		t.Fatalf("after the window: %d", rec.Code)
	}
}

// noKeys is a PlatformKeys with no key, enough for GET /v1/certificates.
type noKeys struct{}

func (noKeys) PlatformPublicKeys(context.Context) ([]keys.PublicKey, error) { return nil, nil }
