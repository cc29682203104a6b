package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/certs"
	"github.com/quillpay/quill/internal/devenv"
)

// One server serves every test in this file: starting it (migrations, keys)
// is the slow part, and each test uses its own wallets and order ids.
var (
	sharedOnce sync.Once
	shared     *harness
)

func server(t *testing.T) *harness {
	t.Helper()
	sharedOnce.Do(func() { shared = startServer(&sharedTB{T: t}) })
	if shared == nil {
		t.Fatal("server did not start")
	}
	shared.t = t
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(sharedCleanups) - 1; i >= 0; i-- {
		sharedCleanups[i]()
	}
	if code == 0 && sharedFailed {
		code = 1
	}
	exitWith(code)
}

func TestPaymentEndToEnd(t *testing.T) {
	h := server(t)
	user := "u-e2e-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "100.00")
	order := newOrderID()
	r := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "12.34", h.token(user)))
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	var got map[string]any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got["amount"] != "12.34" || got["fee"] != "0.07" || got["order_id"] != order || got["status"] != "succeeded" {
		t.Fatalf("unexpected payment %v", got)
	}
	if r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("first payment marked as replayed")
	}
	if b := h.balance("user:" + user); b != 10000-1234 {
		t.Fatalf("wallet balance %d, want %d", b, 10000-1234)
	}
	// The query returns the same payment, signed.
	q := h.do(demoMerchant, "GET", "/v1/payments/"+order, nil)
	var again map[string]any
	json.Unmarshal(q.Body, &again)
	if q.Status != http.StatusOK || again["entry_hash"] != got["entry_hash"] {
		t.Fatalf("query: %d %s", q.Status, q.Body)
	}
	// Another merchant cannot see it.
	if o := h.do(otherMerch, "GET", "/v1/payments/"+order, nil); o.Status != http.StatusNotFound {
		t.Fatalf("other merchant sees the payment: %d", o.Status)
	}
	// The whole ledger balances: every entry's postings sum to zero.
	var unbalanced int
	if err := h.db.QueryRow(context.Background(),
		`SELECT count(*) FROM (SELECT entry_id FROM postings GROUP BY entry_id HAVING SUM(amount) <> 0) x`).Scan(&unbalanced); err != nil {
		t.Fatal(err)
	}
	if unbalanced != 0 {
		t.Fatalf("%d unbalanced entries", unbalanced)
	}
	// The evidence behind the entry is the exact signed request.
	var scheme, keyID, auth string
	var body []byte
	if err := h.db.QueryRow(context.Background(),
		`SELECT evidence_scheme, evidence_key_id, authorization_header, evidence_body FROM entries WHERE order_id = $1`, order).Scan(&scheme, &keyID, &auth, &body); err != nil {
		t.Fatal(err)
	}
	if keyID != h.clients[demoMerchant].KeyID || !strings.HasPrefix(auth, "WECHATPAY2-SHA256-RSA2048 ") || !strings.Contains(string(body), order) {
		t.Fatalf("evidence: scheme %q key %q auth %q body %q", scheme, keyID, auth, body)
	}
}

func TestRejectedRequestsWriteNothing(t *testing.T) {
	h := server(t)
	user := "u-rej-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "50.00")
	demo := h.certs[demoMerchant]
	now := h.clock.Now()
	other := rsaKey(t)

	type tc struct {
		name       string
		cert       *tls.Certificate
		method     string
		target     string
		body       []byte
		auth       func(order string, body []byte) string
		wantStatus int
		wantHint   string
	}
	cases := []tc{
		{"tampered body", &demo, "POST", "/v1/payments", nil, func(order string, body []byte) string {
			return h.sign(demoMerchant, nil, "", "POST", "/v1/payments", []byte(strings.Replace(string(body), "1.00", "0.01", 1)), now)
		}, 401, "raw body"},
		{"tampered query", &demo, "POST", "/v1/payments?channel=b", nil, func(order string, body []byte) string {
			return h.sign(demoMerchant, nil, "", "POST", "/v1/payments?channel=a", body, now)
		}, 401, ""},
		{"query missing from signed url", &demo, "POST", "/v1/payments?channel=a", nil, func(order string, body []byte) string {
			return h.sign(demoMerchant, nil, "", "POST", "/v1/payments", body, now)
		}, 401, "query"},
		{"wrong key", &demo, "POST", "/v1/payments", nil, func(order string, body []byte) string {
			return h.sign(demoMerchant, other, "", "POST", "/v1/payments", body, now)
		}, 401, ""},
		{"unknown key id", &demo, "POST", "/v1/payments", nil, func(order string, body []byte) string {
			return h.sign(demoMerchant, nil, "0000000000000000000000000000000000000000", "POST", "/v1/payments", body, now)
		}, 401, ""},
		{"other merchant's certificate", ptr(h.certs[otherMerch]), "POST", "/v1/payments", nil, func(order string, body []byte) string {
			return h.sign(demoMerchant, nil, "", "POST", "/v1/payments", body, now)
		}, 401, ""},
		{"milliseconds timestamp", &demo, "POST", "/v1/payments", nil, func(order string, body []byte) string {
			a := h.sign(demoMerchant, nil, "", "POST", "/v1/payments", body, now)
			sec := fmt.Sprint(now.Unix())
			return strings.Replace(a, `timestamp="`+sec+`"`, `timestamp="`+sec+`000"`, 1)
		}, 401, "millisecond"},
		{"no authorization", &demo, "POST", "/v1/payments", nil, func(string, []byte) string { return "" }, 401, ""},
		{"malformed authorization", &demo, "POST", "/v1/payments", nil, func(string, []byte) string {
			return `WECHATPAY2-SHA256-RSA2048 mchid=M100,nonce_str="x"`
		}, 401, ""},
		{"wrong scheme", &demo, "POST", "/v1/payments", nil, func(string, []byte) string { return "Bearer abc" }, 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			order := newOrderID()
			body := paymentBody(order, "1.00", h.token(user))
			r := h.raw(c.cert, c.method, c.target, body, c.auth(order, body))
			if r.Status != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Status, c.wantStatus, r.Body)
			}
			p := problem(t, r)
			if p["code"] != "signature_invalid" {
				t.Fatalf("code %v", p["code"])
			}
			if c.wantHint != "" && !strings.Contains(strings.ToLower(fmt.Sprint(p["hint"])), c.wantHint) {
				t.Fatalf("hint %q does not mention %q", p["hint"], c.wantHint)
			}
			if strings.Contains(string(r.Body), "PRIVATE KEY") {
				t.Fatal("key material in response")
			}
			if n := h.entries(order); n != 0 {
				t.Fatalf("%d entries written for a rejected request", n)
			}
		})
	}
	if b := h.balance("user:" + user); b != 5000 {
		t.Fatalf("wallet moved to %d by rejected requests", b)
	}
}

func ptr[T any](v T) *T { return &v }

func TestReplayedNonceRejected(t *testing.T) {
	h := server(t)
	user := "u-replay-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "10.00")
	order := newOrderID()
	body := paymentBody(order, "1.00", h.token(user))
	auth := h.sign(demoMerchant, nil, "", "POST", "/v1/payments", body, h.clock.Now())
	cert := h.certs[demoMerchant]
	if r := h.raw(&cert, "POST", "/v1/payments", body, auth); r.Status != http.StatusOK {
		t.Fatalf("first: %d %s", r.Status, r.Body)
	}
	r := h.raw(&cert, "POST", "/v1/payments", body, auth)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	if p := problem(t, r); !strings.Contains(fmt.Sprint(p["hint"]), "nonce") {
		t.Fatalf("replay hint: %v", p["hint"])
	}
	if n := h.entries(order); n != 1 {
		t.Fatalf("%d entries", n)
	}
	if b := h.balance("user:" + user); b != 900 {
		t.Fatalf("balance %d", b)
	}
}

func TestTimestampWindowEdges(t *testing.T) {
	h := server(t)
	cert := h.certs[demoMerchant]
	now := h.clock.Now()
	for _, c := range []struct {
		skew time.Duration
		want int
	}{
		{-300 * time.Second, 200}, {300 * time.Second, 200},
		{-301 * time.Second, 401}, {301 * time.Second, 401},
		{0, 200},
	} {
		t.Run(fmt.Sprint(c.skew), func(t *testing.T) {
			auth := h.sign(demoMerchant, nil, "", "GET", "/v1/certificates", nil, now.Add(c.skew))
			r := h.raw(&cert, "GET", "/v1/certificates", nil, auth)
			if r.Status != c.want {
				t.Fatalf("skew %s: status %d, want %d: %s", c.skew, r.Status, c.want, r.Body)
			}
			if c.want == 401 && !strings.Contains(fmt.Sprint(problem(t, r)["hint"]), "window") {
				t.Fatalf("hint does not mention the window: %s", r.Body)
			}
		})
	}
}

func TestRedisDownRefusesWithNoEntry(t *testing.T) {
	h := server(t)
	user := "u-redis-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "10.00")
	for _, mode := range []struct {
		name string
		mode int32
	}{{"stopped", proxyStopped}, {"hanging", proxyHang}} {
		t.Run(mode.name, func(t *testing.T) {
			h.proxy.set(mode.mode)
			defer h.proxy.set(proxyRelay)
			order := newOrderID()
			r := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "1.00", h.token(user)))
			if r.Status != http.StatusServiceUnavailable || problem(t, r)["code"] != "unavailable" {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if n := h.entries(order); n != 0 {
				t.Fatalf("%d entries written while Redis was %s", n, mode.name)
			}
		})
	}
	if b := h.balance("user:" + user); b != 1000 {
		t.Fatalf("balance %d", b)
	}
	// Back up: the same kind of request succeeds again.
	h.proxy.set(proxyRelay)
	if r := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", h.token(user))); r.Status != http.StatusOK {
		t.Fatalf("after recovery: %d %s", r.Status, r.Body)
	}
}

func TestInsufficientFunds(t *testing.T) {
	h := server(t)
	user := "u-poor-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "5.00")
	order := newOrderID()
	r := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "5.01", h.token(user)))
	if r.Status != http.StatusUnprocessableEntity || problem(t, r)["code"] != "insufficient_funds" {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if n := h.entries(order); n != 0 {
		t.Fatalf("%d entries", n)
	}
	if b := h.balance("user:" + user); b != 500 {
		t.Fatalf("balance %d", b)
	}
}

func TestDuplicateOrder(t *testing.T) {
	h := server(t)
	user := "u-dup-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "20.00")
	order := newOrderID()
	first := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "3.00", h.token(user)))
	if first.Status != http.StatusOK {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	// A retry is freshly signed (new nonce, new token) with the same content.
	retry := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "3.00", h.token(user)))
	if retry.Status != http.StatusOK || retry.Header.Get("Idempotent-Replayed") != "true" || string(retry.Body) != string(first.Body) {
		t.Fatalf("retry: %d replayed=%q\n%s\nvs\n%s", retry.Status, retry.Header.Get("Idempotent-Replayed"), retry.Body, first.Body)
	}
	conflict := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "4.00", h.token(user)))
	if conflict.Status != http.StatusConflict || problem(t, conflict)["code"] != "order_conflict" {
		t.Fatalf("conflict: %d %s", conflict.Status, conflict.Body)
	}
	if n := h.entries(order); n != 1 {
		t.Fatalf("%d entries", n)
	}
	if b := h.balance("user:" + user); b != 1700 {
		t.Fatalf("balance %d", b)
	}
}

func TestConcurrentIdenticalPayments(t *testing.T) {
	h := server(t)
	user := "u-same-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "100.00")
	order := newOrderID()
	body := paymentBody(order, "10.00", h.token(user))
	statuses := make([]int, 50)
	replayed := make([]bool, 50)
	bodies := make([]string, 50)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := h.clients[demoMerchant].Do(context.Background(), "POST", "/v1/payments", body)
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i], replayed[i], bodies[i] = r.Status, r.Header.Get("Idempotent-Replayed") == "true", string(r.Body)
		}()
	}
	wg.Wait()
	fresh := 0
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("request %d: status %d %s", i, s, bodies[i])
		}
		if !replayed[i] {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d requests wrote, want exactly 1", fresh)
	}
	if n := h.entries(order); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
	if b := h.balance("user:" + user); b != 9000 {
		t.Fatalf("balance %d, want 9000", b)
	}
}

func TestConcurrentPaymentsNeverOverdraw(t *testing.T) {
	h := server(t)
	user := "u-race-" + fmt.Sprint(time.Now().UnixNano())
	const affordable = 17
	h.deposit(user, fmt.Sprintf("%d.00", affordable*3)) // covers 17 payments of 3.00
	token := h.token(user)
	statuses := make([]int, 50)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := h.clients[demoMerchant].Do(context.Background(), "POST", "/v1/payments", paymentBody(newOrderID(), "3.00", token))
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = r.Status
		}()
	}
	wg.Wait()
	ok, poor := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusUnprocessableEntity:
			poor++
		default:
			t.Fatalf("unexpected status %d", s)
		}
	}
	if ok != affordable || poor != 50-affordable {
		t.Fatalf("%d succeeded and %d refused, want %d and %d", ok, poor, affordable, 50-affordable)
	}
	if b := h.balance("user:" + user); b != 0 {
		t.Fatalf("balance %d, want 0", b)
	}
}

func TestFieldRulesListEveryField(t *testing.T) {
	h := server(t)
	user := "u-fields-" + fmt.Sprint(time.Now().UnixNano())
	tok := h.token(user)
	for _, c := range []struct {
		name   string
		body   string
		status int
		fields []string
	}{
		{"json number amount", `{"order_id":"ORD100000000001","amount":12.34,"currency":"CNY","payer_token":"` + tok + `"}`, 422, []string{"amount"}},
		{"exponent", `{"order_id":"ORD100000000001","amount":"1e3","currency":"CNY","payer_token":"` + tok + `"}`, 422, []string{"amount"}},
		{"three decimals, bad currency, bad order", `{"order_id":"X1","amount":"1.234","currency":"USD","payer_token":"` + tok + `"}`, 422, []string{"order_id", "amount", "currency"}},
		{"negative and unknown member", `{"order_id":"ORD100000000001","amount":"-1.00","currency":"CNY","payer_token":"` + tok + `","tip":"1"}`, 422, []string{"amount", "tip"}},
		{"duplicate key", `{"order_id":"ORD100000000001","amount":"1.00","amount":"100.00","currency":"CNY","payer_token":"` + tok + `"}`, 422, []string{"amount"}},
		{"bad payer token", `{"order_id":"ORD100000000001","amount":"1.00","currency":"CNY","payer_token":"not-a-jwt"}`, 422, []string{"payer_token"}},
		{"over the limit", `{"order_id":"ORD100000000001","amount":"1000000.01","currency":"CNY","payer_token":"` + tok + `"}`, 422, []string{"amount"}},
		{"not json", `{"order_id":`, 400, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(demoMerchant, "POST", "/v1/payments", []byte(c.body))
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
			}
			p := problem(t, r)
			var listed []string
			errs, _ := p["errors"].([]any)
			for _, e := range errs {
				listed = append(listed, fmt.Sprint(e.(map[string]any)["field"]))
			}
			for _, f := range c.fields {
				if !strings.Contains(strings.Join(listed, ","), f) {
					t.Fatalf("field %q not listed in %v", f, listed)
				}
			}
		})
	}
	if n := h.entries("ORD100000000001"); n != 0 {
		t.Fatalf("%d entries", n)
	}
}

func TestDepositOnlyForAllowedClients(t *testing.T) {
	h := server(t)
	r := h.do(demoMerchant, "POST", "/v1/deposits", []byte(`{"order_id":"ORD200000000001","user_id":"42","amount":"1.00","currency":"CNY"}`))
	if r.Status != http.StatusForbidden || problem(t, r)["code"] != "forbidden" {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if n := h.entries("ORD200000000001"); n != 0 {
		t.Fatalf("%d entries", n)
	}
}

func TestEveryResponseSigned(t *testing.T) {
	h := server(t)
	cert := h.certs[demoMerchant]
	for _, c := range []struct{ method, target string }{
		{"GET", "/nope"}, {"DELETE", "/v1/payments"}, {"GET", "/v1/payments/ORD999999999999"},
	} {
		auth := h.sign(demoMerchant, nil, "", c.method, c.target, nil, h.clock.Now())
		r := h.raw(&cert, c.method, c.target, nil, auth) // raw fails the test if unsigned
		if r.Status < 400 {
			t.Fatalf("%s %s: %d", c.method, c.target, r.Status)
		}
	}
}

func TestTLSRefusesClientsWithoutAMerchantCertificate(t *testing.T) {
	h := server(t)
	// No client certificate at all.
	_, err := h.httpClient(nil).Get(h.base + "/v1/certificates")
	if err == nil {
		t.Fatal("request without a client certificate was served")
	}
	// A certificate from another CA naming the same merchant.
	ca, err := certs.NewCA("Rogue CA", time.Hour, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueClient(demoMerchant, time.Hour, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.httpClient(&rogue).Get(h.base + "/v1/certificates"); err == nil {
		t.Fatal("request with a certificate from another CA was served")
	}
}

func TestOpsEndpoints(t *testing.T) {
	h := server(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(h.ops + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", p, res.StatusCode)
		}
	}
}

func TestOverlongTargetRefusedBeforeAnything(t *testing.T) {
	h := server(t)
	cert := h.certs[demoMerchant]
	order := newOrderID()
	body := paymentBody(order, "1.00", h.token("u-long"))
	target := "/v1/payments?pad=" + strings.Repeat("x", 5000)
	auth := h.sign(demoMerchant, nil, "", "POST", target, body, h.clock.Now())
	r := h.raw(&cert, "POST", target, body, auth)
	if r.Status != http.StatusRequestURITooLong || problem(t, r)["code"] != "uri_too_long" {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	// The nonce was not spent: the same signed header is still good for a
	// request the server can take (here the same target is refused again the
	// same way, not as a replay).
	if again := h.raw(&cert, "POST", target, body, auth); problem(t, again)["code"] != "uri_too_long" {
		t.Fatalf("second attempt: %s", again.Body)
	}
	if n := h.entries(order); n != 0 {
		t.Fatalf("%d entries", n)
	}
}

// TestRetryAfterTokenExpiredReplays: a payment that succeeded stays a success
// when it is retried after the payer token expired; a changed amount is a
// conflict, not a field error.
func TestRetryAfterTokenExpiredReplays(t *testing.T) {
	h := server(t)
	user := "u-expired-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "10.00")
	order := newOrderID()
	first := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "2.50", h.token(user)))
	if first.Status != http.StatusOK {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	expired, err := devenv.PayerToken(h.dir, user, time.Minute, h.clock.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	retry := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "2.50", expired))
	if retry.Status != http.StatusOK || retry.Header.Get("Idempotent-Replayed") != "true" || string(retry.Body) != string(first.Body) {
		t.Fatalf("retry with an expired token: %d %s", retry.Status, retry.Body)
	}
	changed := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "2.51", expired))
	if changed.Status != http.StatusConflict {
		t.Fatalf("changed retry: %d %s", changed.Status, changed.Body)
	}
	// A new order with the expired token is still refused.
	fresh := newOrderID()
	if r := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(fresh, "2.50", expired)); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("new order with an expired token: %d %s", r.Status, r.Body)
	}
	if n := h.entries(order) + h.entries(fresh); n != 1 {
		t.Fatalf("%d entries", n)
	}
	if b := h.balance("user:" + user); b != 750 {
		t.Fatalf("balance %d", b)
	}
}
