package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
)

// memLedger is an in-memory ledger.Writer and ledger.Reader that decides
// idempotency as the real writer does, with ledger.Matches, completes
// refunds with ledger.CompleteRefund, and counts Record calls so a test sees
// which path answered. It keeps no balances.
type memLedger struct {
	mu      sync.Mutex
	entries map[[2]string]ledger.Recorded // (merchant, order id): payments and deposits
	refunds map[[2]string]ledger.Recorded // (merchant, refund id)
	paid    map[[2]string]ledger.Refundable
	n       int64
	records int
}

func newMemLedger() *memLedger {
	return &memLedger{entries: map[[2]string]ledger.Recorded{}, refunds: map[[2]string]ledger.Recorded{}, paid: map[[2]string]ledger.Refundable{}}
}

func (l *memLedger) Record(_ context.Context, e ledger.Entry) (ledger.Recorded, error) {
	if err := e.Validate(); err != nil {
		return ledger.Recorded{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records++
	byID, k := l.entries, [2]string{e.Merchant, e.OrderID}
	if e.Kind == ledger.KindRefund {
		byID, k = l.refunds, [2]string{e.Merchant, e.RefundID}
	}
	if rec, ok := byID[k]; ok {
		if !ledger.Matches(rec, e) {
			return ledger.Recorded{}, ledger.ErrOrderConflict
		}
		rec.Replayed = true
		return rec, nil
	}
	pk := [2]string{e.Merchant, e.OrderID}
	if e.Kind == ledger.KindRefund {
		t, ok := l.paid[pk]
		if !ok {
			if _, dep := l.entries[pk]; !dep {
				return ledger.Recorded{}, ledger.ErrNotFound
			}
			t = ledger.Refundable{Payment: l.entries[pk]}
		}
		done, err := ledger.CompleteRefund(e, t)
		if err != nil {
			return ledger.Recorded{}, err
		}
		t.Refunded, t.RefundedFee, t.Refunds = t.Refunded+done.Amount, t.RefundedFee+done.Fee, t.Refunds+1
		l.paid[pk], e = t, done
	}
	rec := ledger.Proposed(e)
	l.n++
	rec.ID = l.n
	byID[k] = rec
	if e.Kind == ledger.KindPayment {
		l.paid[pk] = ledger.Refundable{Payment: rec}
	}
	return rec, nil
}

func (l *memLedger) Entry(_ context.Context, merchant, orderID string) (ledger.Recorded, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rec, ok := l.entries[[2]string{merchant, orderID}]; ok {
		return rec, nil
	}
	return ledger.Recorded{}, ledger.ErrNotFound
}

func (l *memLedger) Refund(_ context.Context, merchant, refundID string) (ledger.Recorded, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rec, ok := l.refunds[[2]string{merchant, refundID}]; ok {
		return rec, nil
	}
	return ledger.Recorded{}, ledger.ErrNotFound
}

func (l *memLedger) Balance(context.Context, string, string) (int64, error) {
	return 0, ledger.ErrNotFound
}

// testPayers verifies "good-<sub>" tokens; "expired-<sub>" fails verification
// but its signature is still Quill's, so Subject names sub.
type testPayers struct{}

func (testPayers) VerifyPayer(_ context.Context, token string) (policy.Payer, error) {
	if sub, ok := strings.CutPrefix(token, "good-"); ok {
		return policy.Payer{Subject: sub, TokenID: "jti"}, nil
	}
	return policy.Payer{}, fmt.Errorf("%w: expired", policy.ErrPayerToken)
}

func (testPayers) Subject(_ context.Context, token string) (string, error) {
	for _, p := range []string{"good-", "expired-"} {
		if sub, ok := strings.CutPrefix(token, p); ok {
			return sub, nil
		}
	}
	return "", policy.ErrPayerToken
}

// directory serves one mutable profile per merchant id.
type directory struct {
	mu       sync.Mutex
	profiles map[string]policy.Merchant
}

func (d *directory) Merchant(_ context.Context, id string) (policy.Merchant, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.profiles[id]; ok {
		return m, nil
	}
	return policy.Merchant{}, policy.ErrUnknownMerchant
}

func (d *directory) set(m policy.Merchant) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.profiles[m.ID] = m
}

// createFixture is the create routes over memLedger, called as merchant M1
// as if authenticate had verified the request.
type createFixture struct {
	l    *memLedger
	dir  *directory
	mux  http.Handler
	rule *policy.Checker
}

func newCreateFixture() *createFixture {
	f := &createFixture{l: newMemLedger(), dir: &directory{profiles: map[string]policy.Merchant{}}, rule: policy.NewChecker(testPayers{})}
	f.dir.set(policy.Merchant{ID: "M1", FeeBps: 100, CanDeposit: true})
	mux := http.NewServeMux()
	mux.Handle("POST /v1/payments", handleCreate(paymentKind(f.rule, f.l), f.dir, f.l))
	mux.Handle("POST /v1/deposits", handleCreate(depositKind(f.rule, f.l), f.dir, f.l))
	mux.Handle("POST /v1/refunds", handleCreate(refundKind(f.rule, f.l), f.dir, f.l))
	f.mux = mux
	return f
}

func (f *createFixture) post(t *testing.T, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	return f.postAs(t, "M1", target, body)
}

func (f *createFixture) postAs(t *testing.T, merchant, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	v := verifiedRequest{Verified: signing.Verified{Merchant: merchant, KeyID: "K1", Scheme: "WECHATPAY2-SHA256-RSA2048"}, body: []byte(body)}
	r = r.WithContext(context.WithValue(r.Context(), verifiedKey, v))
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, r)
	return rec
}

func payBody(order, amount, token, desc string) string {
	b, _ := json.Marshal(map[string]string{"order_id": order, "amount": amount, "currency": "CNY", "payer_token": token, "description": desc})
	return string(b)
}

// TestIdempotencyDecidedOnce shows that a retry is judged by ledger.Matches
// whichever path it takes: through the writer (its rules pass) or through the
// retry lookup (its rules fail: the token expired, the merchant's limits
// changed). The same changes are a conflict on both paths and the same
// retries replay on both, where before the retry path ignored the payer.
func TestIdempotencyDecidedOnce(t *testing.T) {
	const order = "ORD000000000001"
	for _, c := range []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"same request, valid token", payBody(order, "10.00", "good-42", "tea"), 200, ""},
		{"same request, expired token", payBody(order, "10.00", "expired-42", "tea"), 200, ""},
		{"same amount spelled differently", payBody(order, "10.0", "expired-42", "tea"), 200, ""},
		{"other payer, valid token", payBody(order, "10.00", "good-43", "tea"), 409, "order_conflict"},
		{"other payer, expired token", payBody(order, "10.00", "expired-43", "tea"), 409, "order_conflict"},
		{"token naming nobody", payBody(order, "10.00", "forged", "tea"), 409, "order_conflict"},
		{"other amount, valid token", payBody(order, "10.01", "good-42", "tea"), 409, "order_conflict"},
		{"other amount, expired token", payBody(order, "10.01", "expired-42", "tea"), 409, "order_conflict"},
		{"other description, expired token", payBody(order, "10.00", "expired-42", "coffee"), 409, "order_conflict"},
		{"unparsable amount", payBody(order, "ten", "expired-42", "tea"), 409, "order_conflict"},
		{"new order, expired token", payBody("ORD000000000002", "10.00", "expired-42", "tea"), 422, "validation_failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newCreateFixture()
			first := f.post(t, "/v1/payments", payBody(order, "10.00", "good-42", "tea"))
			if first.Code != 200 {
				t.Fatalf("first: %d %s", first.Code, first.Body)
			}
			retry := f.post(t, "/v1/payments", c.body)
			if retry.Code != c.status {
				t.Fatalf("retry: %d %s, want %d", retry.Code, retry.Body, c.status)
			}
			if c.status == 200 {
				if retry.Header().Get("Idempotent-Replayed") != "true" || retry.Body.String() != first.Body.String() {
					t.Fatalf("retry is not the original answer:\n%s\nvs\n%s", retry.Body, first.Body)
				}
			} else if code, _ := problemCode(t, retry); code != c.code {
				t.Fatalf("code %q, want %q", code, c.code)
			}
			if n := len(f.l.entries); n != 1 {
				t.Fatalf("%d entries", n)
			}
		})
	}
}

// TestRetryAfterRulesChanged: rules that changed since the entry was written
// (fee rate, maximum amount) do not turn an identical retry into a conflict
// or a field error on either path, and still refuse new orders.
func TestRetryAfterRulesChanged(t *testing.T) {
	f := newCreateFixture()
	const order = "ORD000000000001"
	first := f.post(t, "/v1/payments", payBody(order, "10.00", "good-42", ""))
	if first.Code != 200 {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	// The fee rate changes: the rules still pass, the writer decides.
	f.dir.set(policy.Merchant{ID: "M1", FeeBps: 300, CanDeposit: true})
	before := f.l.records
	if r := f.post(t, "/v1/payments", payBody(order, "10.00", "good-42", "")); r.Code != 200 || r.Body.String() != first.Body.String() {
		t.Fatalf("retry after a fee change: %d %s", r.Code, r.Body)
	}
	if f.l.records != before+1 {
		t.Fatal("the retry did not reach the writer")
	}
	// The maximum drops below the amount: the rules fail, the retry lookup decides.
	f.dir.set(policy.Merchant{ID: "M1", FeeBps: 300, CanDeposit: true, Rules: policy.Rules{MaxAmount: "5.00"}})
	before = f.l.records
	if r := f.post(t, "/v1/payments", payBody(order, "10.00", "good-42", "")); r.Code != 200 || r.Body.String() != first.Body.String() {
		t.Fatalf("retry after a limit change: %d %s", r.Code, r.Body)
	}
	if r := f.post(t, "/v1/payments", payBody(order, "10.00", "good-43", "")); r.Code != 409 {
		t.Fatalf("other payer after a limit change: %d %s", r.Code, r.Body)
	}
	if f.l.records != before {
		t.Fatal("a retry whose rules fail reached the writer")
	}
	if r := f.post(t, "/v1/payments", payBody("ORD000000000002", "10.00", "good-42", "")); r.Code != 422 {
		t.Fatalf("new order over the limit: %d %s", r.Code, r.Body)
	}
}

func TestDepositRetryDecidedOnce(t *testing.T) {
	dep := func(order, user, amount string) string {
		b, _ := json.Marshal(map[string]string{"order_id": order, "user_id": user, "amount": amount, "currency": "CNY"})
		return string(b)
	}
	f := newCreateFixture()
	const order = "ORD000000000009"
	first := f.post(t, "/v1/deposits", dep(order, "42", "50.00"))
	if first.Code != 200 {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	if r := f.post(t, "/v1/deposits", dep(order, "43", "50.00")); r.Code != 409 {
		t.Fatalf("other user through the writer: %d %s", r.Code, r.Body)
	}
	f.dir.set(policy.Merchant{ID: "M1", FeeBps: 100, CanDeposit: true, Rules: policy.Rules{Currencies: []string{"USD"}}})
	if r := f.post(t, "/v1/deposits", dep(order, "43", "50.00")); r.Code != 409 {
		t.Fatalf("other user through the retry lookup: %d %s", r.Code, r.Body)
	}
	if r := f.post(t, "/v1/deposits", dep(order, "42", "50.00")); r.Code != 200 || r.Body.String() != first.Body.String() {
		t.Fatalf("same deposit through the retry lookup: %d %s", r.Code, r.Body)
	}
	// A deposit's order id is not a payment's: the payment retry lookup
	// finds nothing and the field error stands.
	if r := f.post(t, "/v1/payments", payBody(order, "50.00", "expired-42", "")); r.Code != 422 {
		t.Fatalf("payment retry naming a deposit: %d %s", r.Code, r.Body)
	}
}

// withVerified returns r's context with merchant as the verified signer.
func withVerified(r *http.Request, merchant string) context.Context {
	return context.WithValue(r.Context(), verifiedKey, verifiedRequest{Verified: signing.Verified{Merchant: merchant, KeyID: "K1"}})
}
