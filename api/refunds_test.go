package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/quillpay/quill/policy"
)

func refundBody(refundID, order, amount, currency, reason string) string {
	b, _ := json.Marshal(map[string]string{"refund_id": refundID, "order_id": order, "amount": amount, "currency": currency, "reason": reason})
	return string(b)
}

// TestRefundHandler: a refund of a payment, its replay and conflict, the
// refund errors each with its stable code, and another merchant's order
// answered like an unknown one.
func TestRefundHandler(t *testing.T) {
	f := newCreateFixture()
	f.dir.set(policy.Merchant{ID: "M2", FeeBps: 100})
	const order = "ORD000000000001"
	if r := f.post(t, "/v1/payments", payBody(order, "10.00", "good-42", "")); r.Code != 200 {
		t.Fatalf("payment: %d %s", r.Code, r.Body)
	}
	if r := f.post(t, "/v1/deposits", `{"order_id":"ORD000000000002","user_id":"42","amount":"5.00","currency":"CNY"}`); r.Code != 200 {
		t.Fatalf("deposit: %d %s", r.Code, r.Body)
	}
	first := f.post(t, "/v1/refunds", refundBody("ORD900000000001", order, "4.00", "CNY", "cup broken"))
	if first.Code != 200 {
		t.Fatalf("refund: %d %s", first.Code, first.Body)
	}
	var got refundResponse
	if err := json.Unmarshal(first.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != "refund" || got.RefundID != "ORD900000000001" || got.OrderID != order || got.Amount != "4.00" ||
		got.Fee != "0.04" || got.Payer != "42" || got.Reason != "cup broken" || !strings.HasPrefix(got.ID, "ref_") {
		t.Fatalf("refund = %+v", got)
	}
	for _, c := range []struct {
		name     string
		merchant string
		body     string
		status   int
		code     string
	}{
		{"replay", "M1", refundBody("ORD900000000001", order, "4.00", "CNY", "cup broken"), 200, ""},
		{"replay spelled differently", "M1", refundBody("ORD900000000001", order, "4.0", "CNY", "cup broken"), 200, ""},
		{"changed amount", "M1", refundBody("ORD900000000001", order, "4.01", "CNY", "cup broken"), 409, "refund_conflict"},
		{"changed reason", "M1", refundBody("ORD900000000001", order, "4.00", "CNY", "other"), 409, "refund_conflict"},
		{"changed order", "M1", refundBody("ORD900000000001", "ORD000000000002", "4.00", "CNY", "cup broken"), 409, "refund_conflict"},
		{"changed, failing the rules", "M1", refundBody("ORD900000000001", order, "4.001", "CNY", "cup broken"), 409, "refund_conflict"},
		{"more than is left", "M1", refundBody("ORD900000000002", order, "6.01", "CNY", ""), 422, "refund_exceeds_payment"},
		{"other currency", "M1", refundBody("ORD900000000003", order, "1.00", "USD", ""), 422, "refund_currency_mismatch"},
		{"a deposit", "M1", refundBody("ORD900000000004", "ORD000000000002", "1.00", "CNY", ""), 422, "not_refundable"},
		{"unknown order", "M1", refundBody("ORD900000000005", "ORD000000000009", "1.00", "CNY", ""), 404, "not_found"},
		{"another merchant's order", "M2", refundBody("ORD900000000006", order, "1.00", "CNY", ""), 404, "not_found"},
		{"refund id outside the pattern", "M1", refundBody("R-1", order, "1.00", "CNY", ""), 422, "validation_failed"},
		{"a zero amount", "M1", refundBody("ORD900000000007", order, "0.00", "CNY", ""), 422, "validation_failed"},
		{"an order id no order has", "M1", refundBody("ORD900000000008", strings.Repeat("9", 33), "1.00", "CNY", ""), 422, "validation_failed"},
		{"a reason with a control character", "M1", refundBody("ORD900000000009", order, "1.00", "CNY", "a\x01"), 422, "validation_failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := f.postAs(t, c.merchant, "/v1/refunds", c.body)
			if r.Code != c.status {
				t.Fatalf("%d %s, want %d", r.Code, r.Body, c.status)
			}
			if c.status == 200 {
				if r.Header().Get("Idempotent-Replayed") != "true" || r.Body.String() != first.Body.String() {
					t.Fatalf("not the original refund: %s", r.Body)
				}
				return
			}
			code, _ := problemCode(t, r)
			if code != c.code {
				t.Fatalf("code %q, want %q: %s", code, c.code, r.Body)
			}
			if c.code == "not_found" && !strings.Contains(r.Body.String(), `"reason":"payment_not_found"`) {
				t.Fatalf("another merchant's order must be answered like an unknown payment: %s", r.Body)
			}
		})
	}
	// Rules changed since (refund ids must now look otherwise): a retry is
	// answered from the record, a changed one still conflicts, a new refund
	// id under the old pattern is refused.
	f.dir.set(policy.Merchant{ID: "M1", FeeBps: 100, CanDeposit: true, Rules: policy.Rules{OrderIDPattern: `^(ORD0[0-9]{12}|NEW[0-9]{12})$`}})
	before := f.l.records
	if r := f.post(t, "/v1/refunds", refundBody("ORD900000000001", order, "4.00", "CNY", "cup broken")); r.Code != 200 || r.Body.String() != first.Body.String() {
		t.Fatalf("retry after a pattern change: %d %s", r.Code, r.Body)
	}
	if r := f.post(t, "/v1/refunds", refundBody("ORD900000000001", order, "3.00", "CNY", "cup broken")); r.Code != 409 {
		t.Fatalf("changed retry after a pattern change: %d %s", r.Code, r.Body)
	}
	if r := f.post(t, "/v1/refunds", refundBody("ORD900000000012", order, "1.00", "CNY", "")); r.Code != 422 {
		t.Fatalf("new refund id off the new pattern: %d %s", r.Code, r.Body)
	}
	if f.l.records != before {
		t.Fatal("a refund whose rules fail reached the writer")
	}
	f.dir.set(policy.Merchant{ID: "M1", FeeBps: 100, CanDeposit: true})
	// The rest, then nothing more.
	last := f.post(t, "/v1/refunds", refundBody("ORD900000000010", order, "6.00", "CNY", ""))
	if last.Code != 200 || !strings.Contains(last.Body.String(), `"fee":"0.06"`) {
		t.Fatalf("last refund: %d %s", last.Code, last.Body)
	}
	if r := f.post(t, "/v1/refunds", refundBody("ORD900000000011", order, "0.01", "CNY", "")); r.Code != 422 {
		t.Fatalf("refund of a refunded payment: %d %s", r.Code, r.Body)
	}
	if n := len(f.l.refunds); n != 2 {
		t.Fatalf("%d refunds recorded, want 2", n)
	}
}

func TestGetRefund(t *testing.T) {
	f := newCreateFixture()
	f.post(t, "/v1/payments", payBody("ORD000000000001", "10.00", "good-42", ""))
	made := f.post(t, "/v1/refunds", refundBody("ORD900000000001", "ORD000000000001", "1.00", "CNY", ""))
	router := chi.NewRouter()
	router.Method("GET", "/v1/refunds/{refund_id}", handleGetRefund(f.l))
	get := func(merchant, target string) *httptest.ResponseRecorder {
		r := readRaw(t, "GET "+target+" HTTP/1.1\r\nHost: quill.test\r\n\r\n")
		r = r.WithContext(withVerified(r, merchant))
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, r)
		return rec
	}
	if r := get("M1", "/v1/refunds/ORD900000000001"); r.Code != http.StatusOK || r.Body.String() != made.Body.String() {
		t.Fatalf("own refund: %d %s", r.Code, r.Body)
	}
	for _, c := range []struct{ merchant, target string }{
		{"M2", "/v1/refunds/ORD900000000001"}, // another merchant's: like an unknown one
		{"M1", "/v1/refunds/ORD900000000002"},
		{"M1", "/v1/refunds/ORD000000000001"}, // an order id is not a refund id
		{"M1", "/v1/refunds/ORD1%00"},
	} {
		r := get(c.merchant, c.target)
		if code, _ := problemCode(t, r); r.Code != http.StatusNotFound || code != "not_found" || !strings.Contains(r.Body.String(), "refund_not_found") {
			t.Errorf("%s as %s: %d %s", c.target, c.merchant, r.Code, r.Body)
		}
	}
}
