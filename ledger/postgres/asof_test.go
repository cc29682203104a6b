package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/ledger"
)

// TestBalancesAsOfMatchStoredHistory: the balances a trial balance computes
// from the postings as of any past entry — by entry id and by that entry's
// time — are, account by account, what the balances table held right after
// that entry was written (read then, in the test). The ledger mixes deposits,
// payments with fees and partial and full refunds.
func TestBalancesAsOfMatchStoredHistory(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{})
	var history []map[acctKey]int64 // history[k-1]: the balances table after entry k
	stored := func() map[acctKey]int64 {
		rows, err := s.pool.Query(ctx, `SELECT a.code, a.currency, b.balance FROM balances b JOIN accounts a ON a.id = b.account_id`)
		if err != nil {
			t.Fatal(err)
		}
		out := map[acctKey]int64{}
		for _, r := range must(pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
			Code, Cur string
			Bal       int64
		}]))(t) {
			out[acctKey{r.Code, r.Cur}] = r.Bal
		}
		return out
	}
	m := &model{}
	m.after = func() { history = append(history, stored()) }
	seedInto(t, s, m)

	for k := int64(1); k <= int64(len(m.recs)); k++ {
		want := history[k-1]
		for _, asOf := range []ledger.AsOf{{Entry: k}, {Time: m.recs[k-1].CreatedAt}, {Time: m.recs[k-1].CreatedAt.Add(time.Microsecond / 2)}} {
			tb, err := s.TrialBalance(ctx, asOf, nil)
			if err != nil {
				t.Fatalf("as of %+v: %v", asOf, err)
			}
			if tb.AsOfEntry != k {
				t.Fatalf("as of %+v resolved to entry %d, want %d", asOf, tb.AsOfEntry, k)
			}
			got := map[acctKey]int64{}
			for _, a := range tb.Accounts {
				got[acctKey{a.Account, a.Currency}] = a.Balance
			}
			for key, bal := range want {
				if got[key] != bal {
					t.Errorf("as of entry %d: %s %s = %d from the postings, the balances table held %d", k, key.code, key.cur, got[key], bal)
				}
			}
			if len(got) != len(want) {
				t.Errorf("as of entry %d: %d accounts from the postings, %d in the balances table", k, len(got), len(want))
			}
		}
	}
	// And the head is checked against the live table by TrialBalance itself.
	tb, err := s.TrialBalance(ctx, ledger.AsOf{}, nil)
	if err != nil || !tb.CheckedBalances || len(tb.Mismatches) != 0 {
		t.Fatalf("head: checked %v, mismatches %v, %v", tb.CheckedBalances, tb.Mismatches, err)
	}
}

func must[T any](v T, err error) func(testing.TB) T {
	return func(tb testing.TB) T {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}
