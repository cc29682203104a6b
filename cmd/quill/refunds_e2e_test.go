package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/devenv"
)

func refundBody(refundID, orderID, amount string) []byte {
	return []byte(fmt.Sprintf(`{"refund_id":%q,"order_id":%q,"amount":%q,"currency":"CNY","reason":"e2e"}`, refundID, orderID, amount))
}

// TestRefundEndToEnd: signed refunds over mTLS against the real server and
// database — a partial refund with its fee share, its replay, a changed
// retry (409), another merchant's order (404, the answer of an unknown one),
// the refund read back, a refund over the payment, and concurrent refunds of
// the rest of which exactly the ones that fit succeed.
func TestRefundEndToEnd(t *testing.T) {
	h := server(t)
	user := "u-refund-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "100.00")
	order := newOrderID()
	if r := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "10.00", h.token(user))); r.Status != http.StatusOK {
		t.Fatalf("payment: %d %s", r.Status, r.Body)
	}
	refundID := newOrderID()
	first := h.do(demoMerchant, "POST", "/v1/refunds", refundBody(refundID, order, "4.00"))
	if first.Status != http.StatusOK || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("refund: %d %s", first.Status, first.Body)
	}
	var got map[string]any
	if err := json.Unmarshal(first.Body, &got); err != nil {
		t.Fatal(err)
	}
	// 60 bps of 10.00 is a 0.06 fee; 4.00 of it returns floor(0.024) = 0.02.
	if got["kind"] != "refund" || got["refund_id"] != refundID || got["order_id"] != order || got["amount"] != "4.00" ||
		got["fee"] != "0.02" || got["payer"] != user || got["status"] != "succeeded" {
		t.Fatalf("refund = %v", got)
	}
	if b := h.balance("user:" + user); b != 10000-1000+400 {
		t.Fatalf("wallet %d after the refund", b)
	}

	retry := h.do(demoMerchant, "POST", "/v1/refunds", refundBody(refundID, order, "4.00"))
	if retry.Status != http.StatusOK || retry.Header.Get("Idempotent-Replayed") != "true" || string(retry.Body) != string(first.Body) {
		t.Fatalf("replay: %d %s", retry.Status, retry.Body)
	}
	if r := h.do(demoMerchant, "POST", "/v1/refunds", refundBody(refundID, order, "4.50")); r.Status != http.StatusConflict || problem(t, r)["code"] != "refund_conflict" {
		t.Fatalf("changed retry: %d %s", r.Status, r.Body)
	}
	// Another merchant's order is answered exactly like an order that does not exist.
	theirs := problem(t, h.do(otherMerch, "POST", "/v1/refunds", refundBody(newOrderID(), order, "1.00")))
	unknown := problem(t, h.do(otherMerch, "POST", "/v1/refunds", refundBody(newOrderID(), newOrderID(), "1.00")))
	delete(theirs, "request_id")
	delete(unknown, "request_id")
	if fmt.Sprint(theirs) != fmt.Sprint(unknown) || theirs["status"] != float64(404) || theirs["code"] != "not_found" {
		t.Fatalf("another merchant's order %v, an unknown one %v", theirs, unknown)
	}

	read := h.do(demoMerchant, "GET", "/v1/refunds/"+refundID, nil)
	var back map[string]any
	json.Unmarshal(read.Body, &back)
	if read.Status != http.StatusOK || back["entry_hash"] != got["entry_hash"] {
		t.Fatalf("GET refund: %d %s", read.Status, read.Body)
	}
	if r := h.do(otherMerch, "GET", "/v1/refunds/"+refundID, nil); r.Status != http.StatusNotFound {
		t.Fatalf("another merchant reads the refund: %d", r.Status)
	}
	if r := h.do(demoMerchant, "POST", "/v1/refunds", refundBody(newOrderID(), order, "6.01")); r.Status != http.StatusUnprocessableEntity ||
		problem(t, r)["code"] != "refund_exceeds_payment" {
		t.Fatalf("refund over the payment: %d %s", r.Status, r.Body)
	}

	// 6.00 is left; eight concurrent refunds of 2.00: exactly three fit.
	const racers = 8
	statuses := make([]int, racers)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := h.clients[demoMerchant].Do(context.Background(), "POST", "/v1/refunds", refundBody(newOrderID(), order, "2.00"))
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = r.Status
		}()
	}
	wg.Wait()
	ok := 0
	for i, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusUnprocessableEntity:
		default:
			t.Errorf("racer %d: status %d", i, s)
		}
	}
	if ok != 3 {
		t.Fatalf("%d concurrent refunds succeeded, want 3", ok)
	}
	if b := h.balance("user:" + user); b != 10000 {
		t.Fatalf("wallet %d after the payment was refunded in full, want 10000", b)
	}
	var refunded, fees int64
	if err := h.db.QueryRow(context.Background(), `SELECT sum(amount), sum(fee) FROM entries WHERE kind = 'refund' AND order_id = $1`, order).
		Scan(&refunded, &fees); err != nil {
		t.Fatal(err)
	}
	if refunded != 1000 || fees != 6 {
		t.Fatalf("refunded %d with fee %d, want the payment's 1000 and 6", refunded, fees)
	}
}

// TestPayerChangedRetryConflicts: a retry naming another payer is a conflict
// whether its token is valid (the writer decides) or expired (the retry
// lookup decides), and the same payer's expired retry replays.
func TestPayerChangedRetryConflicts(t *testing.T) {
	h := server(t)
	user, other := "u-payer-"+fmt.Sprint(time.Now().UnixNano()), "u-other-"+fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "10.00")
	h.deposit(other, "10.00")
	order := newOrderID()
	first := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "1.00", h.token(user)))
	if first.Status != http.StatusOK {
		t.Fatalf("payment: %d %s", first.Status, first.Body)
	}
	expired := func(sub string) string {
		tok, err := devenv.PayerToken(h.dir, sub, time.Minute, h.clock.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, c := range []struct {
		name, token string
		status      int
	}{
		{"other payer, valid token", h.token(other), http.StatusConflict},
		{"other payer, expired token", expired(other), http.StatusConflict},
		{"same payer, expired token", expired(user), http.StatusOK},
	} {
		r := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "1.00", c.token))
		if r.Status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Body, c.status)
		}
	}
	if b := h.balance("user:" + other); b != 1000 {
		t.Fatalf("the other payer's wallet moved: %d", b)
	}
}
