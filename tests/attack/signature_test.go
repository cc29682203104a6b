package attack

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	strangerOnce sync.Once
	strangerKey  *rsa.PrivateKey
)

// stranger is an RSA key no merchant registered.
func stranger(t testing.TB) *rsa.PrivateKey {
	strangerOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		strangerKey = k
	})
	return strangerKey
}

// TestSignatureAttacksRefused is issue 11 item 10: every way to present a
// payment the merchant did not sign is a signed 401 signature_invalid with
// the reason of the check that failed, before the nonce is claimed; the
// ledger does not move. The signature is checked before the body is even
// parsed, so a tampered body is never decoded.
func TestSignatureAttacksRefused(t *testing.T) {
	s := shared(t)
	_, tok := s.wallet(t, "50.00")
	m := s.merchants[honest]
	platformSerial := func() string {
		k, err := s.platform.PlatformKey(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return k.ID()
	}()
	type tc struct {
		name   string
		cert   string // the client certificate's merchant; honest if empty
		tamper func(r *signed)
		reason string
	}
	replaceIn := func(field, value string) func(r *signed) {
		return func(r *signed) {
			i := strings.Index(r.auth, field+`="`)
			j := strings.Index(r.auth[i+len(field)+2:], `"`)
			r.auth = r.auth[:i] + field + `="` + value + `"` + r.auth[i+len(field)+2+j+1:]
		}
	}
	resign := func(key crypto.Signer, merchant, keyID string) func(r *signed) {
		return func(r *signed) {
			*r = signWith(t, key, merchant, keyID, r.method, r.target, r.body, time.Now())
		}
	}
	cases := []tc{
		{"missing", "", func(r *signed) { r.auth = "" }, "signature_missing"},
		{"empty header", "", func(r *signed) { r.auth, r.emptyAuth = "", true }, "signature_malformed"},
		{"empty scheme A header", "", func(r *signed) { r.auth = "WECHATPAY2-SHA256-RSA2048 " }, "signature_malformed"},
		{"scheme only", "", func(r *signed) { r.auth = "WECHATPAY2-SHA256-RSA2048" }, "signature_malformed"},
		{"downgraded scheme SHA1", "", func(r *signed) {
			r.auth = strings.Replace(r.auth, "WECHATPAY2-SHA256-RSA2048", "WECHATPAY2-SHA1-RSA1024", 1)
		}, "signature_malformed"},
		{"unknown scheme", "", func(r *signed) {
			r.auth = strings.Replace(r.auth, "WECHATPAY2-SHA256-RSA2048", "WECHATPAY3-SHA512-ED25519", 1)
		}, "signature_malformed"},
		{"bearer", "", func(r *signed) { r.auth = "Bearer " + tok }, "signature_malformed"},
		{"basic", "", func(r *signed) { r.auth = "Basic TTEwMDpwYXNzd29yZA==" }, "signature_malformed"},
		{"unknown field added", "", func(r *signed) { r.auth += `,alg="none"` }, "signature_malformed"},
		{"signature field twice", "", func(r *signed) { r.auth += `,signature="` + signatureOf(r.auth) + `"` }, "signature_malformed"},
		{"empty signature", "", replaceIn("signature", ""), "signature_malformed"},
		{"signature not base64", "", replaceIn("signature", "%%%"), "signature_malformed"},
		{"unknown key id", "", replaceIn("serial_no", "0000000000000000000000000000000000000000"), "key_unknown"},
		{"the platform serial as key id", "", replaceIn("serial_no", platformSerial), "key_unknown"},
		{"another merchant's key id", "", replaceIn("serial_no", s.merchants[other].KeyID), "key_unknown"},
		{"signed with another merchant's key", "", resign(s.merchants[other].SigningKey, honest, m.KeyID), "signature_mismatch"},
		{"signed with an unregistered key", "", resign(stranger(t), honest, m.KeyID), "signature_mismatch"},
		{"another merchant's signature on this merchant's certificate", "", resign(s.merchants[other].SigningKey, other, s.merchants[other].KeyID), "merchant_mismatch"},
		{"this merchant's signature on another merchant's certificate", other, func(*signed) {}, "merchant_mismatch"},
		{"mchid changed", "", replaceIn("mchid", other), "merchant_mismatch"},
		{"timestamp moved", "", func(r *signed) {
			ts := fmt.Sprint(time.Now().Unix())
			r.auth = strings.Replace(r.auth, `timestamp="`, `timestamp="`+ts[:len(ts)-1]+`x`, 1)
		}, "signature_malformed"},
		{"timestamp an hour old", "", func(r *signed) {
			*r = signWith(t, m.SigningKey, honest, m.KeyID, r.method, r.target, r.body, time.Now().Add(-time.Hour))
		}, "timestamp_outside_window"},
		{"nonce changed", "", replaceIn("nonce_str", "00000000000000000000000000000000"), "signature_mismatch"},
		{"method changed", "", func(r *signed) { r.method = "PUT" }, ""}, // no PUT route: 405 below
		{"query added", "", func(r *signed) { r.target += "?amount=0.01" }, "signature_mismatch"},
		{"body re-serialized (indented)", "", func(r *signed) {
			var v map[string]any
			json.Unmarshal(r.body, &v)
			r.body, _ = json.MarshalIndent(v, "", "  ")
		}, "signature_mismatch"},
		{"body re-serialized (keys reordered)", "", func(r *signed) {
			var v map[string]any
			json.Unmarshal(r.body, &v)
			r.body, _ = json.Marshal(v) // encoding/json sorts keys
		}, "signature_mismatch"},
		{"body with a trailing newline", "", func(r *signed) { r.body = append(r.body, '\n') }, "signature_mismatch"},
		{"body truncated", "", func(r *signed) { r.body = r.body[:len(r.body)-1] }, "signature_mismatch"},
	}
	// Body byte flips: every tenth byte, and both ends, one bit each.
	for i := 0; i < len(paymentBody(newOrderID(), "1.00", tok)); i += 10 {
		i := i
		cases = append(cases, tc{fmt.Sprintf("body byte %d flipped", i), "", func(r *signed) {
			r.body = bytes.Clone(r.body)
			r.body[i%len(r.body)] ^= 0x01
		}, "signature_mismatch"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := s.state(t)
			order := newOrderID()
			r := s.sign(t, honest, "POST", "/v1/payments", paymentBody(order, "1.00", tok))
			nonce := r.nonce
			c.tamper(&r)
			sent.addBody(r.body)
			cert := honest
			if c.cert != "" {
				cert = c.cert
			}
			res := s.exchange(t, s.cert(cert), r.raw())
			if c.name == "method changed" {
				refused(t, res, http.StatusMethodNotAllowed, "method_not_allowed", "")
			} else {
				refused(t, res, http.StatusUnauthorized, "signature_invalid", c.reason)
			}
			if strings.Contains(string(res.Body), signatureOf(r.auth)) && signatureOf(r.auth) != "" {
				t.Fatal("the answer echoes the signature")
			}
			s.unchanged(t, before)
			if s.nonceClaimed(t, honest, nonce) || s.nonceClaimed(t, other, nonce) {
				t.Fatal("a refused request claimed its nonce")
			}
		})
	}
}

// TestSignedButBadJSONRefused is issue 11 item 10 (JSON): a body the
// merchant did sign, but with duplicate members (the proxy-reads-last trick),
// members differing only in case (encoding/json would match them), or
// unknown members, is refused with 422 listing each, or 400 if it is not one
// JSON object; nothing is recorded. Its nonce is spent: the signature did
// verify.
func TestSignedButBadJSONRefused(t *testing.T) {
	s := shared(t)
	user, tok := s.wallet(t, "50.00")
	for _, c := range []struct {
		name   string
		body   func(order string) string
		status int
		field  string
		code   string
	}{
		{"duplicate amount", func(o string) string {
			return fmt.Sprintf(`{"order_id":%q,"amount":"1.00","amount":"40.00","currency":"CNY","payer_token":%q}`, o, tok)
		}, 422, "amount", "duplicate"},
		{"duplicate order id", func(o string) string {
			return fmt.Sprintf(`{"order_id":%q,"order_id":"ORD999999999999","amount":"1.00","currency":"CNY","payer_token":%q}`, o, tok)
		}, 422, "order_id", "duplicate"},
		{"case-variant key", func(o string) string {
			return fmt.Sprintf(`{"order_id":%q,"amount":"1.00","Amount":"40.00","currency":"CNY","payer_token":%q}`, o, tok)
		}, 422, "Amount", "unknown"},
		{"case-variant only", func(o string) string {
			return fmt.Sprintf(`{"ORDER_ID":%q,"amount":"1.00","currency":"CNY","payer_token":%q}`, o, tok)
		}, 422, "ORDER_ID", "unknown"},
		{"unknown field", func(o string) string {
			return fmt.Sprintf(`{"order_id":%q,"amount":"1.00","currency":"CNY","payer_token":%q,"fee":"0.00"}`, o, tok)
		}, 422, "fee", "unknown"},
		{"unknown nested field", func(o string) string {
			return fmt.Sprintf(`{"order_id":%q,"amount":"1.00","currency":"CNY","payer_token":%q,"payer":{"user_id":"1"}}`, o, tok)
		}, 422, "payer", "unknown"},
		{"escaped key spelling a duplicate", func(o string) string {
			return fmt.Sprintf(`{"order_id":%q,"amount":"1.00","\u0061mount":"40.00","currency":"CNY","payer_token":%q}`, o, tok)
		}, 422, "amount", "duplicate"},
		{"two objects", func(o string) string {
			return fmt.Sprintf(`{"order_id":%q,"amount":"1.00","currency":"CNY","payer_token":%q}{"amount":"40.00"}`, o, tok)
		}, 400, "", ""},
		{"an array", func(o string) string { return fmt.Sprintf(`[{"order_id":%q}]`, o) }, 400, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := s.state(t)
			order := newOrderID()
			r := s.send(t, honest, "POST", "/v1/payments", []byte(c.body(order)))
			if c.status == 400 {
				refused(t, r, 400, "malformed_json", "")
			} else {
				refused(t, r, 422, "validation_failed", "")
				if got := fieldErrors(t, r)[c.field]; got != c.code {
					t.Fatalf("field %s: %q, want %q: %s", c.field, got, c.code, r.Body)
				}
			}
			s.unchanged(t, before)
		})
	}
	if b := s.walletBalance(t, user); b != 5000 {
		t.Fatalf("wallet %d, want 5000", b)
	}
}

// walletBalance is user's wallet balance in minor units.
func (s *server) walletBalance(t testing.TB, user string) int64 {
	t.Helper()
	var b int64
	err := s.db.QueryRow(t.Context(), `
		SELECT coalesce(sum(p.amount), 0) * CASE WHEN a.type IN ('asset','expense') THEN 1 ELSE -1 END
		FROM accounts a LEFT JOIN postings p ON p.account_id = a.id
		WHERE a.code = $1 AND a.currency = 'CNY' GROUP BY a.type`, "user:"+user).Scan(&b)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
