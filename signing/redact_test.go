package signing_test

import (
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
