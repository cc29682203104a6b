package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/ledger"
)

// expected is an entry the run must have left: one per 2xx write.
type expected struct {
	Kind     ledger.Kind
	Merchant string
	OrderID  string
	Payer    string
	Amount   int64 // minor units, as sent
	Fee      int64 // from the merchant's profile: floor(amount × fee_bps / 10000)
	EntryID  int64 // as the signed response reported it
}

// snapshot is the ledger before the run: the last entry id and the balances
// of the accounts the run touches.
type snapshot struct {
	LastID   int64
	Balances map[string]int64 // account code → balance in its normal sign
}

// checkResult is the ledger check's verdict.
type checkResult struct {
	Passed      bool     `json:"passed"`
	NewEntries  int      `json:"new_entries"`
	Expected    int      `json:"expected_entries"`
	Missing     int      `json:"missing"`    // a 2xx without its entry
	Unexpected  int      `json:"unexpected"` // an entry nobody was answered 2xx for
	Mismatched  int      `json:"mismatched"` // the entry differs from the request or the response
	Unbalanced  int      `json:"unbalanced"` // postings do not sum to zero or are incomplete
	BalanceDiff int      `json:"balance_mismatches"`
	Accounts    int      `json:"accounts_checked"`
	Problems    []string `json:"problems,omitempty"` // the first few, for a human
}

func (c *checkResult) problem(format string, a ...any) {
	if len(c.Problems) < 20 {
		c.Problems = append(c.Problems, fmt.Sprintf(format, a...))
	}
}

// balanceQuery reads balances (normal sign) of account codes in CNY.
const balanceQuery = `
	SELECT a.code, b.balance FROM accounts a JOIN balances b ON b.account_id = a.id
	WHERE a.code = ANY($1) AND a.currency = 'CNY'`

func takeSnapshot(ctx context.Context, db *pgx.Conn, codes []string) (snapshot, error) {
	s := snapshot{Balances: map[string]int64{}}
	if err := db.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM entries`).Scan(&s.LastID); err != nil {
		return s, fmt.Errorf("ledger check: %w", err)
	}
	rows, err := db.Query(ctx, balanceQuery, codes)
	if err != nil {
		return s, fmt.Errorf("ledger check: %w", err)
	}
	for rows.Next() {
		var code string
		var b int64
		if err := rows.Scan(&code, &b); err != nil {
			return s, err
		}
		s.Balances[code] = b
	}
	return s, rows.Err()
}

// checkLedger compares what the run left in the ledger with what it was
// told: every expected entry exists exactly once with the amounts, fee, payer
// and id of its request and response; no other entry was written since
// before; every new entry's postings are complete and balance; and each
// account the run touched (merchants, payers, platform fees) moved, both in
// the balances table and in the postings, by exactly the accepted amounts:
// merchant +(amount − fee), platform fees +fee, payer +deposits − payments.
func checkLedger(ctx context.Context, db *pgx.Conn, before snapshot, want []expected, codes []string) (*checkResult, error) {
	res := &checkResult{Expected: len(want)}
	type key struct{ merchant, order string }
	exp := make(map[key]*expected, len(want))
	for i := range want {
		k := key{want[i].Merchant, want[i].OrderID}
		if _, dup := exp[k]; dup {
			res.problem("two 2xx answers for %s %s", k.merchant, k.order)
			res.Mismatched++
		}
		exp[k] = &want[i]
	}

	rows, err := db.Query(ctx, `
		SELECT id, kind, merchant_id, order_id, payer, amount, fee FROM entries
		WHERE id > $1 ORDER BY id`, before.LastID)
	if err != nil {
		return nil, fmt.Errorf("ledger check: %w", err)
	}
	seen := make(map[key]bool, len(want))
	for rows.Next() {
		var (
			id          int64
			kind        string
			m, o, payer string
			amount, fee int64
		)
		if err := rows.Scan(&id, &kind, &m, &o, &payer, &amount, &fee); err != nil {
			return nil, err
		}
		res.NewEntries++
		k := key{m, o}
		e, ok := exp[k]
		switch {
		case !ok:
			res.Unexpected++
			res.problem("entry %d (%s %s %s) was written but no request of the run was answered 2xx for it", id, kind, m, o)
		case seen[k]:
			res.Unexpected++
			res.problem("a second entry %d for %s %s", id, m, o)
		case string(e.Kind) != kind || e.Payer != payer || e.Amount != amount || e.Fee != fee || e.EntryID != id:
			res.Mismatched++
			res.problem("entry %d for %s %s: kind %s payer %s amount %d fee %d; the run expected entry %d, %s payer %s amount %d fee %d",
				id, m, o, kind, payer, amount, fee, e.EntryID, e.Kind, e.Payer, e.Amount, e.Fee)
		}
		if ok {
			seen[k] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for k, e := range exp {
		if !seen[k] {
			res.Missing++
			res.problem("%s %s was answered 2xx (entry %d) but has no entry written by this run", k.merchant, k.order, e.EntryID)
		}
	}

	// Postings: complete (posting_count of them) and balanced per currency.
	rows, err = db.Query(ctx, `
		WITH per_currency AS (
			SELECT p.entry_id, count(*) AS n, sum(p.amount::numeric) AS total
			FROM postings p JOIN accounts a ON a.id = p.account_id
			WHERE p.entry_id > $1
			GROUP BY p.entry_id, a.currency
		), per_entry AS (
			SELECT entry_id, sum(n) AS n, bool_and(total = 0) AS balanced FROM per_currency GROUP BY entry_id
		)
		SELECT e.id, coalesce(t.n, 0), coalesce(t.balanced, false)
		FROM entries e LEFT JOIN per_entry t ON t.entry_id = e.id
		WHERE e.id > $1 AND (t.entry_id IS NULL OR t.n <> e.posting_count OR NOT t.balanced)`, before.LastID)
	if err != nil {
		return nil, fmt.Errorf("ledger check: %w", err)
	}
	for rows.Next() {
		var id, n int64
		var balanced bool
		if err := rows.Scan(&id, &n, &balanced); err != nil {
			return nil, err
		}
		res.Unbalanced++
		res.problem("entry %d: %d postings, balanced %t", id, n, balanced)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	// Balances: what each account should have moved by.
	wantDelta := map[string]int64{}
	for _, c := range codes {
		wantDelta[c] = 0
	}
	for _, e := range want {
		switch e.Kind {
		case ledger.KindPayment:
			wantDelta[ledger.MerchantAccount(e.Merchant)] += e.Amount - e.Fee
			wantDelta[ledger.FeesAccount] += e.Fee
			wantDelta[ledger.UserAccount(e.Payer)] -= e.Amount
		case ledger.KindDeposit:
			wantDelta[ledger.UserAccount(e.Payer)] += e.Amount
		}
	}
	after, err := takeSnapshot(ctx, db, codes)
	if err != nil {
		return nil, err
	}
	posted := map[string]int64{}
	rows, err = db.Query(ctx, `
		SELECT a.code, a.type, sum(p.amount) FROM postings p JOIN accounts a ON a.id = p.account_id
		WHERE p.entry_id > $1 AND a.code = ANY($2) AND a.currency = 'CNY'
		GROUP BY a.code, a.type`, before.LastID, codes)
	if err != nil {
		return nil, fmt.Errorf("ledger check: %w", err)
	}
	for rows.Next() {
		var code, typ string
		var sum int64
		if err := rows.Scan(&code, &typ, &sum); err != nil {
			return nil, err
		}
		posted[code] = sum * ledger.NormalSign(ledger.AccountType(typ))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sorted := make([]string, 0, len(wantDelta))
	for c := range wantDelta {
		sorted = append(sorted, c)
	}
	sort.Strings(sorted)
	for _, code := range sorted {
		w := wantDelta[code]
		res.Accounts++
		got := after.Balances[code] - before.Balances[code]
		if got != w || posted[code] != w {
			res.BalanceDiff++
			res.problem("%s moved by %d in balances and %d in postings; the accepted requests account for %d", code, got, posted[code], w)
		}
	}
	res.Passed = res.Missing == 0 && res.Unexpected == 0 && res.Mismatched == 0 && res.Unbalanced == 0 && res.BalanceDiff == 0
	return res, nil
}
