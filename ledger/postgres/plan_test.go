package postgres

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/ledger"
)

// book is the state a batch is decided against: balances (normal sign) by
// account code, all in CNY.
type book map[string]int64

func (b book) snapshot(tb testing.TB, existing ...ledger.Recorded) snapshot {
	tb.Helper()
	s := snapshot{
		headSeq: 41, headHash: [32]byte{41},
		existing: map[orderKey]ledger.Recorded{},
		accounts: map[accountKey]account{}, balances: map[accountKey]int64{},
	}
	id := int64(100)
	for code, bal := range b {
		typ, allow, err := ledger.Classify(code)
		if err != nil {
			tb.Fatal(err)
		}
		id++
		k := accountKey{code, "CNY"}
		s.accounts[k] = account{id: id, sign: ledger.NormalSign(typ), allowNegative: allow}
		s.balances[k] = bal
	}
	for _, r := range existing {
		s.existing[recordKey(r)] = r
	}
	return s
}

// stored is e as the ledger would hold it under id.
func stored(e ledger.Entry, id int64) ledger.Recorded {
	return ledger.Recorded{ID: id, Kind: e.Kind, Merchant: e.Merchant, OrderID: e.OrderID, Payer: e.Payer,
		Currency: e.Currency, Amount: e.Amount, Fee: e.Fee, Description: e.Description, Fingerprint: ledger.Fingerprint(e)}
}

// TestDecide pins the money rules of a batch without a database.
func TestDecide(t *testing.T) {
	type want struct {
		err      error
		id       int64 // 0: no id expected (an error)
		replayed bool
	}
	funded := book{"user:42": 100, "merchant:M1": 0, "platform:fees": 0, "bank:settlement": 0}
	tests := []struct {
		name     string
		book     book
		existing []ledger.Recorded
		entries  []ledger.Entry
		want     []want
		after    book // balances after the batch, for the accounts listed
	}{
		{
			name:    "insufficient funds mid-batch leaves the entry out, later ones go on",
			book:    funded,
			entries: []ledger.Entry{payment("A", "42", 60, 1), payment("B", "42", 60, 1), payment("C", "42", 40, 1)},
			want:    []want{{nil, 42, false}, {ledger.ErrInsufficientFunds, 0, false}, {nil, 43, false}},
			after:   book{"user:42": 0, "merchant:M1": 98, "platform:fees": 2},
		},
		{
			name:    "a deposit earlier in the batch funds a payment",
			book:    funded,
			entries: []ledger.Entry{payment("A", "42", 150, 0), deposit("D", "42", 50), payment("B", "42", 150, 0)},
			want:    []want{{ledger.ErrInsufficientFunds, 0, false}, {nil, 42, false}, {nil, 43, false}},
			after:   book{"user:42": 0, "bank:settlement": 50, "merchant:M1": 150},
		},
		{
			name: "duplicate order in one batch: same content shares the entry, different content conflicts",
			book: funded,
			entries: []ledger.Entry{payment("A", "42", 10, 0), payment("A", "42", 10, 0), payment("A", "42", 11, 0),
				payment("B", "42", 20, 0)},
			want:  []want{{nil, 42, false}, {nil, 42, true}, {ledger.ErrOrderConflict, 0, false}, {nil, 43, false}},
			after: book{"user:42": 70, "merchant:M1": 30},
		},
		{
			name:    "duplicate of a rejected order gets its error",
			book:    funded,
			entries: []ledger.Entry{payment("A", "42", 101, 0), payment("A", "42", 101, 0), payment("A", "42", 5, 0)},
			want: []want{{ledger.ErrInsufficientFunds, 0, false}, {ledger.ErrInsufficientFunds, 0, false},
				{ledger.ErrOrderConflict, 0, false}},
			after: book{"user:42": 100},
		},
		{
			name:     "replay of a stored entry answers from the record, a changed one conflicts",
			book:     funded,
			existing: []ledger.Recorded{stored(payment("OLD", "42", 30, 0), 7), stored(payment("OLD2", "42", 30, 0), 8)},
			entries:  []ledger.Entry{payment("OLD", "42", 30, 0), payment("OLD2", "42", 31, 0), payment("OLD", "42", 30, 0)},
			want:     []want{{nil, 7, true}, {ledger.ErrOrderConflict, 0, false}, {nil, 7, true}},
			after:    book{"user:42": 100, "merchant:M1": 0},
		},
		{
			name:     "a replay of a stored entry behind a conflicting copy in the same batch still replays",
			book:     funded,
			existing: []ledger.Recorded{stored(payment("OLD", "42", 30, 0), 7)},
			entries:  []ledger.Entry{payment("OLD", "42", 31, 0), payment("OLD", "42", 30, 0), payment("OLD", "42", 32, 0)},
			want:     []want{{ledger.ErrOrderConflict, 0, false}, {nil, 7, true}, {ledger.ErrOrderConflict, 0, false}},
			after:    book{"user:42": 100, "merchant:M1": 0},
		},
		{
			name:    "a balance that would overflow is an invalid entry",
			book:    book{"user:42": math.MaxInt64, "merchant:M1": math.MaxInt64 - 5, "bank:settlement": 0},
			entries: []ledger.Entry{payment("A", "42", 10, 0), payment("B", "42", 5, 0), deposit("D", "42", 1)},
			want:    []want{{ledger.ErrInvalidEntry, 0, false}, {nil, 42, false}, {nil, 43, false}},
			after:   book{"merchant:M1": math.MaxInt64, "user:42": math.MaxInt64 - 4, "bank:settlement": 1},
		},
		{
			name:    "settlement may go negative, a wallet may not",
			book:    book{"user:42": 0, "bank:settlement": -500, "merchant:M1": 0},
			entries: []ledger.Entry{deposit("D", "42", 1), payment("A", "42", 2, 0)},
			want:    []want{{nil, 42, false}, {ledger.ErrInsufficientFunds, 0, false}},
			after:   book{"user:42": 1, "bank:settlement": -499},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs := make([]*request, len(tt.entries))
			for i, e := range tt.entries {
				reqs[i] = newRequest(e)
			}
			snap := tt.book.snapshot(t, tt.existing...)
			clock := time.Date(2025, 1, 2, 3, 4, 5, 6789, time.UTC)
			calls := 0
			p := decide(reqs, keys(reqs), snap, func() time.Time { calls++; return clock })

			accepted := 0
			for i, w := range tt.want {
				r := p.results[i]
				if !errors.Is(r.err, w.err) || (w.err == nil) != (r.err == nil) {
					t.Errorf("entry %d: err %v, want %v", i, r.err, w.err)
					continue
				}
				if r.rec.ID != w.id || r.rec.Replayed != w.replayed {
					t.Errorf("entry %d: id %d replayed %v, want id %d replayed %v", i, r.rec.ID, r.rec.Replayed, w.id, w.replayed)
				}
				if w.err == nil && !w.replayed {
					accepted++
				}
			}
			if p.written() != accepted || p.headSeq != snap.headSeq+int64(accepted) {
				t.Errorf("writes %d entries, head %d; want %d entries, head %d", p.written(), p.headSeq, accepted, snap.headSeq+int64(accepted))
			}
			if wantCalls := min(accepted, 1); calls != wantCalls {
				t.Errorf("clock read %d times, want %d", calls, wantCalls)
			}
			checkChain(t, p, reqs, snap.headHash, ledger.CanonicalTime(clock))

			// The deltas applied to the snapshot give the expected balances.
			got := map[int64]int64{}
			for i, id := range p.deltaIDs {
				if p.deltas[i] == 0 {
					t.Errorf("zero delta for account %d", id)
				}
				got[id] += p.deltas[i]
			}
			for code, want := range tt.after {
				k := accountKey{code, "CNY"}
				if b := snap.balances[k] + got[snap.accounts[k].id]; b != want {
					t.Errorf("%s: balance %d after the batch, want %d", code, b, want)
				}
			}
		})
	}
}

// checkChain verifies the plan's rows: consecutive ids, each prev_hash the
// hash before it, each hash ledger.ChainHash of its entry, the head the last
// hash, and the postings of each entry on the snapshot's account ids.
func checkChain(tb testing.TB, p plan, reqs []*request, head [32]byte, created time.Time) {
	tb.Helper()
	byID := map[int64]*request{}
	for i, r := range p.results {
		if r.err == nil && !r.rec.Replayed {
			byID[r.rec.ID] = reqs[i]
		}
	}
	prev := head
	np := 0
	for j, id := range p.entries.ids {
		r := byID[id]
		if r == nil {
			tb.Fatalf("row %d: entry %d is not the answer of any request", j, id)
		}
		if j > 0 && id != p.entries.ids[j-1]+1 {
			tb.Errorf("row %d: id %d does not follow %d", j, id, p.entries.ids[j-1])
		}
		rec := stored(r.e, id)
		rec.CreatedAt = created
		h := ledger.ChainHash(prev, rec, r.e.Postings, r.evidence)
		if string(p.entries.prevs[j]) != string(prev[:]) || string(p.entries.hashes[j]) != string(h[:]) ||
			!p.entries.times[j].Equal(created) || p.entries.counts[j] != int32(len(r.e.Postings)) {
			tb.Errorf("row %d (entry %d): prev/hash/time/count do not chain", j, id)
		}
		for s := range r.e.Postings {
			if p.postings.entries[np] != id || p.postings.seqs[np] != int32(s) || p.postings.amounts[np] != r.e.Postings[s].Amount {
				tb.Errorf("posting row %d: entry %d seq %d amount %d", np, p.postings.entries[np], p.postings.seqs[np], p.postings.amounts[np])
			}
			np++
		}
		prev = h
	}
	if np != len(p.postings.entries) {
		tb.Errorf("%d posting rows, want %d", len(p.postings.entries), np)
	}
	if p.headHash != prev {
		tb.Errorf("head hash is not the last entry's hash")
	}
	for _, a := range [][]any{p.entries.args(), p.postings.args()} {
		for i, col := range a {
			if n := lenOf(col); n != lenOf(a[0]) {
				tb.Errorf("column %d has %d rows, want %d", i, n, lenOf(a[0]))
			}
		}
	}
}

func lenOf(col any) int {
	switch c := col.(type) {
	case []int64:
		return len(c)
	case []int32:
		return len(c)
	case []string:
		return len(c)
	case [][]byte:
		return len(c)
	case []time.Time:
		return len(c)
	case []*string:
		return len(c)
	case []*int64:
		return len(c)
	case []*int32:
		return len(c)
	}
	panic("unknown column type")
}

// TestDecideRefunds pins how a batch decides refunds: against the payment's
// refunds in the snapshot and earlier in the batch, with the fee share, the
// place among the payment's refunds, and the merchant's balance.
func TestDecideRefunds(t *testing.T) {
	paid := ledger.Proposed(payment("ORD1", "42", 1_000, 6))
	paid.ID = 7
	rf := func(id, order string, amount int64) ledger.Entry {
		return ledger.Refund("M1", id, order, "CNY", amount, "", ev(id))
	}
	reqs := []*request{}
	for _, e := range []ledger.Entry{
		rf("A", "ORD1", 600), rf("B", "ORD1", 600), rf("C", "ORD1", 400), rf("A", "ORD1", 600), rf("A", "ORD1", 601),
		rf("D", "ORD9", 1), payment("ORD5", "42", 100, 1), rf("E", "ORD5", 50),
	} {
		reqs = append(reqs, newRequest(e))
	}
	snap := book{"user:42": 0, "merchant:M1": 994, "platform:fees": 6}.snapshot(t)
	snap.targets = map[orderKey]ledger.Refundable{{merchant: "M1", order: "ORD1"}: {Payment: paid}}
	k := keys(reqs)
	if len(k.refunds) != 5 || len(k.targets) != 3 {
		t.Fatalf("keys: %d refund keys, %d targets; want 5 and 3", len(k.refunds), len(k.targets))
	}
	p := decide(reqs, k, snap, time.Now)
	type want struct {
		err error
		id  int64
		fee int64
	}
	for i, w := range []want{{nil, 42, 3}, {ledger.ErrRefundExceedsPayment, 0, 0}, {nil, 43, 3}, {nil, 42, 3},
		{ledger.ErrOrderConflict, 0, 0}, {ledger.ErrNotFound, 0, 0}, {nil, 44, 1}, {nil, 45, 0}} {
		r := p.results[i]
		if !errors.Is(r.err, w.err) || (w.err == nil) != (r.err == nil) || r.rec.ID != w.id || r.rec.Fee != w.fee {
			t.Errorf("request %d: %+v, %v; want id %d fee %d, %v", i, r.rec, r.err, w.id, w.fee, w.err)
		}
	}
	if !p.results[3].rec.Replayed || p.results[0].rec.Replayed || p.results[0].rec.Payer != "42" {
		t.Errorf("replay flags or payer wrong: %+v / %+v", p.results[0].rec, p.results[3].rec)
	}
	// Places and payments of the written refunds: 1 and 2 of entry 7, 1 of
	// entry 44 (paid in this batch).
	var places []string
	for j := range p.entries.ids {
		if p.entries.refundSeqs[j] == nil {
			places = append(places, "-")
			continue
		}
		places = append(places, fmt.Sprintf("%s:%d@%d", *p.entries.refundIDs[j], *p.entries.refundSeqs[j], *p.entries.refundOfs[j]))
	}
	if got := strings.Join(places, " "); got != "A:1@7 C:2@7 - E:1@44" {
		t.Errorf("refund places %q", got)
	}
	got := map[int64]int64{}
	for i, id := range p.deltaIDs {
		got[id] += p.deltas[i]
	}
	for code, want := range map[string]int64{"user:42": 1_000 - 100 + 50, "merchant:M1": 994 - 597 - 397 + 99 - 50, "platform:fees": 1} { // fees: ORD1's 6 all returned, ORD5's 1 taken
		k := accountKey{code, "CNY"}
		if b := snap.balances[k] + got[snap.accounts[k].id]; b != want {
			t.Errorf("%s: %d after the batch, want %d", code, b, want)
		}
	}

	// A merchant whose balance cannot cover the refund.
	poor := book{"user:42": 0, "merchant:M1": 100, "platform:fees": 6}.snapshot(t)
	poor.targets = snap.targets
	reqs = []*request{newRequest(rf("A", "ORD1", 600))}
	if p := decide(reqs, keys(reqs), poor, time.Now); !errors.Is(p.results[0].err, ledger.ErrMerchantFunds) || p.written() != 0 {
		t.Errorf("refund beyond the merchant's balance: %v, %d written", p.results[0].err, p.written())
	}
}
