package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/quillpay/quill/ledger"
)

// model is the test's own ledger: the entries as given to Record, summed in
// Go without the database, to check the reports against.
type model struct {
	entries []ledger.Entry
	recs    []ledger.Recorded
	paid    map[[2]string]ledger.Refundable // payments by (merchant, order id), with their refunds
	after   func()                          // if set, called after each entry is recorded
}

// record writes e and adds it to the model; a refund is completed by the
// model itself, from the payments and refunds it recorded.
func (m *model) record(tb testing.TB, s *Store, e ledger.Entry) {
	tb.Helper()
	r := mustRecord(tb, s, e)
	if r.ID != int64(len(m.recs)+1) {
		tb.Fatalf("entry %s got id %d", e.OrderID, r.ID)
	}
	if m.paid == nil {
		m.paid = map[[2]string]ledger.Refundable{}
	}
	key := [2]string{e.Merchant, e.OrderID}
	switch e.Kind {
	case ledger.KindPayment:
		m.paid[key] = ledger.Refundable{Payment: r}
	case ledger.KindRefund:
		t := m.paid[key]
		done, err := ledger.CompleteRefund(e, t)
		if err != nil {
			tb.Fatal(err)
		}
		if r.Fee != done.Fee || r.Payer != done.Payer {
			tb.Fatalf("refund %s recorded fee %d payer %s, the model says %d %s", e.RefundID, r.Fee, r.Payer, done.Fee, done.Payer)
		}
		t.Refunded, t.RefundedFee, t.Refunds = t.Refunded+e.Amount, t.RefundedFee+done.Fee, t.Refunds+1
		m.paid[key], e = t, done
	}
	m.entries, m.recs = append(m.entries, e), append(m.recs, r)
	if m.after != nil {
		m.after()
	}
}

type acctKey struct{ code, cur string }

// totals sums debits and credits per account over entries (lo, hi] whose
// merchant is in merchants (nil: all).
func (m *model) totals(lo, hi int64, merchants []string) map[acctKey][2]int64 {
	out := map[acctKey][2]int64{}
	for i := lo; i < hi; i++ {
		e := m.entries[i]
		if merchants != nil && !slices.Contains(merchants, e.Merchant) {
			continue
		}
		for _, p := range e.Postings {
			k := acctKey{p.Account, p.Currency}
			t := out[k]
			if p.Amount > 0 {
				t[0] += p.Amount
			} else {
				t[1] -= p.Amount
			}
			out[k] = t
		}
	}
	return out
}

func normal(code string, net int64) int64 {
	typ, _, _ := ledger.Classify(code)
	return ledger.NormalSign(typ) * net
}

// seed writes a mixed ledger for two merchants and returns its model.
func seed(tb testing.TB, s *Store) *model {
	tb.Helper()
	return seedInto(tb, s, &model{})
}

// seedInto is seed recording into m (whose after hook may watch each entry).
func seedInto(tb testing.TB, s *Store, m *model) *model {
	tb.Helper()
	m.record(tb, s, deposit("D1", "42", 10_000))
	m.record(tb, s, deposit("D2", "43", 5_000))
	for i := 0; i < 7; i++ {
		m.record(tb, s, payment(fmt.Sprintf("P%d", i), "42", int64(100+i*37), int64(i)))
		m.record(tb, s, ledger.Payment("M2", fmt.Sprintf("Q%d", i), "43", "CNY", int64(50+i), 1, "m2", ev(fmt.Sprintf("q%d", i))))
	}
	m.record(tb, s, deposit("D3", "42", 1))
	// Refunds: two partial ones of P3 and a full one of M2's Q2.
	m.record(tb, s, refund("RF1", "P3", 100))
	m.record(tb, s, refund("RF2", "P3", 111))
	m.record(tb, s, ledger.Refund("M2", "RF1", "Q2", "CNY", 52, "", ev("rq2")))
	return m
}

func checkTrialBalance(t *testing.T, tb ledger.TrialBalance, want map[acctKey][2]int64) {
	t.Helper()
	if len(tb.Accounts) != len(want) {
		t.Errorf("as of %d: %d accounts, want %d", tb.AsOfEntry, len(tb.Accounts), len(want))
	}
	var debit, credit int64
	for _, a := range tb.Accounts {
		w, ok := want[acctKey{a.Account, a.Currency}]
		if !ok || a.Debit != w[0] || a.Credit != w[1] || a.Balance != normal(a.Account, w[0]-w[1]) {
			t.Errorf("as of %d: %s = %+v, want debit %d credit %d", tb.AsOfEntry, a.Account, a, w[0], w[1])
		}
		debit, credit = debit+w[0], credit+w[1]
	}
	if debit != credit {
		t.Fatalf("the model does not balance: %d vs %d", debit, credit)
	}
	if len(want) > 0 && (len(tb.Totals) != 1 || tb.Totals[0].Debit != debit || tb.Totals[0].Credit != credit ||
		tb.Totals[0].DebitBalances != tb.Totals[0].CreditBalances) {
		t.Errorf("as of %d: totals %+v, want debit = credit = %d", tb.AsOfEntry, tb.Totals, debit)
	}
}

func TestTrialBalanceAsOfEveryEntry(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{})
	m := seed(t, s)
	n := int64(len(m.recs))
	for k := int64(1); k <= n; k++ {
		tb, err := s.TrialBalance(ctx, ledger.AsOf{Entry: k}, nil)
		if err != nil {
			t.Fatalf("as of entry %d: %v", k, err)
		}
		if tb.AsOfEntry != k {
			t.Fatalf("as of entry %d resolved to %d", k, tb.AsOfEntry)
		}
		checkTrialBalance(t, tb, m.totals(0, k, nil))
		if tb.CheckedBalances != (k == n) || len(tb.Mismatches) != 0 {
			t.Errorf("as of %d: checked=%v mismatches=%v", k, tb.CheckedBalances, tb.Mismatches)
		}
		// Time boundaries: an entry's own created_at includes it, a
		// microsecond earlier excludes it.
		at := m.recs[k-1].CreatedAt
		for _, c := range []struct {
			t    time.Time
			want int64
		}{{at, k}, {at.Add(-time.Microsecond), k - 1}, {at.Add(500 * time.Microsecond), k}} {
			tb, err := s.TrialBalance(ctx, ledger.AsOf{Time: c.t}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tb.AsOfEntry != c.want {
				t.Errorf("as of %s: entry %d, want %d", c.t.Format(time.RFC3339Nano), tb.AsOfEntry, c.want)
			}
			if c.want > 0 && !tb.AsOfTime.Equal(m.recs[c.want-1].CreatedAt) {
				t.Errorf("as of time %s, want %s", tb.AsOfTime, m.recs[c.want-1].CreatedAt)
			}
		}
	}
	// Before the first entry and far in the future.
	if tb, _ := s.TrialBalance(ctx, ledger.AsOf{Time: m.recs[0].CreatedAt.Add(-time.Hour)}, nil); tb.AsOfEntry != 0 || len(tb.Accounts) != 0 {
		t.Errorf("before the first entry: %+v", tb)
	}
	if tb, _ := s.TrialBalance(ctx, ledger.AsOf{Entry: n + 100}, nil); tb.AsOfEntry != n {
		t.Errorf("beyond the head resolved to %d", tb.AsOfEntry)
	}
	// Scoped: the sub-journal of M2's entries, which balances on its own.
	tb, err := s.TrialBalance(ctx, ledger.AsOf{}, []string{"M2"})
	if err != nil {
		t.Fatal(err)
	}
	checkTrialBalance(t, tb, m.totals(0, n, []string{"M2"}))
	if tb.CheckedBalances {
		t.Error("a scoped trial balance cannot be checked against the global balances")
	}
	if tb, _ := s.TrialBalance(ctx, ledger.AsOf{}, []string{"NOBODY"}); len(tb.Accounts) != 0 {
		t.Errorf("scope without entries: %+v", tb.Accounts)
	}
}

func TestTrialBalanceSeesBalanceTampering(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t, Options{})
	seed(t, s)
	if _, err := connect(t, dsn).Exec(ctx, `UPDATE balances SET balance = balance + 7
		WHERE account_id = (SELECT id FROM accounts WHERE code = 'merchant:M2')`); err != nil {
		t.Fatal(err)
	}
	tb, err := s.TrialBalance(ctx, ledger.AsOf{}, nil)
	if !errors.Is(err, ledger.ErrIntegrity) || len(tb.Mismatches) != 1 || tb.Mismatches[0].Account != "merchant:M2" ||
		tb.Mismatches[0].Stored-tb.Mismatches[0].Computed != 7 {
		t.Fatalf("TrialBalance = %+v, %v", tb.Mismatches, err)
	}
}

// statementModel is the expected statement of account over entries
// from..to: opening, each posting with its running balance, closing.
func (m *model) statement(code string, from, to int64) (opening int64, lines []ledger.StatementLine, closing int64) {
	for i, e := range m.entries {
		id := int64(i + 1)
		for seq, p := range e.Postings {
			if p.Account != code {
				continue
			}
			switch {
			case id < from:
				opening += normal(code, p.Amount)
				closing = opening
			case id <= to:
				closing += normal(code, p.Amount)
				l := ledger.StatementLine{EntryID: id, Seq: int32(seq), Merchant: e.Merchant, OrderID: e.OrderID, Kind: e.Kind, Balance: closing}
				if p.Amount > 0 {
					l.Debit = p.Amount
				} else {
					l.Credit = -p.Amount
				}
				lines = append(lines, l)
			}
		}
	}
	return opening, lines, closing
}

func TestStatementPages(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{})
	m := seed(t, s)
	n := int64(len(m.recs))
	for _, c := range []struct {
		code     string
		from, to int64
		period   ledger.Period
	}{
		{"user:42", 1, n, ledger.Period{}},
		{"user:42", 4, 11, ledger.Period{FromEntry: 4, ToEntry: 11}},
		{"merchant:M1", 5, n, ledger.Period{From: m.recs[4].CreatedAt}},
		{"merchant:M2", 1, 9, ledger.Period{To: m.recs[9].CreatedAt}},
		{"bank:settlement", 2, 2, ledger.Period{FromEntry: 2, ToEntry: 2}},
		{"platform:fees", 12, 3, ledger.Period{FromEntry: 12, ToEntry: 3}},
	} {
		for _, limit := range []int{1, 3, 100} {
			t.Run(fmt.Sprintf("%s/%d-%d/limit%d", c.code, c.from, c.to, limit), func(t *testing.T) {
				opening, want, closing := m.statement(c.code, c.from, c.to)
				q := ledger.StatementQuery{Account: c.code, Currency: "CNY", Period: c.period, Limit: limit}
				var got []ledger.StatementLine
				for page := 0; ; page++ {
					st, err := s.Statement(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if st.FromEntry != c.from || st.ToEntry != c.to || st.Opening != opening || st.Closing != closing {
						t.Fatalf("page %d: period %d..%d opening %d closing %d, want %d..%d %d %d",
							page, st.FromEntry, st.ToEntry, st.Opening, st.Closing, c.from, c.to, opening, closing)
					}
					if len(st.Lines) > limit {
						t.Fatalf("page of %d lines, limit %d", len(st.Lines), limit)
					}
					got = append(got, st.Lines...)
					if st.Next == nil {
						break
					}
					q.After = st.Next
				}
				if len(got) != len(want) {
					t.Fatalf("%d lines, want %d", len(got), len(want))
				}
				for i := range want {
					g := got[i]
					g.CreatedAt = time.Time{}
					if g != want[i] {
						t.Errorf("line %d = %+v, want %+v", i, g, want[i])
					}
					if !got[i].CreatedAt.Equal(m.recs[want[i].EntryID-1].CreatedAt) {
						t.Errorf("line %d created_at %s", i, got[i].CreatedAt)
					}
				}
			})
		}
	}
	// Unknown accounts and accounts outside the scope are not found, alike.
	for _, q := range []ledger.StatementQuery{
		{Account: "user:999", Currency: "CNY"},
		{Account: "user:42", Currency: "USD"},
		{Account: "merchant:M1", Currency: "CNY", Merchants: []string{"M2"}},
		{Account: "user:42", Currency: "CNY", Merchants: []string{"M1"}},
	} {
		if _, err := s.Statement(ctx, q); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("Statement(%s %v) = %v, want ErrNotFound", q.Account, q.Merchants, err)
		}
	}
	if st, err := s.Statement(ctx, ledger.StatementQuery{Account: "merchant:M2", Currency: "CNY", Merchants: []string{"M2"}}); err != nil || len(st.Lines) != 8 { // 7 payments, 1 refund
		t.Errorf("own merchant account in scope: %d lines, %v", len(st.Lines), err)
	}
}

func TestExportStreamsAndResumes(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{})
	m := seed(t, s)
	type row struct {
		entry   int64
		seq     int32
		account string
		amount  int64
		order   string
	}
	expect := func(from, to int64, merchants []string) []row {
		var out []row
		for i := from - 1; i < to; i++ {
			e := m.entries[i]
			if merchants != nil && !slices.Contains(merchants, e.Merchant) {
				continue
			}
			for seq, p := range e.Postings {
				out = append(out, row{i + 1, int32(seq), p.Account, p.Amount, e.OrderID})
			}
		}
		return out
	}
	collect := func(pos ledger.JournalPosition, merchants []string, stopAfter int) ([]row, ledger.JournalPosition) {
		var out []row
		errStop := errors.New("stop")
		err := s.Export(ctx, pos, merchants, func(r ledger.JournalRow) error {
			if r.Hash != m.recs[r.EntryID-1].Hash || !r.CreatedAt.Equal(m.recs[r.EntryID-1].CreatedAt) {
				t.Errorf("row %d/%d: hash or time differs", r.EntryID, r.Seq)
			}
			out = append(out, row{r.EntryID, r.Seq, r.Account, r.Amount, r.OrderID})
			pos.AfterEntry, pos.AfterSeq = r.EntryID, r.Seq
			if len(out) == stopAfter {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			t.Fatal(err)
		}
		return out, pos
	}
	for _, c := range []struct {
		name      string
		q         ledger.JournalQuery
		from, to  int64
		merchants []string
	}{
		{"all", ledger.JournalQuery{}, 1, int64(len(m.recs)), nil},
		{"entries 3..9", ledger.JournalQuery{Period: ledger.Period{FromEntry: 3, ToEntry: 9}}, 3, 9, nil},
		{"by time", ledger.JournalQuery{Period: ledger.Period{From: m.recs[2].CreatedAt, To: m.recs[9].CreatedAt}}, 3, 9, nil},
		{"scoped", ledger.JournalQuery{Merchants: []string{"M2"}}, 1, int64(len(m.recs)), []string{"M2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := expect(c.from, c.to, c.merchants)
			pos, n, err := s.ExportRange(ctx, c.q)
			if err != nil {
				t.Fatal(err)
			}
			if pos.FromEntry != c.from || pos.ToEntry != c.to || n != int64(len(want)) {
				t.Fatalf("range %+v with %d rows, want %d..%d with %d", pos, n, c.from, c.to, len(want))
			}
			// Interrupted after 5 rows, then resumed from the last row seen.
			first, at := collect(pos, c.merchants, 5)
			_, left, err := s.ExportRange(ctx, ledger.JournalQuery{Resume: &at, Merchants: c.merchants})
			if err != nil || left != int64(len(want)-len(first)) {
				t.Fatalf("rows left after resume point: %d, %v; want %d", left, err, len(want)-len(first))
			}
			rest, _ := collect(at, c.merchants, -1)
			if got := append(first, rest...); !slices.Equal(got, want) {
				t.Fatalf("export = %v\nwant %v", got, want)
			}
		})
	}
}

func TestEntryEvidence(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{})
	m := seed(t, s)
	for i, r := range m.recs {
		ee, err := s.EntryEvidence(ctx, r.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		e := m.entries[i]
		prev := ledger.GenesisHash
		if i > 0 {
			prev = m.recs[i-1].Hash
		}
		if ee.Hash != r.Hash || ee.PrevHash != prev || !slices.Equal(ee.Postings, e.Postings) ||
			ee.Evidence.Authorization != e.Evidence.Authorization || string(ee.Evidence.Body) != string(e.Evidence.Body) ||
			ee.Evidence.Target != e.Evidence.Target || ee.Evidence.KeyID != e.Evidence.KeyID {
			t.Fatalf("entry %d evidence = %+v", r.ID, ee)
		}
		// The evidence is enough to recompute the entry's hash.
		if h := ledger.ChainHash(ee.PrevHash, ee.Recorded, ee.Postings, ledger.EvidenceDigest(ee.Evidence)); h != r.Hash {
			t.Fatalf("entry %d: hash from its evidence differs", r.ID)
		}
	}
	m2 := m.recs[3] // a payment of M2
	if m2.Merchant != "M2" {
		t.Fatalf("fixture: entry 4 is %s's", m2.Merchant)
	}
	for _, c := range []struct {
		id        int64
		merchants []string
	}{{999, nil}, {m2.ID, []string{"M1"}}, {999, []string{"M1"}}} {
		if _, err := s.EntryEvidence(ctx, c.id, c.merchants); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("EntryEvidence(%d, %v) = %v, want ErrNotFound", c.id, c.merchants, err)
		}
	}
	if _, err := s.EntryEvidence(ctx, m2.ID, []string{"M2"}); err != nil {
		t.Errorf("in scope: %v", err)
	}
}

// TestReportsWithBlocks reruns the report tests with blocks of three entries,
// so trial balances and statements combine built blocks with the postings
// above them at every position (and blocks are built as the ledger grows).
func TestReportsWithBlocks(t *testing.T) {
	old := blockSize
	blockSize = 3
	t.Cleanup(func() { blockSize = old })
	t.Run("trial balance", TestTrialBalanceAsOfEveryEntry)
	t.Run("statements", TestStatementPages)
	t.Run("tampered balance", TestTrialBalanceSeesBalanceTampering)

	ctx := context.Background()
	s, _ := newStore(t, Options{})
	m := seed(t, s)
	if _, err := s.TrialBalance(ctx, ledger.AsOf{}, nil); err != nil {
		t.Fatal(err)
	}
	var built int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM posting_totals_built WHERE size = 3").Scan(&built); err != nil {
		t.Fatal(err)
	}
	if want := int64(len(m.recs)) / 3; built != want {
		t.Fatalf("%d blocks built, want %d", built, want)
	}
	// Each row holds its account's running totals through the end of its
	// block, and every account with a posting in a built block has its row.
	var bad, missing int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM posting_totals b CROSS JOIN LATERAL (
		SELECT coalesce(sum(amount) FILTER (WHERE amount > 0), 0) AS d, coalesce(-sum(amount) FILTER (WHERE amount < 0), 0) AS c
		FROM postings p WHERE p.account_id = b.account_id AND p.entry_id <= (b.block + 1) * 3) x
		WHERE b.size = 3 AND (b.debit <> x.d OR b.credit <> x.c)`).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("%d running totals differ from their postings (%v)", bad, err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT DISTINCT (entry_id - 1) / 3 AS block, account_id
		FROM postings WHERE entry_id <= $1 * 3) p
		WHERE NOT EXISTS (SELECT 1 FROM posting_totals t WHERE t.size = 3 AND t.block = p.block AND t.account_id = p.account_id)`,
		built).Scan(&missing); err != nil || missing != 0 {
		t.Fatalf("%d (block, account) pairs with postings but no running total (%v)", missing, err)
	}
}
