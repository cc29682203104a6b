package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/quillpay/quill/ledger"
)

type stage int

const (
	beforeCommit stage = iota
	committing
)

// The write path's statements. Each is index-driven by construction: a key
// list arrives as an array and every row is found through a LATERAL … LIMIT 1
// subquery on a unique key (which the planner cannot turn into a hash join
// over a whole table) or through = ANY on a primary key, so a generic plan
// made without statistics still looks rows up by index and the cost of a
// batch does not grow with the ledger. TestWritePathPlans checks it.
const (
	sqlLockHead = `SELECT seq, hash FROM ledger_head FOR UPDATE`

	sqlExisting = `SELECT e.* FROM unnest($1::text[], $2::text[]) AS u(m, o)
	CROSS JOIN LATERAL (
		SELECT ` + recordedColumns + `
		FROM entries e WHERE e.merchant_id = u.m AND e.order_id = u.o AND e.refund_id IS NULL LIMIT 1) e`

	// The refunds already written under the batch's refund keys.
	sqlExistingRefunds = `SELECT e.* FROM unnest($1::text[], $2::text[]) AS u(m, r)
	CROSS JOIN LATERAL (
		SELECT ` + recordedColumns + `
		FROM entries e WHERE e.merchant_id = u.m AND e.refund_id = u.r AND e.refund_id IS NOT NULL LIMIT 1) e`

	// The payments the batch's refunds name, each with what its refunds so
	// far returned (read from entries_refund_seq_key alone). Read under the
	// head lock, so exact until the batch commits.
	sqlRefundTargets = `SELECT p.*, t.n, t.refunded, t.fees FROM unnest($1::text[], $2::text[]) AS u(m, o)
	CROSS JOIN LATERAL (
		SELECT ` + recordedColumns + `
		FROM entries e WHERE e.merchant_id = u.m AND e.order_id = u.o AND e.refund_id IS NULL LIMIT 1) p
	CROSS JOIN LATERAL (
		SELECT count(*)::int AS n, coalesce(sum(r.amount), 0)::bigint AS refunded, coalesce(sum(r.fee), 0)::bigint AS fees
		FROM entries r WHERE r.refund_of = p.id AND r.refund_of IS NOT NULL) t`

	sqlEnsureAccounts = `WITH ins AS (
		INSERT INTO accounts (code, currency, type, allow_negative)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[])
		ON CONFLICT (code, currency) DO NOTHING
		RETURNING id, allow_negative)
	INSERT INTO balances (account_id, balance, allow_negative) SELECT id, 0, allow_negative FROM ins`

	sqlBalancesByCode = `SELECT x.id, u.code, u.currency, x.type, x.allow_negative, x.balance
	FROM unnest($1::text[], $2::char(3)[]) AS u(code, currency)
	CROSS JOIN LATERAL (
		SELECT a.id, a.type, a.allow_negative, b.balance
		FROM accounts a JOIN balances b ON b.account_id = a.id
		WHERE a.code = u.code AND a.currency = u.currency
		LIMIT 1 FOR UPDATE OF b) x`

	// Row locks are taken under the chain-head lock, which every writer takes
	// first, so their order cannot deadlock; ORDER BY keeps it deterministic.
	sqlBalancesByID = `SELECT account_id, balance FROM balances WHERE account_id = ANY($1::bigint[])
	ORDER BY account_id FOR UPDATE`

	sqlInsertEntries = `INSERT INTO entries (id, kind, merchant_id, order_id, payer, currency, amount, fee,
		description, fingerprint, prev_hash, hash, created_at, evidence_scheme, evidence_key_id,
		authorization_header, evidence_method, evidence_target, evidence_body, evidence_body_sha256, posting_count,
		refund_id, refund_of, refund_seq)
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
		$7::bigint[], $8::bigint[], $9::text[], $10::bytea[], $11::bytea[], $12::bytea[],
		$13::timestamptz[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
		$19::bytea[], $20::bytea[], $21::int[], $22::text[], $23::bigint[], $24::int[])`

	sqlInsertPostings = `INSERT INTO postings (entry_id, seq, entry_postings, account_id, amount)
	SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], $4::bigint[], $5::bigint[])`

	// The = ANY on the primary key gives the planner an index path on
	// balances; without it the join with unnest could hash the whole table.
	sqlUpdateBalances = `UPDATE balances b SET balance = b.balance + d.delta
	FROM unnest($1::bigint[], $2::bigint[]) AS d(id, delta)
	WHERE b.account_id = ANY($1::bigint[]) AND b.account_id = d.id`

	sqlUpdateHead = `UPDATE ledger_head SET seq = $1, hash = $2`
)

// recordedColumns are the columns scanRecorded reads, from entries e.
const recordedColumns = `e.id, e.kind, e.merchant_id, e.order_id, coalesce(e.refund_id, '') AS refund_id, e.payer,
		e.currency, e.amount, e.fee, e.description, e.fingerprint, e.hash, e.created_at`

// writePathSQL lists every statement a batch may send, for TestWritePathPlans.
var writePathSQL = []string{
	sqlLockHead, sqlExisting, sqlExistingRefunds, sqlRefundTargets, sqlEnsureAccounts, sqlBalancesByCode,
	sqlBalancesByID, sqlInsertEntries, sqlInsertPostings, sqlUpdateBalances, sqlUpdateHead,
}

// writeBatch writes reqs in one transaction and returns each request's
// result: read what the batch needs under the head lock, decide (plan.go),
// write, commit. A non-nil error means the transaction did not commit (or, at
// stage committing, may or may not have) and no result is valid.
func (s *Store) writeBatch(ctx context.Context, reqs []*request) ([]result, stage, error) {
	k := keys(reqs)
	start := time.Now()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, beforeCommit, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op

	snap, err := s.read(ctx, tx, &k)
	if err != nil {
		return nil, beforeCommit, err
	}
	readDone := time.Now()
	p := decide(reqs, k, snap, s.opts.Now)
	if p.written() == 0 {
		if err := tx.Rollback(ctx); err != nil {
			return nil, beforeCommit, err
		}
		return p.results, committing, nil
	}
	writeStart := time.Now()
	if err := write(ctx, tx, &p); err != nil {
		return nil, beforeCommit, err
	}
	commitStart := time.Now()
	if err := tx.Commit(ctx); err != nil {
		return nil, committing, err
	}
	commitTook := time.Since(commitStart)
	if s.opts.Observer != nil {
		s.opts.Observer.BatchCommitted(p.written(), commitTook)
	}
	s.opts.Logger.Debug().Int("batch", len(reqs)).Int("written", p.written()).
		Float64("read_ms", millis(readDone.Sub(start))).Float64("decide_ms", millis(writeStart.Sub(readDone))).
		Float64("write_ms", millis(commitStart.Sub(writeStart))).Float64("commit_ms", millis(commitTook)).
		Msg("ledger: batch committed")
	// Only now are the ids of accounts created by this batch real.
	for _, key := range k.accounts {
		s.accounts[key] = snap.accounts[key]
	}
	return p.results, committing, nil
}

// read locks the chain head, looks up the batch's order and refund keys,
// creates the accounts not known to exist and locks the balances the batch
// touches. That is one round trip, or two when the batch holds refunds: the
// accounts a refund posts to (its payer's wallet) are known only once its
// payment has been read under the head lock; read adds them to k.accounts.
func (s *Store) read(ctx context.Context, tx pgx.Tx, k *batchKeys) (snapshot, error) {
	snap := snapshot{
		existing: make(map[orderKey]ledger.Recorded),
		accounts: make(map[accountKey]account, len(k.accounts)),
		balances: make(map[accountKey]int64, len(k.accounts)),
	}
	var head []byte
	b := &pgx.Batch{}
	b.Queue(sqlLockHead).QueryRow(func(row pgx.Row) error { return row.Scan(&snap.headSeq, &head) })
	existing := func(rows pgx.Rows) error {
		for rows.Next() {
			rec, err := scanRecorded(rows)
			if err != nil {
				return err
			}
			snap.existing[recordKey(rec)] = rec
		}
		return rows.Err()
	}
	ms, ids := splitKeys(k.orders, func(o orderKey) string { return o.order })
	b.Queue(sqlExisting, ms, ids).Query(existing)
	if len(k.refunds) > 0 {
		ms, ids := splitKeys(k.refunds, func(o orderKey) string { return o.refund })
		b.Queue(sqlExistingRefunds, ms, ids).Query(existing)
	}
	if len(k.targets) > 0 {
		snap.targets = make(map[orderKey]ledger.Refundable, len(k.targets))
		ms, ids := splitKeys(k.targets, func(o orderKey) string { return o.order })
		b.Queue(sqlRefundTargets, ms, ids).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var t ledger.Refundable
				var n int32
				rec, err := scanRecorded(rows, &n, &t.Refunded, &t.RefundedFee)
				if err != nil {
					return err
				}
				t.Payment, t.Refunds = rec, int(n)
				snap.targets[orderKey{merchant: rec.Merchant, order: rec.OrderID}] = t
			}
			return rows.Err()
		})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return snapshot{}, err
		}
		b = &pgx.Batch{}
		seen := make(map[accountKey]bool, len(k.accounts))
		for _, key := range k.accounts {
			seen[key] = true
		}
		for _, tk := range k.targets {
			t, ok := snap.targets[tk]
			if !ok || t.Payment.Kind != ledger.KindPayment {
				continue // refused in decide: no account of it is read, none created
			}
			p := t.Payment
			codes := []string{ledger.UserAccount(p.Payer), ledger.MerchantAccount(p.Merchant)}
			if p.Fee > 0 {
				codes = append(codes, ledger.FeesAccount)
			}
			for _, code := range codes {
				if key := (accountKey{code, p.Currency}); !seen[key] {
					seen[key] = true
					k.accounts = append(k.accounts, key)
				}
			}
		}
	}

	var missing []accountKey
	for _, key := range k.accounts {
		if _, ok := s.accounts[key]; !ok {
			missing = append(missing, key)
		}
	}
	if len(missing) == 0 {
		ids := make([]int64, len(k.accounts))
		byID := make(map[int64]accountKey, len(k.accounts))
		for j, key := range k.accounts {
			ids[j] = s.accounts[key].id
			byID[ids[j]] = key
		}
		b.Queue(sqlBalancesByID, ids).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id, bal int64
				if err := rows.Scan(&id, &bal); err != nil {
					return err
				}
				key := byID[id]
				snap.accounts[key], snap.balances[key] = s.accounts[key], bal
			}
			return rows.Err()
		})
	} else {
		var codes, curs, types []string
		var neg []bool
		for _, key := range missing {
			typ, allow, err := ledger.Classify(key.code)
			if err != nil { // Validate already classified every posting
				return snapshot{}, err
			}
			codes, curs, types, neg = append(codes, key.code), append(curs, key.currency), append(types, string(typ)), append(neg, allow)
		}
		b.Queue(sqlEnsureAccounts, codes, curs, types, neg)
		allCodes, allCurs := make([]string, len(k.accounts)), make([]string, len(k.accounts))
		for j, key := range k.accounts {
			allCodes[j], allCurs[j] = key.code, key.currency
		}
		b.Queue(sqlBalancesByCode, allCodes, allCurs).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					a   account
					key accountKey
					typ string
					bal int64
				)
				if err := rows.Scan(&a.id, &key.code, &key.currency, &typ, &a.allowNegative, &bal); err != nil {
					return err
				}
				a.sign = ledger.NormalSign(ledger.AccountType(typ))
				snap.accounts[key], snap.balances[key] = a, bal
			}
			return rows.Err()
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return snapshot{}, err
	}
	if len(head) != 32 {
		return snapshot{}, internalf("head hash has %d bytes", len(head))
	}
	copy(snap.headHash[:], head)
	for _, key := range k.accounts {
		if _, ok := snap.accounts[key]; !ok {
			return snapshot{}, internalf("account %s/%s has no balance row", key.code, key.currency)
		}
	}
	return snap, nil
}

// splitKeys returns the merchants and ids (id(key)) of keys as two arrays.
func splitKeys(keys []orderKey, id func(orderKey) string) ([]string, []string) {
	ms, ids := make([]string, len(keys)), make([]string, len(keys))
	for j, o := range keys {
		ms[j], ids[j] = o.merchant, id(o)
	}
	return ms, ids
}

// write sends the plan's entries, postings, balance deltas and new head in
// one pipelined round trip.
func write(ctx context.Context, tx pgx.Tx, p *plan) error {
	b := &pgx.Batch{}
	b.Queue(sqlInsertEntries, p.entries.args()...)
	b.Queue(sqlInsertPostings, p.postings.args()...)
	if len(p.deltaIDs) > 0 {
		b.Queue(sqlUpdateBalances, p.deltaIDs, p.deltas)
	}
	b.Queue(sqlUpdateHead, p.headSeq, p.headHash[:]).Exec(func(ct pgconn.CommandTag) error {
		if ct.RowsAffected() != 1 {
			return internalf("ledger_head has %d rows", ct.RowsAffected())
		}
		return nil
	})
	return tx.SendBatch(ctx, b).Close()
}

// scanRecorded scans recordedColumns, then into extra.
func scanRecorded(row pgx.Row, extra ...any) (ledger.Recorded, error) {
	var (
		r        ledger.Recorded
		kind     string
		fp, hash []byte
	)
	if err := row.Scan(append([]any{&r.ID, &kind, &r.Merchant, &r.OrderID, &r.RefundID, &r.Payer, &r.Currency, &r.Amount, &r.Fee,
		&r.Description, &fp, &hash, &r.CreatedAt}, extra...)...); err != nil {
		return ledger.Recorded{}, err
	}
	if len(fp) != 32 || len(hash) != 32 {
		return ledger.Recorded{}, internalf("entry %d: bad digest length", r.ID)
	}
	r.Kind = ledger.Kind(kind)
	copy(r.Fingerprint[:], fp)
	copy(r.Hash[:], hash)
	r.CreatedAt = r.CreatedAt.UTC()
	return r, nil
}

// millis is a duration in milliseconds, the unit of every *_ms log field.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
