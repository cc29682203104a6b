package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/ledger"
)

func refund(id, order string, amount int64) ledger.Entry {
	return ledger.Refund("M1", id, order, "CNY", amount, "reason "+id, ev("r-"+id))
}

func TestRefunds(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{})
	mustRecord(t, s, deposit("D1", "42", 10_000))
	pay := mustRecord(t, s, payment("ORD1", "42", 1_000, 6)) // merchant +994, fees +6
	mustRecord(t, s, payment("ORD2", "42", 500, 3))

	first := mustRecord(t, s, refund("RF1", "ORD1", 400))
	if first.Kind != ledger.KindRefund || first.OrderID != "ORD1" || first.RefundID != "RF1" || first.Payer != "42" ||
		first.Amount != 400 || first.Fee != 2 || first.Description != "reason RF1" || first.Replayed {
		t.Fatalf("first refund = %+v", first)
	}
	wantBalance(t, s, "user:42", 10_000-1_000-500+400)
	wantBalance(t, s, "merchant:M1", 994+497-398)
	wantBalance(t, s, "platform:fees", 6+3-2)

	// Replay: the same request signed anew; a changed one conflicts.
	retry := refund("RF1", "ORD1", 400)
	retry.Evidence = ev("fresh")
	again, err := s.Record(ctx, retry)
	if want := first; err != nil || !again.Replayed || func() bool { want.Replayed = true; return again != want }() {
		t.Fatalf("replay = %+v, %v; want %+v", again, err, first)
	}
	for _, e := range []ledger.Entry{refund("RF1", "ORD1", 401), refund("RF1", "ORD2", 400),
		ledger.Refund("M1", "RF1", "ORD1", "CNY", 400, "other reason", ev("x"))} {
		if _, err := s.Record(ctx, e); !errors.Is(err, ledger.ErrOrderConflict) {
			t.Errorf("changed refund %+v: %v, want ErrOrderConflict", e, err)
		}
	}
	// A refund id is not an order id: RF1 as an order is another entry, and
	// ORD2 as a refund id refunds ORD1 without touching the payment ORD2.
	if _, err := s.Entry(ctx, "M1", "RF1"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Entry(RF1) = %v, want ErrNotFound", err)
	}
	mustRecord(t, s, refund("ORD2", "ORD1", 100))
	if got, err := s.Entry(ctx, "M1", "ORD2"); err != nil || got.Kind != ledger.KindPayment {
		t.Errorf("Entry(ORD2) = %+v, %v", got, err)
	}

	for _, c := range []struct {
		name string
		e    ledger.Entry
		want error
	}{
		{"more than is left", refund("RF3", "ORD1", 501), ledger.ErrRefundExceedsPayment},
		{"unknown order", refund("RF4", "ORD9", 1), ledger.ErrNotFound},
		{"another merchant's order", ledger.Refund("M2", "RF5", "ORD1", "CNY", 1, "", ev("m2")), ledger.ErrNotFound},
		{"a deposit", refund("RF6", "D1", 1), ledger.ErrNotRefundable},
		{"other currency", ledger.Refund("M1", "RF7", "ORD1", "USD", 1, "", ev("usd")), ledger.ErrRefundCurrency},
	} {
		if _, err := s.Record(ctx, c.e); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}

	// A refused refund creates nothing, not even in a batch that commits: a
	// refund of another merchant's deposit, batched with a payment.
	mustRecord(t, s, ledger.Deposit("TOPUP", "TD1", "44", "CNY", 500, ev("td1")))
	reqs := []*request{newRequest(payment("ORD3", "42", 10, 0)), newRequest(ledger.Refund("TOPUP", "RT1", "TD1", "CNY", 1, "", ev("rt1")))}
	res, _, err := s.writeBatch(ctx, reqs)
	if err != nil || res[0].err != nil || !errors.Is(res[1].err, ledger.ErrNotRefundable) {
		t.Fatalf("batch: %v; %+v", err, res)
	}
	if _, err := s.Balance(ctx, "merchant:TOPUP", "CNY"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("a refused refund created merchant:TOPUP: %v", err)
	}

	// The rest of ORD1 returns the rest of its fee: 6 in all.
	last := mustRecord(t, s, refund("RF8", "ORD1", 500))
	if last.Fee != 6-2-1 {
		t.Errorf("last refund fee %d, want 3 (refunds of 400 and 100 returned 2 and 1)", last.Fee)
	}
	if _, err := s.Record(ctx, refund("RF9", "ORD1", 1)); !errors.Is(err, ledger.ErrRefundExceedsPayment) {
		t.Errorf("refund of a fully refunded payment: %v", err)
	}
	got, err := s.Refund(ctx, "M1", "RF8")
	if last.Replayed = false; err != nil || got != last {
		t.Errorf("Refund(RF8) = %+v, %v; want %+v", got, err, last)
	}
	if _, err := s.Refund(ctx, "M2", "RF8"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("another merchant's refund: %v", err)
	}
	var refunded, fees int64
	if err := s.pool.QueryRow(ctx, `SELECT sum(amount), sum(fee) FROM entries WHERE refund_of = $1`, pay.ID).Scan(&refunded, &fees); err != nil {
		t.Fatal(err)
	}
	if refunded != 1_000 || fees != 6 {
		t.Errorf("ORD1 refunded %d with fee %d, want 1000 and 6", refunded, fees)
	}
	checkInvariants(t, s)
}

// TestConcurrentRefundsNeverExceedPayment races refunds of one payment whose
// sum exceeds it, through two stores (two nodes) on one database: exactly
// the ones that fit succeed, the others are ErrRefundExceedsPayment, and the
// refunded total is the payment.
func TestConcurrentRefundsNeverExceedPayment(t *testing.T) {
	ctx := context.Background()
	s1, dsn := newStore(t, Options{})
	s2, err := Open(ctx, dsn, Options{Now: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s2.Close)
	mustRecord(t, s1, deposit("D1", "42", 10_000))
	pay := mustRecord(t, s1, payment("ORD1", "42", 1_000, 7))

	const n, part = 32, 100 // 3,200 asked of 1,000
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := s1
			if i%2 == 1 {
				s = s2
			}
			_, errs[i] = s.Record(ctx, refund(fmt.Sprint("RF", i), "ORD1", part))
		}()
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ledger.ErrRefundExceedsPayment):
			t.Errorf("refund %d: %v", i, err)
		}
	}
	if ok != 1_000/part {
		t.Errorf("%d refunds succeeded, want %d", ok, 1_000/part)
	}
	var refunded, fees, count int64
	if err := s1.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount), 0), coalesce(sum(fee), 0) FROM entries WHERE refund_of = $1`,
		pay.ID).Scan(&count, &refunded, &fees); err != nil {
		t.Fatal(err)
	}
	if count != int64(ok) || refunded != 1_000 || fees != 7 {
		t.Errorf("%d refunds total %d, fee %d; want %d, 1000, 7", count, refunded, fees, ok)
	}
	wantBalance(t, s1, "user:42", 10_000)
	wantBalance(t, s1, "merchant:M1", 0)
	checkInvariants(t, s1)
}

// TestDatabaseRefusesOverRefund races raw SQL writers that bypass Quill's
// writer (no chain-head lock), at READ COMMITTED and at REPEATABLE READ:
// each sees the refunds committed so far, takes the next place and inserts a
// refund of 400 of a payment of 1,000. The database lets at most two commit
// whatever the interleaving, and the refunds it holds total at most the
// payment. It also refuses the writes no interleaving excuses.
func TestDatabaseRefusesOverRefund(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t, Options{})
	mustRecord(t, s, deposit("D1", "42", 10_000))
	pay := mustRecord(t, s, payment("ORD1", "42", 1_000, 10))
	mustRecord(t, s, deposit("D2", "43", 10)) // an entry that is not a payment
	var userID, merchantID int64
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT id FROM accounts WHERE code = 'user:42'), (SELECT id FROM accounts WHERE code = 'merchant:M1')`).
		Scan(&userID, &merchantID); err != nil {
		t.Fatal(err)
	}
	insert := func(tx pgx.Tx, id int64, refundID string, of int64, seq int, amount int64) error {
		p := pay
		p.ID = of
		return insertRefund(ctx, tx, id, refundID, p, seq, amount, userID, merchantID)
	}
	for _, c := range []struct {
		name  string
		stmts func(tx pgx.Tx) error
		want  string
	}{
		{"refund over the payment", func(tx pgx.Tx) error { return insert(tx, 1000, "X1", pay.ID, 1, 1_001) }, "entries_refund_total"},
		{"refund skipping a place", func(tx pgx.Tx) error { return insert(tx, 1000, "X1", pay.ID, 2, 1) }, "entries_refund_sequence"},
		{"refund of a deposit", func(tx pgx.Tx) error { return insert(tx, 1000, "X1", pay.ID+1, 1, 1) }, "entries_refund_target"},
		{"refund of no entry", func(tx pgx.Tx) error { return insert(tx, 1000, "X1", 999, 1, 1) }, "entries_refund_target"},
		{"two refunds in one place", func(tx pgx.Tx) error {
			if err := insert(tx, 1000, "X1", pay.ID, 1, 1); err != nil {
				return err
			}
			return insert(tx, 1001, "X2", pay.ID, 1, 1)
		}, "entries_refund_seq_key"},
		{"one refund id twice", func(tx pgx.Tx) error {
			if err := insert(tx, 1000, "X1", pay.ID, 1, 1); err != nil {
				return err
			}
			return insert(tx, 1001, "X1", pay.ID, 2, 1)
		}, "entries_merchant_refund_key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := connect(t, dsn)
			err := pgx.BeginFunc(ctx, db, c.stmts)
			if got := constraintOf(err); got != c.want {
				t.Fatalf("error %v: constraint %q, want %q", err, got, c.want)
			}
		})
	}

	next := int64(2000)
	var mu sync.Mutex
	for _, iso := range []pgx.TxIsoLevel{pgx.ReadCommitted, pgx.RepeatableRead} {
		t.Run(string(iso), func(t *testing.T) {
			// A fresh payment per isolation level, 1,000 paid.
			p := mustRecord(t, s, payment(fmt.Sprint("ORD-", iso), "42", 1_000, 0))
			const writers = 8
			start := make(chan struct{})
			var wg sync.WaitGroup
			committed := make([]bool, writers)
			for i := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					db, err := pgx.Connect(ctx, dsn)
					if err != nil {
						t.Error(err)
						return
					}
					defer db.Close(ctx)
					mu.Lock()
					next++
					id := next
					mu.Unlock()
					<-start
					err = pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: iso}, func(tx pgx.Tx) error {
						var seen int
						if err := tx.QueryRow(ctx, `SELECT count(*) FROM entries WHERE refund_of = $1`, p.ID).Scan(&seen); err != nil {
							return err
						}
						return insertRefund(ctx, tx, id, fmt.Sprint("RACE-", iso, "-", i), p, seen+1, 400, userID, merchantID)
					})
					committed[i] = err == nil
				}()
			}
			close(start)
			wg.Wait()
			n := 0
			for _, c := range committed {
				if c {
					n++
				}
			}
			var total int64
			if err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM entries WHERE refund_of = $1`, p.ID).Scan(&total); err != nil {
				t.Fatal(err)
			}
			if n > 2 || total != int64(n)*400 || total > 1_000 {
				t.Fatalf("%d raw refunds of 400 committed, total %d, of a payment of 1000", n, total)
			}
			t.Logf("%s: %d of %d racing raw refunds committed", iso, n, writers)
		})
	}
}

// insertRefund is TestDatabaseRefusesOverRefund's raw refund of p.
func insertRefund(ctx context.Context, tx pgx.Tx, id int64, refundID string, p ledger.Recorded, seq int, amount, userID, merchantID int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO entries (id, kind, merchant_id, order_id, payer, currency, amount, fee,
		description, fingerprint, prev_hash, hash, created_at, evidence_scheme, evidence_key_id,
		authorization_header, evidence_method, evidence_target, evidence_body, evidence_body_sha256, posting_count,
		refund_id, refund_of, refund_seq)
		VALUES ($1, 'refund', $2, $3, $4, 'CNY', $5, 0, '', decode(repeat('00', 32), 'hex'),
		decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'), $6, 's', 'k', 'a', 'POST', '/', '', sha256(''), 2,
		$7, $8, $9)`, id, p.Merchant, p.OrderID, p.Payer, amount, time.Now(), refundID, p.ID, seq)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO postings VALUES ($1, 0, 2, $2, $3), ($1, 1, 2, $4, $5)`, id, userID, -amount, merchantID, amount)
	return err
}
