package signing_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/quillpay/quill/signing"
)

func TestRedact(t *testing.T) {
	const jwt = "eyJhbGciOiJFZERTQSIsImtpZCI6IlBBWUVSXzEifQ.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLWJ5dGVz"
	for _, c := range []struct{ in, want, gone string }{
		{`{"payer_token":"` + jwt + `","amount":"1.00"}`, `{"payer_token":"[redacted]","amount":"1.00"}`, "c2lnbmF0dXJl"},
		{`{"Payer_Token" : "opaque-not-a-jwt"}`, `{"Payer_Token" : "[redacted]"}`, "opaque"},
		{`{"note":"` + jwt + `"}`, `{"note":"[redacted]"}`, "eyJzdWIi"},
		{`{"password":"a\"b","x":"y"}`, `{"password":"[redacted]","x":"y"}`, `a\"b`},
		{"authorization: Bearer " + jwt[:30], "authorization: Bearer [redacted]", "eyJhbGci"},
		{`{"payer_token":"cut-by-trunc`, `{"payer_token":"[redacted]"`, "cut-by"},
		{`{"amount":"12.34","order_id":"ORD1"}`, `{"amount":"12.34","order_id":"ORD1"}`, ""},
	} {
		got := signing.Redact(c.in)
		if got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
		if c.gone != "" && strings.Contains(got, c.gone) {
			t.Errorf("Redact(%q) kept %q", c.in, c.gone)
		}
		if again := signing.Redact(got); again != got {
			t.Errorf("not idempotent: %q → %q", got, again)
		}
	}
}

// TestVerifyExpectedRedactsTokens: a refused scheme A request's echo never
// carries its payer token; the hint gives the body's length and SHA-256.
func TestVerifyExpectedRedactsTokens(t *testing.T) {
	f := newFixture(t)
	const jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiI0MiIsImV4cCI6MTcwMDAwMDYwMH0.bm90LWEtcmVhbC1zaWduYXR1cmU"
	body := []byte(`{"order_id":"ORD000000000001","amount":"12.34","currency":"CNY","payer_token":"` + jwt + `"}`)
	req := signing.Request{Method: "POST", Target: "/v1/payments", Body: body, Merchant: merchant,
		Authorization: signedAt(t, f.key, "POST", "/v1/payments", []byte("something else"), now, "N-jwt")}
	_, err := f.v.Verify(context.Background(), req)
	fail := checkFailure(t, err, signing.ErrBadSignature, req.Authorization)
	for _, part := range append(strings.Split(jwt, "."), jwt) {
		if strings.Contains(fail.Expected, part) || strings.Contains(fail.Hint, part) || strings.Contains(err.Error(), part) {
			t.Fatalf("token part %q echoed: %q / %q", part, fail.Expected, fail.Hint)
		}
	}
	sum := sha256.Sum256(body)
	if !strings.Contains(fail.Expected, `"payer_token":"[redacted]"`) || !strings.Contains(fail.Hint, fmt.Sprintf("%d bytes with SHA-256 %x", len(body), sum)) {
		t.Fatalf("expected %q, hint %q", fail.Expected, fail.Hint)
	}
}
