package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/ledger"
)

// listingLedger records, one entry per batch (so each has its own
// created_at), deposits into wallets by M1 and by TOP, and payments to M1 and
// M2, interleaved. It returns the recorded entries in id order.
func listingLedger(tb testing.TB, s *Store) []ledger.Recorded {
	tb.Helper()
	var recs []ledger.Recorded
	rec := func(e ledger.Entry) { recs = append(recs, mustRecord(tb, s, e)) }
	rec(ledger.Deposit("TOP", "DT1", "1", "CNY", 100_000, ev("dt1")))
	rec(ledger.Deposit("TOP", "DT2", "2", "CNY", 100_000, ev("dt2")))
	for i := range 12 {
		rec(ledger.Payment("M1", fmt.Sprintf("P1-%02d", i), "1", "CNY", int64(1000+i), int64(i), "m1", ev(fmt.Sprint("p1", i))))
		if i%3 == 0 {
			rec(ledger.Payment("M2", fmt.Sprintf("P2-%02d", i), "2", "CNY", 500, 5, "m2", ev(fmt.Sprint("p2", i))))
		}
		if i%4 == 1 {
			rec(ledger.Deposit("M1", fmt.Sprintf("D1-%02d", i), "3", "CNY", 700, ev(fmt.Sprint("d1", i))))
		}
		if i%3 == 1 { // a partial refund of the payment before
			rec(ledger.Refund("M1", fmt.Sprintf("R1-%02d", i), fmt.Sprintf("P1-%02d", i-1), "CNY", int64(300+i), "refund", ev(fmt.Sprint("r1", i))))
		}
	}
	rec(ledger.Refund("M2", "R2-00", "P2-00", "CNY", 500, "whole", ev("r2")))
	return recs
}

// want filters recs: merchant's entries of kinds within sp.
func wantRecords(recs []ledger.Recorded, merchant string, kinds []ledger.Kind, sp ledger.Span) []ledger.Recorded {
	var out []ledger.Recorded
	for _, r := range recs {
		if r.Merchant == merchant && slices.Contains(kinds, r.Kind) && r.ID >= sp.FromEntry && r.ID <= sp.ToEntry &&
			(sp.From.IsZero() || !r.CreatedAt.Before(sp.From)) && (sp.To.IsZero() || r.CreatedAt.Before(sp.To)) {
			out = append(out, r)
		}
	}
	return out
}

// wantNet is what a record's Net must be, from the entry's own figures: a
// payment credits its merchant amount-fee, a refund debits it what it
// returns less its share of the fee, a deposit does not touch the depositing
// merchant's account.
func wantNet(r ledger.Recorded) int64 {
	switch r.Kind {
	case ledger.KindPayment:
		return r.Amount - r.Fee
	case ledger.KindRefund:
		return -(r.Amount - r.Fee)
	}
	return 0
}

func checkRecord(tb testing.TB, got ledger.Record, want ledger.Recorded) {
	tb.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) {
		tb.Errorf("entry %d: created_at %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
	got.CreatedAt = want.CreatedAt // compared above: one may carry a location
	if got.Recorded != want {
		tb.Errorf("record %+v, want %+v", got.Recorded, want)
	}
	if got.Net != wantNet(want) {
		tb.Errorf("entry %d (%s): net %d, want %d", want.ID, want.Kind, got.Net, wantNet(want))
	}
}

// listAll pages through q with limit, checking every page but the last is
// full and ids strictly increase.
func listAll(tb testing.TB, s *Store, q ledger.ListQuery) []ledger.Record {
	tb.Helper()
	var all []ledger.Record
	for pages := 0; ; pages++ {
		if pages > 1000 {
			tb.Fatal("pagination does not end")
		}
		page, err := s.ListRecords(context.Background(), q)
		if err != nil {
			tb.Fatalf("ListRecords after %d: %v", q.After, err)
		}
		if page.More && len(page.Records) != q.Limit {
			tb.Fatalf("a page with more after it has %d records, want %d", len(page.Records), q.Limit)
		}
		for _, r := range page.Records {
			if r.ID <= q.After {
				tb.Fatalf("entry %d listed after %d", r.ID, q.After)
			}
			q.After = r.ID
			all = append(all, r)
		}
		if !page.More {
			return all
		}
	}
}

func TestListRecords(t *testing.T) {
	s, _ := newStore(t, Options{})
	ctx := context.Background()
	recs := listingLedger(t, s)
	last := recs[len(recs)-1]
	cases := []struct {
		name     string
		from, to int // indexes into recs whose created_at bound the period; -1: open
	}{
		{"open", -1, -1},
		{"from and to", 5, 15},
		{"from only", 7, -1},
		{"to only", -1, 9},
		{"empty", 9, 9},
	}
	at := func(i int) (tm time.Time) {
		if i >= 0 {
			tm = recs[i].CreatedAt
		}
		return tm
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sp, err := s.ResolveSpan(ctx, at(c.from), at(c.to))
			if err != nil {
				t.Fatal(err)
			}
			if c.from < 0 && c.to < 0 && (sp.FromEntry != 1 || sp.ToEntry != last.ID) {
				t.Errorf("open span %+v, want entries 1..%d", sp, last.ID)
			}
			for _, m := range []string{"M1", "M2", "TOP"} {
				for _, k := range ledger.MerchantKinds {
					for _, limit := range []int{1, 2, 5, 1000} {
						got := listAll(t, s, ledger.ListQuery{Merchant: m, Kind: k, Span: sp, Limit: limit})
						want := wantRecords(recs, m, []ledger.Kind{k}, sp)
						if len(got) != len(want) {
							t.Fatalf("%s %s limit %d: %d records, want %d", m, k, limit, len(got), len(want))
						}
						for i := range want {
							checkRecord(t, got[i], want[i])
						}
					}
				}
			}
		})
	}
	if n := len(wantRecords(recs, "M1", []ledger.Kind{ledger.KindPayment}, ledger.Span{FromEntry: 1, ToEntry: last.ID, From: at(5), To: at(15)})); n < 3 {
		t.Fatalf("the bounded case lists %d payments of M1: the ledger does not test it", n)
	}

	// A span is fixed when resolved: entries recorded later are not in it.
	sp, err := s.ResolveSpan(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	later := mustRecord(t, s, ledger.Payment("M1", "LATER", "1", "CNY", 10, 0, "", ev("later")))
	for _, r := range listAll(t, s, ledger.ListQuery{Merchant: "M1", Kind: ledger.KindPayment, Span: sp, Limit: 4}) {
		if r.ID == later.ID {
			t.Error("an entry recorded after the span was resolved is listed in it")
		}
	}
	for _, limit := range []int{0, -1, 1001} {
		if _, err := s.ListRecords(ctx, ledger.ListQuery{Merchant: "M1", Kind: ledger.KindPayment, Span: sp, Limit: limit}); !errors.Is(err, ledger.ErrInvalidEntry) {
			t.Errorf("limit %d: %v, want ErrInvalidEntry", limit, err)
		}
	}
}

func TestListRecordsConcurrentInserts(t *testing.T) {
	s, _ := newStore(t, Options{MaxBatch: 4})
	listingLedger(t, s)
	const writers, each = 4, 15
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		written []int64
		done    = make(chan struct{})
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r, err := s.Record(context.Background(), ledger.Payment("M1", fmt.Sprintf("C%d-%d", w, i), "1", "CNY", 10, 0, "", ev(fmt.Sprint("c", w, i))))
				if err != nil {
					t.Errorf("Record: %v", err)
					return
				}
				mu.Lock()
				written = append(written, r.ID)
				mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	// An open span follows the writers: keep paging until they are done and
	// a last page, read after that, says nothing remains.
	q := ledger.ListQuery{Merchant: "M1", Kind: ledger.KindPayment, Span: ledger.Span{FromEntry: 1, ToEntry: math.MaxInt64}, Limit: 3}
	var listed []int64
	finished := false
	for !finished {
		select {
		case <-done:
			finished = true
		default:
		}
		page, err := s.ListRecords(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			if r.ID <= q.After {
				t.Fatalf("entry %d listed after %d", r.ID, q.After)
			}
			q.After = r.ID
			listed = append(listed, r.ID)
		}
		if page.More {
			finished = false
		}
	}
	var want []int64
	rows, err := s.pool.Query(context.Background(), `SELECT id FROM entries WHERE merchant_id = 'M1' AND kind = 'payment' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if !slices.Equal(listed, want) {
		t.Fatalf("listed %d ids %v\nthe table holds %d: %v", len(listed), listed, len(want), want)
	}
	for _, id := range written {
		if !slices.Contains(listed, id) {
			t.Errorf("entry %d written meanwhile is not listed", id)
		}
	}
	if len(want) != 12+writers*each {
		t.Errorf("%d payments of M1, want %d", len(want), 12+writers*each)
	}
}

func TestEachRecord(t *testing.T) {
	s, _ := newStore(t, Options{})
	ctx := context.Background()
	recs := listingLedger(t, s)
	sp, err := s.ResolveSpan(ctx, recs[3].CreatedAt, recs[len(recs)-2].CreatedAt)
	if err != nil {
		t.Fatal(err)
	}
	read := func() []ledger.Record {
		var out []ledger.Record
		if err := s.EachRecord(ctx, "M1", ledger.MerchantKinds, sp, func(r ledger.Record) error {
			out = append(out, r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := read()
	want := wantRecords(recs, "M1", ledger.MerchantKinds, sp)
	for _, size := range []int{1, 3, len(want), len(want) + 1} { // chunk boundaries
		var chunked []ledger.Record
		if err := s.eachRecord(ctx, "M1", ledger.MerchantKinds, sp, size, func(r ledger.Record) error {
			chunked = append(chunked, r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(chunked, got, func(a, b ledger.Record) bool { return a.ID == b.ID && a.Net == b.Net }) {
			t.Errorf("chunks of %d: %d records, want the %d of one chunk", size, len(chunked), len(got))
		}
	}
	if len(got) != len(want) || len(want) < 10 {
		t.Fatalf("%d records, want %d (of %d entries)", len(got), len(want), len(recs))
	}
	kinds := map[ledger.Kind]int{}
	for i := range want {
		checkRecord(t, got[i], want[i])
		kinds[got[i].Kind]++
	}
	if kinds[ledger.KindPayment] == 0 || kinds[ledger.KindDeposit] == 0 || kinds[ledger.KindRefund] == 0 {
		t.Errorf("kinds %v: the span should mix payments, refunds and deposits", kinds)
	}
	for _, r := range got {
		if (r.Kind == ledger.KindRefund) != (r.RefundID != "") {
			t.Errorf("entry %d, a %s, has refund id %q", r.ID, r.Kind, r.RefundID)
		}
	}
	again := read()
	if !slices.EqualFunc(got, again, func(a, b ledger.Record) bool { return a.ID == b.ID && a.Hash == b.Hash && a.Net == b.Net }) {
		t.Error("a span read twice gave different records")
	}

	// One kind only; a failing emit stops the stream with its error.
	var pays int
	if err := s.EachRecord(ctx, "M1", []ledger.Kind{ledger.KindPayment}, sp, func(r ledger.Record) error {
		if r.Kind != ledger.KindPayment {
			t.Errorf("entry %d is a %s", r.ID, r.Kind)
		}
		pays++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if pays != kinds[ledger.KindPayment] {
		t.Errorf("%d payments, want %d", pays, kinds[ledger.KindPayment])
	}
	stop := errors.New("stop")
	n := 0
	err = s.EachRecord(ctx, "M1", ledger.MerchantKinds, sp, func(ledger.Record) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("emit failing: %v after %d records", err, n)
	}
	if err := s.EachRecord(ctx, "M1", append(slices.Clone(ledger.MerchantKinds), "x", "y", "z"), sp, func(ledger.Record) error { return nil }); !errors.Is(err, ledger.ErrInvalidEntry) {
		t.Errorf("too many kinds: %v", err)
	}
}
