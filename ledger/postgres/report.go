package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/ledger"
)

var _ ledger.Reports = (*Store)(nil)

// maxStatementPage caps one statement page.
const maxStatementPage = 1000

// snapshot runs f in a read-only REPEATABLE READ transaction: every query of
// one report sees the same committed state.
func (s *Store) snapshot(ctx context.Context, f func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return translate(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	return f(tx)
}

func headSeq(ctx context.Context, tx pgx.Tx) (int64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `SELECT seq FROM ledger_head`).Scan(&seq)
	return seq, translate(err)
}

// lastBefore returns the id of the last entry created at or before t
// (strictly before when strict), 0 if none.
func lastBefore(ctx context.Context, tx pgx.Tx, t time.Time, strict bool) (int64, error) {
	q := `SELECT id FROM entries WHERE created_at <= $1 ORDER BY created_at DESC, id DESC LIMIT 1`
	if strict {
		q = `SELECT id FROM entries WHERE created_at < $1 ORDER BY created_at DESC, id DESC LIMIT 1`
	}
	var id int64
	err := tx.QueryRow(ctx, q, t).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return id, translate(err)
}

// resolveAsOf turns asOf into the id of the last entry it includes.
func resolveAsOf(ctx context.Context, tx pgx.Tx, asOf ledger.AsOf, head int64) (int64, error) {
	switch {
	case asOf.Entry > 0:
		return min(asOf.Entry, head), nil
	case asOf.Time.IsZero():
		return head, nil
	}
	id, err := lastBefore(ctx, tx, asOf.Time, false)
	return min(id, head), err
}

// resolvePeriod turns p into the entry ids it covers, from..to (to < from: none).
func resolvePeriod(ctx context.Context, tx pgx.Tx, p ledger.Period, head int64) (from, to int64, err error) {
	if p.FromEntry > 0 || p.ToEntry > 0 {
		from, to = max(p.FromEntry, 1), p.ToEntry
		if to <= 0 || to > head {
			to = head
		}
		return from, to, nil
	}
	from, to = 1, head
	if !p.From.IsZero() {
		last, err := lastBefore(ctx, tx, p.From, true)
		if err != nil {
			return 0, 0, err
		}
		from = last + 1
	}
	if !p.To.IsZero() {
		if to, err = lastBefore(ctx, tx, p.To, true); err != nil {
			return 0, 0, err
		}
		to = min(to, head)
	}
	return from, to, nil
}

// TrialBalance implements ledger.Reports. The totals come from the postings;
// when asOf is the head and every merchant is included, the stored balances
// are compared with them in the same snapshot.
func (s *Store) TrialBalance(ctx context.Context, asOf ledger.AsOf, merchants []string) (ledger.TrialBalance, error) {
	s.blocksBestEffort(ctx)
	var tb ledger.TrialBalance
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		head, err := headSeq(ctx, tx)
		if err != nil {
			return err
		}
		if tb.AsOfEntry, err = resolveAsOf(ctx, tx, asOf, head); err != nil {
			return err
		}
		if tb.AsOfEntry > 0 {
			if err := tx.QueryRow(ctx, `SELECT created_at FROM entries WHERE id = $1`, tb.AsOfEntry).Scan(&tb.AsOfTime); err != nil {
				return fmt.Errorf("%w: entry %d below the head: %v", ledger.ErrIntegrity, tb.AsOfEntry, translate(err))
			}
			tb.AsOfTime = tb.AsOfTime.UTC()
		}
		check := merchants == nil && tb.AsOfEntry == head
		if merchants == nil {
			err = unscopedTotals(ctx, tx, &tb, check)
		} else {
			err = scopedTotals(ctx, tx, &tb, merchants)
		}
		if err != nil {
			return err
		}
		if err := totalTrialBalance(&tb); err != nil {
			return err
		}
		tb.CheckedBalances = check
		return nil
	})
	if err != nil {
		return ledger.TrialBalance{}, err
	}
	return tb, tb.Check()
}

// totalTrialBalance fills each account's balance and the per-currency totals,
// refusing sums that overflow int64.
func totalTrialBalance(tb *ledger.TrialBalance) error {
	byCur := map[string]*ledger.CurrencyTotal{}
	overflow := fmt.Errorf("%w: trial balance totals overflow int64", ledger.ErrIntegrity)
	for i := range tb.Accounts {
		a := &tb.Accounts[i]
		net, ok := ledger.AddBalance(a.Debit, -a.Credit)
		if !ok {
			return overflow
		}
		a.Balance = ledger.NormalSign(a.Type) * net
		t := byCur[a.Currency]
		if t == nil {
			t = &ledger.CurrencyTotal{Currency: a.Currency}
			byCur[a.Currency] = t
		}
		var ok1, ok2, ok3 bool
		t.Debit, ok1 = ledger.AddBalance(t.Debit, a.Debit)
		t.Credit, ok2 = ledger.AddBalance(t.Credit, a.Credit)
		ok3 = true
		if net > 0 {
			t.DebitBalances, ok3 = ledger.AddBalance(t.DebitBalances, net)
		} else {
			t.CreditBalances, ok3 = ledger.AddBalance(t.CreditBalances, -net)
		}
		if !ok1 || !ok2 || !ok3 {
			return overflow
		}
	}
	for _, t := range byCur {
		tb.Totals = append(tb.Totals, *t)
	}
	slices.SortFunc(tb.Totals, func(a, b ledger.CurrencyTotal) int {
		if a.Currency < b.Currency {
			return -1
		}
		if a.Currency > b.Currency {
			return 1
		}
		return 0
	})
	return nil
}

// unscopedTotals fills tb.Accounts through entry tb.AsOfEntry: each
// account's running totals below the last full block plus its postings above
// it. With check, the stored balances are read in the same query (the same
// snapshot) and every difference is recorded in tb.Mismatches.
func unscopedTotals(ctx context.Context, tx pgx.Tx, tb *ledger.TrialBalance, check bool) error {
	nb, err := fullBlocks(ctx, tx, tb.AsOfEntry)
	if err != nil {
		return err
	}
	// The accounts that moved in the last full block have their running
	// totals in that block's rows (one range scan); the others, in their
	// latest earlier row (one probe each, skipped for the first kind).
	rows, err := tx.Query(ctx, `WITH tail AS (
			SELECT account_id, coalesce(sum(amount) FILTER (WHERE amount > 0), 0) AS debit,
				coalesce(-sum(amount) FILTER (WHERE amount < 0), 0) AS credit
			FROM postings WHERE entry_id > $3::bigint * $2::bigint AND entry_id <= $1 GROUP BY account_id),
		last AS (SELECT account_id, debit, credit FROM posting_totals WHERE size = $2 AND block = $3 - 1)
		SELECT a.code, a.currency, a.type, coalesce(l.debit, c.debit) IS NOT NULL OR t.account_id IS NOT NULL,
			(coalesce(l.debit, c.debit, 0) + coalesce(t.debit, 0))::bigint, (coalesce(l.credit, c.credit, 0) + coalesce(t.credit, 0))::bigint,
			b.balance
		FROM accounts a
		LEFT JOIN last l ON l.account_id = a.id
		LEFT JOIN LATERAL (SELECT debit, credit FROM posting_totals pt
			WHERE l.account_id IS NULL AND pt.size = $2 AND pt.account_id = a.id AND pt.block < $3 - 1
			ORDER BY pt.block DESC LIMIT 1) c ON true
		LEFT JOIN tail t ON t.account_id = a.id
		LEFT JOIN balances b ON b.account_id = a.id
		ORDER BY a.code, a.currency`, tb.AsOfEntry, blockSize, nb)
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			a      ledger.AccountTotal
			typ    string
			posted bool
			stored *int64
		)
		if err := rows.Scan(&a.Account, &a.Currency, &typ, &posted, &a.Debit, &a.Credit, &stored); err != nil {
			return translate(err)
		}
		a.Type = ledger.AccountType(typ)
		var balance int64
		if posted {
			net, ok := ledger.AddBalance(a.Debit, -a.Credit)
			if !ok {
				return fmt.Errorf("%w: trial balance totals overflow int64", ledger.ErrIntegrity)
			}
			balance = ledger.NormalSign(a.Type) * net
			tb.Accounts = append(tb.Accounts, a)
		}
		switch {
		case !check:
		case stored == nil && posted:
			tb.Mismatches = append(tb.Mismatches, ledger.BalanceMismatch{Account: a.Account, Currency: a.Currency, Computed: balance})
		case stored != nil && *stored != balance:
			tb.Mismatches = append(tb.Mismatches, ledger.BalanceMismatch{Account: a.Account, Currency: a.Currency, Stored: *stored, Computed: balance})
		}
	}
	return translate(rows.Err())
}

// scopedTotals fills tb.Accounts from the postings of merchants' entries
// through tb.AsOfEntry (the running totals mix every merchant).
func scopedTotals(ctx context.Context, tx pgx.Tx, tb *ledger.TrialBalance, merchants []string) error {
	rows, err := tx.Query(ctx, `SELECT a.code, a.currency, a.type, t.debit, t.credit FROM (
			SELECT p.account_id, coalesce(sum(p.amount) FILTER (WHERE p.amount > 0), 0)::bigint AS debit,
				coalesce(-sum(p.amount) FILTER (WHERE p.amount < 0), 0)::bigint AS credit
			FROM postings p JOIN entries e ON e.id = p.entry_id
			WHERE p.entry_id <= $1 AND e.merchant_id = ANY($2) GROUP BY p.account_id) t
		JOIN accounts a ON a.id = t.account_id ORDER BY a.code, a.currency`, tb.AsOfEntry, merchants)
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a ledger.AccountTotal
		var typ string
		if err := rows.Scan(&a.Account, &a.Currency, &typ, &a.Debit, &a.Credit); err != nil {
			return translate(err)
		}
		a.Type = ledger.AccountType(typ)
		tb.Accounts = append(tb.Accounts, a)
	}
	return translate(rows.Err())
}

// Statement implements ledger.Reports.
func (s *Store) Statement(ctx context.Context, q ledger.StatementQuery) (ledger.Statement, error) {
	if !ledger.AccountVisible(q.Account, q.Merchants) {
		return ledger.Statement{}, ledger.ErrNotFound
	}
	limit := q.Limit
	if limit <= 0 || limit > maxStatementPage {
		limit = maxStatementPage
	}
	if q.After == nil {
		s.blocksBestEffort(ctx)
	}
	st := ledger.Statement{Account: q.Account, Currency: q.Currency}
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		var accountID int64
		var typ string
		if err := tx.QueryRow(ctx, `SELECT id, type FROM accounts WHERE code = $1 AND currency = $2`, q.Account, q.Currency).
			Scan(&accountID, &typ); err != nil {
			return translate(err)
		}
		st.Type = ledger.AccountType(typ)
		sign := ledger.NormalSign(st.Type)
		var pos ledger.StatementPosition
		if q.After != nil {
			pos = *q.After
			if pos.AccountID != accountID {
				return fmt.Errorf("%w: cursor is for another account", ledger.ErrInvalidEntry)
			}
		} else {
			head, err := headSeq(ctx, tx)
			if err != nil {
				return err
			}
			from, to, err := resolvePeriod(ctx, tx, q.Period, head)
			if err != nil {
				return err
			}
			opening, err := accountNetThrough(ctx, tx, accountID, from-1)
			if err != nil {
				return err
			}
			closing, err := accountNetThrough(ctx, tx, accountID, max(to, from-1))
			if err != nil {
				return err
			}
			pos = ledger.StatementPosition{
				AccountID: accountID, FromEntry: from, ToEntry: to,
				Opening: sign * opening, Closing: sign * closing,
				AfterEntry: from - 1, AfterSeq: 1<<31 - 1, Running: sign * opening,
			}
		}
		st.FromEntry, st.ToEntry, st.Opening, st.Closing = pos.FromEntry, pos.ToEntry, pos.Opening, pos.Closing
		// The page of postings first (an index-only range scan), then their
		// entries by id: the planner cannot wander the whole entries table.
		rows, err := tx.Query(ctx, `SELECT p.entry_id, p.seq, p.amount, e.created_at, e.kind, e.merchant_id, e.order_id
			FROM (SELECT entry_id, seq, amount FROM postings
				WHERE account_id = $1 AND entry_id <= $2 AND entry_id >= $3 AND (entry_id, seq) > ($3, $4)
				ORDER BY entry_id, seq LIMIT $5) p
			JOIN entries e ON e.id = p.entry_id
			ORDER BY p.entry_id, p.seq`, accountID, pos.ToEntry, pos.AfterEntry, pos.AfterSeq, limit+1)
		if err != nil {
			return translate(err)
		}
		running := pos.Running
		for rows.Next() {
			var l ledger.StatementLine
			var amount int64
			var kind string
			if err := rows.Scan(&l.EntryID, &l.Seq, &amount, &l.CreatedAt, &kind, &l.Merchant, &l.OrderID); err != nil {
				rows.Close()
				return translate(err)
			}
			if len(st.Lines) == limit {
				rows.Close()
				last := st.Lines[len(st.Lines)-1]
				next := pos
				next.AfterEntry, next.AfterSeq, next.Running = last.EntryID, last.Seq, last.Balance
				st.Next = &next
				break
			}
			l.Kind, l.CreatedAt = ledger.Kind(kind), l.CreatedAt.UTC()
			if amount > 0 {
				l.Debit = amount
			} else {
				l.Credit = -amount
			}
			var ok bool
			if running, ok = ledger.AddBalance(running, sign*amount); !ok {
				rows.Close()
				return fmt.Errorf("%w: running balance overflows", ledger.ErrIntegrity)
			}
			l.Balance = running
			st.Lines = append(st.Lines, l)
		}
		if err := rows.Err(); err != nil {
			return translate(err)
		}
		if st.Next == nil && running != pos.Closing {
			return fmt.Errorf("%w: statement of %s %s ends at %d, closing balance is %d", ledger.ErrIntegrity, q.Account, q.Currency, running, pos.Closing)
		}
		return nil
	})
	if err != nil {
		return ledger.Statement{}, err
	}
	return st, nil
}

// ExportRange implements ledger.Reports.
func (s *Store) ExportRange(ctx context.Context, q ledger.JournalQuery) (ledger.JournalPosition, int64, error) {
	var pos ledger.JournalPosition
	var n int64
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		if q.Resume != nil {
			pos = *q.Resume
		} else {
			head, err := headSeq(ctx, tx)
			if err != nil {
				return err
			}
			from, to, err := resolvePeriod(ctx, tx, q.Period, head)
			if err != nil {
				return err
			}
			pos = ledger.JournalPosition{FromEntry: from, ToEntry: to, AfterEntry: from - 1, AfterSeq: 1<<31 - 1}
		}
		var err error
		if q.Merchants == nil {
			err = tx.QueryRow(ctx, `SELECT count(*) FROM postings p
				WHERE p.entry_id <= $1 AND (p.entry_id, p.seq) > ($2, $3)`, pos.ToEntry, pos.AfterEntry, pos.AfterSeq).Scan(&n)
		} else {
			err = tx.QueryRow(ctx, `SELECT count(*) FROM postings p JOIN entries e ON e.id = p.entry_id
				WHERE p.entry_id <= $1 AND (p.entry_id, p.seq) > ($2, $3) AND e.merchant_id = ANY($4)`,
				pos.ToEntry, pos.AfterEntry, pos.AfterSeq, q.Merchants).Scan(&n)
		}
		return translate(err)
	})
	return pos, n, err
}

// Export implements ledger.Reports: one query whose rows are read off the
// connection as they arrive, so memory does not grow with the range. Rows
// come in binary and are decoded in place; an entry's text is decoded once
// for all its postings, and repeated names (kinds, merchants, accounts) are
// shared, up to maxInterned of them.
func (s *Store) Export(ctx context.Context, pos ledger.JournalPosition, merchants []string, emit func(ledger.JournalRow) error) error {
	const cols = `SELECT e.id, p.seq, e.created_at, e.kind, e.merchant_id, e.order_id, e.payer, e.description,
		a.code, a.currency, p.amount, e.hash
		FROM postings p JOIN entries e ON e.id = p.entry_id JOIN accounts a ON a.id = p.account_id
		WHERE p.entry_id <= $1 AND p.entry_id >= $2 AND (p.entry_id, p.seq) > ($2, $3)`
	var (
		rows pgx.Rows
		err  error
	)
	if merchants == nil {
		rows, err = s.pool.Query(ctx, cols+` ORDER BY p.entry_id, p.seq`, binaryResults, pos.ToEntry, pos.AfterEntry, pos.AfterSeq)
	} else {
		rows, err = s.pool.Query(ctx, cols+` AND e.merchant_id = ANY($4) ORDER BY p.entry_id, p.seq`,
			binaryResults, pos.ToEntry, pos.AfterEntry, pos.AfterSeq, merchants)
	}
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	names := interner{}
	r := ledger.JournalRow{EntryID: -1}
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != 12 || len(v[0]) != 8 || len(v[1]) != 4 || len(v[2]) != 8 || len(v[10]) != 8 {
			return fmt.Errorf("%w: export: a NULL or malformed column", ledger.ErrIntegrity)
		}
		if id := int64(binary.BigEndian.Uint64(v[0])); id != r.EntryID {
			r.EntryID = id
			r.CreatedAt = time.UnixMicro(int64(binary.BigEndian.Uint64(v[2])) + pgEpochMicros).UTC()
			r.Kind, r.Merchant = ledger.Kind(names.get(v[3])), names.get(v[4])
			r.OrderID, r.Payer, r.Description = string(v[5]), string(v[6]), string(v[7])
			copy(r.Hash[:], v[11])
		}
		r.Seq = int32(binary.BigEndian.Uint32(v[1]))
		r.Account, r.Currency = names.get(v[8]), names.get(v[9])
		r.Amount = int64(binary.BigEndian.Uint64(v[10]))
		if err := emit(r); err != nil {
			return err
		}
	}
	return translate(rows.Err())
}

// maxInterned bounds an interner: memory stays constant however many
// accounts a ledger has.
const maxInterned = 1 << 16

// interner returns one string for each distinct byte string it is given.
type interner map[string]string

func (n interner) get(b []byte) string {
	if s, ok := n[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if len(n) < maxInterned {
		n[s] = s
	}
	return s
}

// EntryEvidence implements ledger.Reports.
func (s *Store) EntryEvidence(ctx context.Context, id int64, merchants []string) (ledger.EntryEvidence, error) {
	var ee ledger.EntryEvidence
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		var (
			kind           string
			fp, hash, prev []byte
			bodySum        []byte
		)
		err := tx.QueryRow(ctx, `SELECT id, kind, merchant_id, order_id, coalesce(refund_id, ''), payer, currency, amount, fee, description,
			fingerprint, hash, prev_hash, created_at, evidence_scheme, evidence_key_id, authorization_header,
			evidence_method, evidence_target, evidence_body, evidence_body_sha256
			FROM entries WHERE id = $1`, id).Scan(&ee.ID, &kind, &ee.Merchant, &ee.OrderID, &ee.RefundID, &ee.Payer, &ee.Currency,
			&ee.Amount, &ee.Fee, &ee.Description, &fp, &hash, &prev, &ee.CreatedAt, &ee.Evidence.Scheme,
			&ee.Evidence.KeyID, &ee.Evidence.Authorization, &ee.Evidence.Method, &ee.Evidence.Target,
			&ee.Evidence.Body, &bodySum)
		if err != nil {
			return translate(err)
		}
		// Out of scope answers exactly like a missing entry.
		if merchants != nil && !slices.Contains(merchants, ee.Merchant) {
			return ledger.ErrNotFound
		}
		ee.Kind, ee.CreatedAt = ledger.Kind(kind), ee.CreatedAt.UTC()
		copy(ee.Fingerprint[:], fp)
		copy(ee.Hash[:], hash)
		copy(ee.PrevHash[:], prev)
		rows, err := tx.Query(ctx, `SELECT a.code, a.currency, p.amount FROM postings p
			JOIN accounts a ON a.id = p.account_id WHERE p.entry_id = $1 ORDER BY p.seq`, id)
		if err != nil {
			return translate(err)
		}
		ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Posting, error) {
			var p ledger.Posting
			err := r.Scan(&p.Account, &p.Currency, &p.Amount)
			return p, err
		})
		ee.Postings = ps
		return translate(err)
	})
	if err != nil {
		return ledger.EntryEvidence{}, err
	}
	return ee, nil
}
