package fault

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/quillpay/quill/internal/client"
	"github.com/quillpay/quill/policy"
)

// TestDoubleSpend: C concurrent payments from one wallet, each for more than
// a fraction of its balance; exactly floor(balance/amount) succeed, the rest
// are refused insufficient_funds, and the wallet ends at balance − k·amount.
func TestDoubleSpend(t *testing.T) {
	e := newEnv(t, envOptions{})
	payee := e.mat.Payees[0]
	db := connect(t, e.dsn)
	const c = 48
	for i, tc := range []struct{ balance, amount int64 }{
		{1000, 501},  // more than half: one
		{1000, 334},  // more than a third: two
		{1000, 1000}, // all of it: one
		{1000, 1001}, // more than all: none
		{1000, 99},   // ten
	} {
		want := tc.balance / tc.amount
		t.Run(fmt.Sprintf("%d of %d", tc.amount, tc.balance), func(t *testing.T) {
			user := fmt.Sprint("spender", i)
			e.deposit(t, user, tc.balance)
			token := e.mat.PayerToken(t, user)
			res := make([]*client.Response, c)
			var start, wg sync.WaitGroup
			start.Add(1)
			for j := range c {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := paymentBody(orderID(), policy.FormatAmount(tc.amount, "CNY"), token)
					start.Wait()
					res[j] = do(e.q, payee, "POST", "/v1/payments", body)
				}()
			}
			start.Done()
			wg.Wait()
			var succeeded int64
			for j, r := range res {
				switch {
				case r.Status == http.StatusOK && r.Verified == nil:
					succeeded++
				case r.Status == http.StatusUnprocessableEntity && problemCode(r) == "insufficient_funds":
				default:
					t.Errorf("payment %d: %d %s (%v)", j, r.Status, r.Body, r.Verified)
				}
			}
			if succeeded != want {
				t.Errorf("%d of %d concurrent payments of %d from a wallet of %d succeeded, want floor = %d", succeeded, c, tc.amount, tc.balance, want)
			}
			if b := balance(t, db, "user:"+user); b != tc.balance-want*tc.amount {
				t.Errorf("wallet at %d, want %d", b, tc.balance-want*tc.amount)
			}
			t.Logf("double spend: %d concurrent payments of %d from %d: %d succeeded (floor %d) (load %s)", c, tc.amount, tc.balance, succeeded, want, load())
		})
	}
	ledgerCheck(t, e.dsn)
}

// TestDuplicateStorm: hundreds of concurrent copies of one order, each
// freshly signed, most with one body and some with another amount. Exactly
// one entry is written; every copy with the winning body gets the same 200
// answer byte for byte (one fresh, the others marked Idempotent-Replayed),
// and every copy with another body a 409 order_conflict.
func TestDuplicateStorm(t *testing.T) {
	e := newEnv(t, envOptions{})
	payee := e.mat.Payees[0]
	db := connect(t, e.dsn)
	e.deposit(t, "storm", 100000)
	token := e.mat.PayerToken(t, "storm")
	copies, different := scale(300), scale(300)/10
	order := orderID()
	bodies := [][]byte{paymentBody(order, "10.00", token), paymentBody(order, "10.01", token)}
	which := make([]int, copies)
	for i := range different {
		which[i*copies/different] = 1
	}
	res := make([]*client.Response, copies)
	resentBefore := resent.Load()
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			res[i] = do(e.q, payee, "POST", "/v1/payments", bodies[which[i]])
		}()
	}
	start.Done()
	wg.Wait()

	if n := entries(t, db, order); n != 1 {
		t.Fatalf("%d entries for the order, want 1", n)
	}
	// The winner is the body the entry was written from.
	var amount int64
	if err := db.QueryRow(t.Context(), "SELECT amount FROM entries WHERE order_id = $1", order).Scan(&amount); err != nil {
		t.Fatal(err)
	}
	winner := 0
	if amount == 1001 {
		winner = 1
	}
	var first []byte
	fresh, replays, conflicts := 0, 0, 0
	for i, r := range res {
		if r.Verified != nil {
			t.Fatalf("copy %d: %d %s (%v)", i, r.Status, r.Body, r.Verified)
		}
		if which[i] != winner {
			if r.Status != http.StatusConflict || problemCode(r) != "order_conflict" {
				t.Errorf("copy %d with the other body: %d %s, want 409 order_conflict", i, r.Status, r.Body)
			}
			conflicts++
			continue
		}
		if r.Status != http.StatusOK {
			t.Errorf("copy %d: %d %s", i, r.Status, r.Body)
			continue
		}
		if first == nil {
			first = r.Body
		} else if !bytes.Equal(r.Body, first) {
			t.Errorf("copy %d answered %s, another %s", i, r.Body, first)
		}
		if replayed(r) {
			replays++
		} else {
			fresh++
		}
	}
	// A copy whose answer was lost and that was sent again is answered from
	// the record: then the write's own answer may be the one lost.
	if lost := resent.Load() - resentBefore; fresh != 1 && !(fresh == 0 && lost > 0) {
		t.Errorf("%d copies answered as the write (%d sent again), want exactly 1", fresh, lost)
	}
	if b := balance(t, db, "user:storm"); b != 100000-amount {
		t.Errorf("wallet at %d, want %d", b, 100000-amount)
	}
	ledgerCheck(t, e.dsn)
	t.Logf("duplicate storm: %d concurrent copies (%d with another body): 1 entry, %d identical replays, %d conflicts (load %s)",
		copies, different, replays, conflicts, load())
}
