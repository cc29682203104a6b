package postgres

import (
	"context"
	"fmt"
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

type orderKey struct{ merchant, order string }

// item is one request of a batch being decided.
type item struct {
	req      *request
	primary  int // index of the first request with the same order key, or -1
	rec      ledger.Recorded
	err      error
	accepted bool
}

const (
	sqlLockHead = `SELECT seq, hash FROM ledger_head FOR UPDATE`

	sqlExisting = `SELECT e.id, e.kind, e.merchant_id, e.order_id, e.payer, e.currency, e.amount, e.fee,
		e.description, e.fingerprint, e.hash, e.created_at
	FROM entries e JOIN unnest($1::text[], $2::text[]) AS u(m, o) ON e.merchant_id = u.m AND e.order_id = u.o`

	sqlEnsureAccounts = `WITH ins AS (
		INSERT INTO accounts (code, currency, type, allow_negative)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[])
		ON CONFLICT (code, currency) DO NOTHING
		RETURNING id, allow_negative)
	INSERT INTO balances (account_id, balance, allow_negative) SELECT id, 0, allow_negative FROM ins`

	sqlBalancesByCode = `SELECT a.id, a.code, a.currency, a.type, a.allow_negative, b.balance
	FROM accounts a
	JOIN unnest($1::text[], $2::text[]) AS u(code, currency) ON a.code = u.code AND a.currency = u.currency
	JOIN balances b ON b.account_id = a.id
	ORDER BY a.id FOR UPDATE OF b`

	sqlBalancesByID = `SELECT a.id, a.code, a.currency, a.type, a.allow_negative, b.balance
	FROM balances b JOIN accounts a ON a.id = b.account_id
	WHERE b.account_id = ANY($1::bigint[])
	ORDER BY a.id FOR UPDATE OF b`

	sqlInsertEntries = `INSERT INTO entries (id, kind, merchant_id, order_id, payer, currency, amount, fee,
		description, fingerprint, prev_hash, hash, created_at, evidence_scheme, evidence_key_id,
		authorization_header, evidence_method, evidence_target, evidence_body, evidence_body_sha256, posting_count)
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
		$7::bigint[], $8::bigint[], $9::text[], $10::bytea[], $11::bytea[], $12::bytea[],
		$13::timestamptz[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
		$19::bytea[], $20::bytea[], $21::int[])`

	sqlInsertPostings = `INSERT INTO postings (entry_id, seq, entry_postings, account_id, amount)
	SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], $4::bigint[], $5::bigint[])`

	sqlUpdateBalances = `UPDATE balances b SET balance = b.balance + d.delta
	FROM unnest($1::bigint[], $2::bigint[]) AS d(id, delta) WHERE b.account_id = d.id`

	sqlUpdateHead = `UPDATE ledger_head SET seq = $1, hash = $2`
)

// writeBatch writes reqs in one transaction and returns each request's
// result. A non-nil error means the transaction did not commit (or, at stage
// committing, may or may not have) and no result is valid.
func (s *Store) writeBatch(ctx context.Context, reqs []*request) ([]result, stage, error) {
	items := make([]item, len(reqs))
	first := make(map[orderKey]int, len(reqs))
	var primaries []int
	for i, r := range reqs {
		items[i] = item{req: r, primary: -1}
		k := orderKey{r.e.Merchant, r.e.OrderID}
		if p, ok := first[k]; ok {
			items[i].primary = p
			continue
		}
		first[k] = i
		primaries = append(primaries, i)
	}

	// Accounts the batch touches; those not cached are created if missing.
	var need []accountKey
	seen := make(map[accountKey]bool)
	allCached := true
	for _, i := range primaries {
		for _, p := range reqs[i].e.Postings {
			k := accountKey{p.Account, p.Currency}
			if seen[k] {
				continue
			}
			seen[k] = true
			need = append(need, k)
			if _, ok := s.accounts[k]; !ok {
				allCached = false
			}
		}
	}

	start := time.Now()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, beforeCommit, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op

	var (
		seq      int64
		prev     []byte
		existing = make(map[orderKey]ledger.Recorded)
		balances = make(map[accountKey]int64, len(need))
		fresh    = make(map[accountKey]account)
	)
	b := &pgx.Batch{}
	b.Queue(sqlLockHead).QueryRow(func(row pgx.Row) error { return row.Scan(&seq, &prev) })
	ms, ords := make([]string, len(primaries)), make([]string, len(primaries))
	for j, i := range primaries {
		ms[j], ords[j] = reqs[i].e.Merchant, reqs[i].e.OrderID
	}
	b.Queue(sqlExisting, ms, ords).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			rec, err := scanRecorded(rows)
			if err != nil {
				return err
			}
			existing[orderKey{rec.Merchant, rec.OrderID}] = rec
		}
		return rows.Err()
	})
	scanBalances := func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				a   account
				k   accountKey
				typ string
				bal int64
			)
			if err := rows.Scan(&a.id, &k.code, &k.currency, &typ, &a.allowNegative, &bal); err != nil {
				return err
			}
			a.sign = ledger.NormalSign(ledger.AccountType(typ))
			fresh[k] = a
			balances[k] = bal
		}
		return rows.Err()
	}
	if allCached {
		ids := make([]int64, len(need))
		for j, k := range need {
			ids[j] = s.accounts[k].id
		}
		b.Queue(sqlBalancesByID, ids).Query(scanBalances)
	} else {
		var codes, curs, types []string
		var neg []bool
		for _, k := range need {
			if _, ok := s.accounts[k]; ok {
				continue
			}
			typ, allow, err := ledger.Classify(k.code)
			if err != nil { // Validate already classified every posting
				return nil, beforeCommit, err
			}
			codes, curs, types, neg = append(codes, k.code), append(curs, k.currency), append(types, string(typ)), append(neg, allow)
		}
		b.Queue(sqlEnsureAccounts, codes, curs, types, neg)
		// Fresh slices: queued arguments are encoded only when the batch is sent.
		allCodes, allCurs := make([]string, len(need)), make([]string, len(need))
		for j, k := range need {
			allCodes[j], allCurs[j] = k.code, k.currency
		}
		b.Queue(sqlBalancesByCode, allCodes, allCurs).Query(scanBalances)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, beforeCommit, err
	}
	readDone := time.Now()
	if len(prev) != 32 {
		return nil, beforeCommit, internalf("head hash has %d bytes", len(prev))
	}
	for _, k := range need {
		if _, ok := fresh[k]; !ok {
			return nil, beforeCommit, internalf("account %s/%s has no balance row", k.code, k.currency)
		}
	}

	// Decide each primary in order against the in-memory balances.
	deltas := make(map[int64]int64)
	var accepted []int
	for _, i := range primaries {
		it := &items[i]
		e := &it.req.e
		if rec, ok := existing[orderKey{e.Merchant, e.OrderID}]; ok {
			if rec.Fingerprint == it.req.fp {
				rec.Replayed = true
				it.rec = rec
			} else {
				it.err = fmt.Errorf("%w: merchant %s order %s", ledger.ErrOrderConflict, e.Merchant, e.OrderID)
			}
			continue
		}
		next := make(map[accountKey]int64, len(e.Postings))
		for _, p := range e.Postings {
			k := accountKey{p.Account, p.Currency}
			a := fresh[k]
			cur, ok := next[k]
			if !ok {
				cur = balances[k]
			}
			nb, ok := ledger.AddBalance(cur, a.sign*p.Amount)
			if !ok {
				it.err = fmt.Errorf("%w: balance of %s overflows", ledger.ErrInvalidEntry, p.Account)
				break
			}
			next[k] = nb
		}
		if it.err != nil {
			continue
		}
		for k, nb := range next {
			if nb < 0 && !fresh[k].allowNegative {
				it.err = fmt.Errorf("%w: %s %s", ledger.ErrInsufficientFunds, k.code, k.currency)
				break
			}
		}
		if it.err != nil {
			continue
		}
		for k, nb := range next {
			deltas[fresh[k].id] += nb - balances[k]
			balances[k] = nb
		}
		it.accepted = true
		accepted = append(accepted, i)
	}

	if len(accepted) > 0 {
		var chain [32]byte
		copy(chain[:], prev)
		created := ledger.CanonicalTime(s.opts.Now())
		n := len(accepted)
		var (
			ids, amounts, fees        = make([]int64, n), make([]int64, n), make([]int64, n)
			kinds, merchants, orders  = make([]string, n), make([]string, n), make([]string, n)
			payers, currencies, descs = make([]string, n), make([]string, n), make([]string, n)
			fps, prevs, hashes        = make([][]byte, n), make([][]byte, n), make([][]byte, n)
			bodies, bodySums, counts  = make([][]byte, n), make([][]byte, n), make([]int32, n)
			times                     = make([]time.Time, n)
			schemes, keyIDs, auths    = make([]string, n), make([]string, n), make([]string, n)
			methods, targets          = make([]string, n), make([]string, n)
			pEntry, pAcct, pAmt       []int64
			pSeq, pCount              []int32
		)
		for j, i := range accepted {
			it := &items[i]
			e, r := &it.req.e, it.req
			seq++
			rec := ledger.Recorded{
				ID: seq, Kind: e.Kind, Merchant: e.Merchant, OrderID: e.OrderID, Payer: e.Payer,
				Currency: e.Currency, Amount: e.Amount, Fee: e.Fee, Description: e.Description,
				Fingerprint: r.fp, CreatedAt: created,
			}
			prevHash := chain
			chain = ledger.ChainHash(chain, rec, e.Postings, r.evidence)
			rec.Hash = chain
			it.rec = rec

			ids[j], kinds[j], merchants[j], orders[j], payers[j], currencies[j] = seq, string(e.Kind), e.Merchant, e.OrderID, e.Payer, e.Currency
			amounts[j], fees[j], descs[j] = e.Amount, e.Fee, e.Description
			fps[j], prevs[j], hashes[j], times[j] = r.fp[:], prevHash[:], rec.Hash[:], created
			ev := &e.Evidence
			schemes[j], keyIDs[j], auths[j], methods[j], targets[j] = ev.Scheme, ev.KeyID, ev.Authorization, ev.Method, ev.Target
			bodies[j], bodySums[j], counts[j] = nonNil(ev.Body), r.bodySum[:], int32(len(e.Postings))
			for ps, p := range e.Postings {
				pEntry = append(pEntry, seq)
				pSeq = append(pSeq, int32(ps))
				pCount = append(pCount, int32(len(e.Postings)))
				pAcct = append(pAcct, fresh[accountKey{p.Account, p.Currency}].id)
				pAmt = append(pAmt, p.Amount)
			}
		}
		dIDs, dAmts := make([]int64, 0, len(deltas)), make([]int64, 0, len(deltas))
		for id, d := range deltas {
			if d != 0 {
				dIDs, dAmts = append(dIDs, id), append(dAmts, d)
			}
		}
		b := &pgx.Batch{}
		b.Queue(sqlInsertEntries, ids, kinds, merchants, orders, payers, currencies, amounts, fees, descs,
			fps, prevs, hashes, times, schemes, keyIDs, auths, methods, targets, bodies, bodySums, counts)
		b.Queue(sqlInsertPostings, pEntry, pSeq, pCount, pAcct, pAmt)
		if len(dIDs) > 0 {
			b.Queue(sqlUpdateBalances, dIDs, dAmts)
		}
		b.Queue(sqlUpdateHead, seq, chain[:]).Exec(func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() != 1 {
				return internalf("ledger_head has %d rows", ct.RowsAffected())
			}
			return nil
		})
		writeStart := time.Now()
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, beforeCommit, err
		}
		commitStart := time.Now()
		if err := tx.Commit(ctx); err != nil {
			return nil, committing, err
		}
		commitTook := time.Since(commitStart)
		if s.opts.Observer != nil {
			s.opts.Observer.BatchCommitted(n, commitTook)
		}
		s.opts.Logger.Debug().Int("batch", len(reqs)).Int("written", n).
			Float64("read_ms", millis(readDone.Sub(start))).Float64("decide_ms", millis(writeStart.Sub(readDone))).
			Float64("write_ms", millis(commitStart.Sub(writeStart))).Float64("commit_ms", millis(commitTook)).
			Msg("ledger: batch committed")
		// Only now are the ids of accounts created by this batch real.
		for k, a := range fresh {
			s.accounts[k] = a
		}
	} else if err := tx.Rollback(ctx); err != nil {
		return nil, beforeCommit, err
	}

	out := make([]result, len(items))
	for i := range items {
		it := &items[i]
		if it.primary < 0 {
			out[i] = result{rec: it.rec, err: it.err}
			continue
		}
		p := &items[it.primary]
		switch {
		case it.req.fp != p.req.fp:
			out[i] = result{err: fmt.Errorf("%w: merchant %s order %s", ledger.ErrOrderConflict, it.req.e.Merchant, it.req.e.OrderID)}
		case p.err != nil:
			out[i] = result{err: p.err}
		default:
			rec := p.rec
			rec.Replayed = true
			out[i] = result{rec: rec}
		}
	}
	return out, committing, nil
}

// nonNil keeps an empty body from being sent as SQL NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// scanRecorded scans the columns listed in sqlExisting.
func scanRecorded(row pgx.Row) (ledger.Recorded, error) {
	var (
		r        ledger.Recorded
		kind     string
		fp, hash []byte
	)
	if err := row.Scan(&r.ID, &kind, &r.Merchant, &r.OrderID, &r.Payer, &r.Currency, &r.Amount, &r.Fee,
		&r.Description, &fp, &hash, &r.CreatedAt); err != nil {
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
