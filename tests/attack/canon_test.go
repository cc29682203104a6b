package attack

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestTargetCanonicalization is issue 11 item 11: Quill verifies, routes
// and records the request-target exactly as sent, and never a normalised
// form. A target that does not route as sent (an encoded slash, double
// encoding, a trailing or double slash, dot segments, a `;` parameter) is a
// signed 404 even though it is signed over exactly those bytes, with no
// effect and no nonce claimed; a target that does route (duplicate or
// `;`-separated query parameters, which the payment routes ignore) is
// recorded with the target as sent, so the stored evidence re-verifies;
// and a target that differs from the signed one in any of these ways is a
// 401. An absolute-form target is refused 400 whatever it names.
func TestTargetCanonicalization(t *testing.T) {
	s := shared(t)
	_, tok := s.wallet(t, "50.00")
	for _, c := range []struct {
		name, target string
		status       int
		code         string
	}{
		{"duplicate query parameters", "/v1/payments?channel=a&channel=b", 200, ""},
		{"semicolon in the query", "/v1/payments?a=1;b=2", 200, ""},
		{"encoded slash", "/v1%2Fpayments", 404, "not_found"},
		{"encoded slash, lower case", "/v1%2fpayments", 404, "not_found"},
		{"double encoding", "/v1%252Fpayments", 404, "not_found"},
		{"encoded letter", "/v1/p%61yments", 404, "not_found"},
		{"trailing slash", "/v1/payments/", 404, "not_found"},
		{"double slash in front", "//v1/payments", 404, "not_found"},
		{"double slash inside", "/v1//payments", 404, "not_found"},
		{"dot segment", "/v1/./payments", 404, "not_found"},
		{"dot-dot segment", "/v1/x/../payments", 404, "not_found"},
		{"encoded dot-dot", "/v1/x/%2e%2e/payments", 404, "not_found"},
		{"path parameter", "/v1/payments;x=1", 404, "not_found"},
		{"absolute form", "https://127.0.0.1/v1/payments", 400, "malformed_request"},
		{"absolute form, another host", "https://evil.example/v1/payments", 400, "malformed_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := s.state(t)
			order := newOrderID()
			r := s.sign(t, honest, "POST", c.target, paymentBody(order, "1.00", tok))
			res := s.exchange(t, s.cert(honest), r.raw())
			if c.status == 200 {
				if res.Status != 200 || !res.Signed {
					t.Fatalf("status %d signed=%v: %s", res.Status, res.Signed, res.Body)
				}
				var target string
				if err := s.db.QueryRow(t.Context(), `SELECT evidence_target FROM entries WHERE order_id = $1`, order).Scan(&target); err != nil {
					t.Fatal(err)
				}
				if target != c.target {
					t.Fatalf("recorded target %q, signed and sent %q", target, c.target)
				}
				return
			}
			refused(t, res, c.status, c.code, "")
			s.unchanged(t, before)
			if s.nonceClaimed(t, honest, r.nonce) {
				t.Fatal("a refused request claimed its nonce")
			}
		})
	}

	// Signed over one form, sent in another: refused, whichever form routes.
	for _, c := range []struct{ name, signedFor, sentAs string }{
		{"query parameter repeated after signing", "/v1/payments?channel=a", "/v1/payments?channel=a&channel=b"},
		{"query parameters reordered", "/v1/payments?a=1&b=2", "/v1/payments?b=2&a=1"},
		{"query decoded after signing", "/v1/payments?q=a%2Fb", "/v1/payments?q=a/b"},
		{"query encoded after signing", "/v1/payments?q=a/b", "/v1/payments?q=a%2Fb"},
		{"semicolon turned into ampersand", "/v1/payments?a=1;b=2", "/v1/payments?a=1&b=2"},
		{"path normalised after signing", "/v1/x/../payments", "/v1/payments"},
		{"trailing slash dropped after signing", "/v1/payments/", "/v1/payments"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := s.state(t)
			r := s.sign(t, honest, "POST", c.signedFor, paymentBody(newOrderID(), "1.00", tok))
			r.target = c.sentAs
			refused(t, s.exchange(t, s.cert(honest), r.raw()), http.StatusUnauthorized, "signature_invalid", "signature_mismatch")
			s.unchanged(t, before)
			if s.nonceClaimed(t, honest, r.nonce) {
				t.Fatal("a refused request claimed its nonce")
			}
		})
	}

	// A path parameter is decoded once before it is looked up: an escaped
	// letter names the same order; an escaped slash, dot segments or a
	// second level of escaping name none.
	order := newOrderID()
	if r := s.send(t, honest, "POST", "/v1/payments", paymentBody(order, "1.00", tok)); r.Status != 200 {
		t.Fatalf("payment: %d %s", r.Status, r.Body)
	}
	escaped := "%4F" + order[1:] // %4F is "O"
	for _, c := range []struct {
		target string
		status int
	}{
		{"/v1/payments/" + order, 200},
		{"/v1/payments/" + escaped, 200},
		{"/v1/payments/%254F" + order[1:], 404},
		{"/v1/payments/x%2F..%2F" + order, 404},
		{"/v1/payments/x/../" + order, 404},
		{"/v1/payments/" + order + "/", 404},
		{"/v1/payments/" + order + ";x", 404},
	} {
		t.Run("GET "+c.target, func(t *testing.T) {
			res := s.send(t, honest, "GET", c.target, nil)
			if res.Status != c.status || !res.Signed {
				t.Fatalf("status %d signed=%v, want %d: %s", res.Status, res.Signed, c.status, res.Body)
			}
			if c.status == 200 {
				var p struct {
					OrderID string `json:"order_id"`
				}
				json.Unmarshal(res.Body, &p)
				if p.OrderID != order {
					t.Fatalf("answered order %q", p.OrderID)
				}
			} else if code := res.problem(t)["code"]; code != "not_found" {
				t.Fatalf("code %v", code)
			}
		})
	}
}
