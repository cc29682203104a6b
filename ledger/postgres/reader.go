package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/ledger"
)

// The read path of a request: each looks one row up by a unique key, which a
// generic plan does by index whatever the statistics (TestWritePathPlans).
const (
	sqlEntry = `SELECT ` + recordedColumns + ` FROM entries e
		WHERE e.merchant_id = $1 AND e.order_id = $2 AND e.refund_id IS NULL`
	sqlRefund = `SELECT ` + recordedColumns + ` FROM entries e
		WHERE e.merchant_id = $1 AND e.refund_id = $2 AND e.refund_id IS NOT NULL`
	sqlBalance = `SELECT b.balance FROM accounts a
		CROSS JOIN LATERAL (SELECT balance FROM balances b WHERE b.account_id = a.id LIMIT 1) b
		WHERE a.code = $1 AND a.currency = $2`
)

// readPathSQL lists the statements a request's reads send.
var readPathSQL = []string{sqlEntry, sqlRefund, sqlBalance}

// Entry returns the entry of merchant's order id, or ledger.ErrNotFound.
func (s *Store) Entry(ctx context.Context, merchant, orderID string) (ledger.Recorded, error) {
	row := s.pool.QueryRow(ctx, sqlEntry, merchant, orderID)
	r, err := scanRecorded(row)
	if err != nil {
		return ledger.Recorded{}, translate(err)
	}
	return r, nil
}

// Refund returns merchant's refund refundID, or ledger.ErrNotFound.
func (s *Store) Refund(ctx context.Context, merchant, refundID string) (ledger.Recorded, error) {
	r, err := scanRecorded(s.pool.QueryRow(ctx, sqlRefund, merchant, refundID))
	if err != nil {
		return ledger.Recorded{}, translate(err)
	}
	return r, nil
}

// Balance returns the balance of account in currency in its normal sign, or
// ledger.ErrNotFound if the account was never used.
func (s *Store) Balance(ctx context.Context, account, currency string) (int64, error) {
	var bal int64
	err := s.pool.QueryRow(ctx, sqlBalance, account, currency).Scan(&bal)
	if err != nil {
		return 0, translate(err)
	}
	return bal, nil
}

// verifyChunk is how many entries VerifyChain reads at a time.
const verifyChunk = 1000

// VerifyChain recomputes the hash chain over entries fromID..toID (toID <= 0
// means up to the head) from the stored rows — content, postings and evidence
// — and checks each entry's fingerprint, body digest, prev_hash linkage and
// hash, that ids have no gaps, and, when the range reaches the head, that the
// head matches the last entry. It reads one consistent snapshot in constant
// memory and returns an error wrapping ledger.ErrIntegrity naming the first
// bad entry.
func (s *Store) VerifyChain(ctx context.Context, fromID, toID int64) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return translate(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only

	var (
		headSeq  int64
		headHash []byte
		maxID    int64
	)
	if err := tx.QueryRow(ctx, `SELECT h.seq, h.hash, coalesce((SELECT max(id) FROM entries), 0) FROM ledger_head h`).
		Scan(&headSeq, &headHash, &maxID); err != nil {
		return translate(err)
	}
	if maxID != headSeq {
		return fmt.Errorf("%w: head is at %d but the last entry is %d", ledger.ErrIntegrity, headSeq, maxID)
	}
	if fromID < 1 {
		fromID = 1
	}
	if toID <= 0 || toID > headSeq {
		toID = headSeq
	}
	if fromID > toID {
		return nil
	}
	prev := ledger.GenesisHash
	if fromID > 1 {
		var h []byte
		if err := tx.QueryRow(ctx, `SELECT hash FROM entries WHERE id = $1`, fromID-1).Scan(&h); err != nil {
			return fmt.Errorf("%w: entry %d before the range: %v", ledger.ErrIntegrity, fromID-1, translate(err))
		}
		copy(prev[:], h)
	}
	for lo := fromID; lo <= toID; lo += verifyChunk {
		hi := min(lo+verifyChunk-1, toID)
		if prev, err = verifyRange(ctx, tx, lo, hi, prev); err != nil {
			return err
		}
	}
	if toID == headSeq && string(prev[:]) != string(headHash) {
		return fmt.Errorf("%w: head hash does not match entry %d", ledger.ErrIntegrity, headSeq)
	}
	return nil
}

type storedEntry struct {
	rec      ledger.Recorded
	prevHash []byte
	ev       ledger.Evidence
	bodySum  []byte
	postings []ledger.Posting
}

func verifyRange(ctx context.Context, tx pgx.Tx, lo, hi int64, prev [32]byte) ([32]byte, error) {
	rows, err := tx.Query(ctx, `SELECT id, kind, merchant_id, order_id, coalesce(refund_id, ''), payer, currency, amount, fee,
		description, fingerprint, hash, created_at, prev_hash, evidence_scheme, evidence_key_id,
		authorization_header, evidence_method, evidence_target, evidence_body, evidence_body_sha256
		FROM entries WHERE id BETWEEN $1 AND $2 ORDER BY id`, lo, hi)
	if err != nil {
		return prev, translate(err)
	}
	entries := make([]storedEntry, 0, hi-lo+1)
	for rows.Next() {
		var (
			e        storedEntry
			kind     string
			fp, hash []byte
		)
		if err := rows.Scan(&e.rec.ID, &kind, &e.rec.Merchant, &e.rec.OrderID, &e.rec.RefundID, &e.rec.Payer, &e.rec.Currency,
			&e.rec.Amount, &e.rec.Fee, &e.rec.Description, &fp, &hash, &e.rec.CreatedAt, &e.prevHash,
			&e.ev.Scheme, &e.ev.KeyID, &e.ev.Authorization, &e.ev.Method, &e.ev.Target, &e.ev.Body, &e.bodySum); err != nil {
			rows.Close()
			return prev, translate(err)
		}
		e.rec.Kind = ledger.Kind(kind)
		copy(e.rec.Fingerprint[:], fp)
		copy(e.rec.Hash[:], hash)
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return prev, translate(err)
	}
	index := make(map[int64]int, len(entries))
	for i, e := range entries {
		index[e.rec.ID] = i
	}
	rows, err = tx.Query(ctx, `SELECT p.entry_id, a.code, a.currency, p.amount
		FROM postings p JOIN accounts a ON a.id = p.account_id
		WHERE p.entry_id BETWEEN $1 AND $2 ORDER BY p.entry_id, p.seq`, lo, hi)
	if err != nil {
		return prev, translate(err)
	}
	for rows.Next() {
		var (
			id int64
			p  ledger.Posting
		)
		if err := rows.Scan(&id, &p.Account, &p.Currency, &p.Amount); err != nil {
			rows.Close()
			return prev, translate(err)
		}
		if i, ok := index[id]; ok {
			entries[i].postings = append(entries[i].postings, p)
		} else {
			rows.Close()
			return prev, fmt.Errorf("%w: posting of missing entry %d", ledger.ErrIntegrity, id)
		}
	}
	if err := rows.Err(); err != nil {
		return prev, translate(err)
	}

	for i := range entries {
		e := &entries[i]
		id := lo + int64(i)
		if e.rec.ID != id {
			return prev, fmt.Errorf("%w: entry %d is missing", ledger.ErrIntegrity, id)
		}
		if string(e.prevHash) != string(prev[:]) {
			return prev, fmt.Errorf("%w: entry %d: prev_hash does not link to entry %d", ledger.ErrIntegrity, id, id-1)
		}
		body := e.ev.Body
		if sum := sha256.Sum256(body); string(sum[:]) != string(e.bodySum) {
			return prev, fmt.Errorf("%w: entry %d: evidence body does not match its digest", ledger.ErrIntegrity, id)
		}
		if ledger.Fingerprint(e.rec.Content(e.postings)) != e.rec.Fingerprint {
			return prev, fmt.Errorf("%w: entry %d: content does not match its fingerprint", ledger.ErrIntegrity, id)
		}
		h := ledger.ChainHash(prev, e.rec, e.postings, ledger.EvidenceDigest(e.ev))
		if h != e.rec.Hash {
			return prev, fmt.Errorf("%w: entry %d: hash does not match its content", ledger.ErrIntegrity, id)
		}
		prev = h
	}
	if int64(len(entries)) != hi-lo+1 {
		return prev, fmt.Errorf("%w: entry %d is missing", ledger.ErrIntegrity, lo+int64(len(entries)))
	}
	return prev, nil
}

// CheckBalances recomputes every balance from the postings and checks it
// equals the stored one (in normal sign, with the account's allow_negative),
// that no account that may not go negative is below zero, and that every
// entry has the postings it declares, at least two, balancing per currency. It returns an error
// wrapping ledger.ErrIntegrity naming the first discrepancy.
func (s *Store) CheckBalances(ctx context.Context) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return translate(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only

	var (
		code, cur string
		stored    *int64
		want      string
	)
	err = tx.QueryRow(ctx, `
		SELECT a.code, a.currency, b.balance, t.want::text
		FROM accounts a
		LEFT JOIN balances b ON b.account_id = a.id
		CROSS JOIN LATERAL (
			SELECT coalesce(sum(p.amount::numeric), 0) * CASE WHEN a.type IN ('asset', 'expense') THEN 1 ELSE -1 END AS want
			FROM postings p WHERE p.account_id = a.id) t
		WHERE b.balance IS NULL OR b.balance <> t.want OR b.allow_negative <> a.allow_negative
			OR (NOT a.allow_negative AND t.want < 0)
		ORDER BY a.id LIMIT 1`).Scan(&code, &cur, &stored, &want)
	switch {
	case err == nil:
		got := "missing"
		if stored != nil {
			got = fmt.Sprint(*stored)
		}
		return fmt.Errorf("%w: account %s %s: balance %s, postings give %s", ledger.ErrIntegrity, code, cur, got, want)
	case !errors.Is(err, pgx.ErrNoRows):
		return translate(err)
	}

	var id int64
	err = tx.QueryRow(ctx, `
		SELECT e.id FROM entries e
		WHERE e.posting_count < 2 OR (SELECT count(*) FROM postings p WHERE p.entry_id = e.id) <> e.posting_count
		   OR EXISTS (SELECT 1 FROM postings p JOIN accounts a ON a.id = p.account_id
		              WHERE p.entry_id = e.id GROUP BY a.currency HAVING sum(p.amount::numeric) <> 0)
		ORDER BY e.id LIMIT 1`).Scan(&id)
	switch {
	case err == nil:
		return fmt.Errorf("%w: entry %d does not balance or has fewer than two postings", ledger.ErrIntegrity, id)
	case !errors.Is(err, pgx.ErrNoRows):
		return translate(err)
	}
	return nil
}
