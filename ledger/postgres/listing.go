package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/ledger"
)

var _ ledger.Listings = (*Store)(nil)

// maxListPage caps one listing page.
const maxListPage = 1000

// listCols are the columns of a ledger.Record, for scanListed. net is the
// change of the merchant's own account in its normal sign (a liability:
// minus the sum of its postings), read through postings_pkey and the
// accounts key: one index probe per entry, whatever the ledger's size.
// $2 is the merchant account prefix (ledger.MerchantAccount("")).
const listCols = `e.id, e.kind, e.merchant_id, e.order_id, coalesce(e.refund_id, ''), e.payer, e.currency, e.amount, e.fee,
	e.description, e.fingerprint, e.hash, e.created_at,
	coalesce((SELECT -sum(p.amount) FROM postings p
		JOIN accounts a ON a.id = p.account_id AND a.code = $2 || e.merchant_id AND a.currency = e.currency
		WHERE p.entry_id = e.id AND p.seq >= 0 AND p.seq < e.posting_count), 0)`

// spanFilter bounds entries to a ledger.Span: the id range drives the index
// (merchant_id, kind, id), created_at makes the period exact.
func spanFilter(first int) string {
	n := func(i int) string { return "$" + strconv.Itoa(first+i) }
	return `e.id >= ` + n(0) + ` AND e.id <= ` + n(1) +
		` AND (` + n(2) + `::timestamptz IS NULL OR e.created_at >= ` + n(2) + `)` +
		` AND (` + n(3) + `::timestamptz IS NULL OR e.created_at < ` + n(3) + `)`
}

// The listing's statements. Each reads entries through
// entries_merchant_kind_id_idx (migration 0011) in id order, so a page costs
// its own rows whatever the ledger holds (TestWritePathPlans).
var (
	// sqlListRecords: $1 merchant, $2 account prefix, $3 kind, $4..$7 span,
	// $8 after, $9 limit.
	sqlListRecords = `SELECT ` + listCols + ` FROM entries e
	WHERE e.merchant_id = $1 AND e.kind = $3 AND ` + spanFilter(4) + ` AND e.id > $8
	ORDER BY e.id LIMIT $9`

	// sqlEachRecord: a chunk of the span of every merchant kind, merged in
	// id order (one ordered index scan per kind under a Merge Append, no
	// sort).
	sqlEachRecord = eachRecordSQL(len(ledger.MerchantKinds))
)

// eachRecordSQL is sqlEachRecord for n kinds: $1 merchant, $2 account
// prefix, $3..$6 span, $7 after, $8 limit, $9.. the kinds.
func eachRecordSQL(n int) string {
	branches := make([]string, n)
	for i := range branches {
		branches[i] = `(SELECT ` + listCols + ` FROM entries e
		WHERE e.merchant_id = $1 AND e.kind = $` + strconv.Itoa(9+i) + ` AND ` + spanFilter(3) + ` AND e.id > $7
		ORDER BY e.id LIMIT $8)`
	}
	return `SELECT * FROM (` + strings.Join(branches, "\n\tUNION ALL\n\t") + `) r ORDER BY 1 LIMIT $8`
}

// eachChunk is how many records EachRecord reads per query.
const eachChunk = 1000

// listingSQL lists the listing statements, for TestWritePathPlans.
var listingSQL = []string{sqlListRecords, sqlEachRecord}

// ResolveSpan implements ledger.Listings, with the auditor periods'
// resolution (resolvePeriod), in one snapshot.
func (s *Store) ResolveSpan(ctx context.Context, from, to time.Time) (ledger.Span, error) {
	sp := ledger.Span{From: from, To: to}
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		head, err := headSeq(ctx, tx)
		if err != nil {
			return err
		}
		sp.FromEntry, sp.ToEntry, err = resolvePeriod(ctx, tx, ledger.Period{From: from, To: to}, head)
		return err
	})
	return sp, err
}

func spanArgs(sp ledger.Span) []any {
	t := func(v time.Time) any {
		if v.IsZero() {
			return nil
		}
		return v
	}
	return []any{sp.FromEntry, sp.ToEntry, t(sp.From), t(sp.To)}
}

// ListRecords implements ledger.Listings.
func (s *Store) ListRecords(ctx context.Context, q ledger.ListQuery) (ledger.ListPage, error) {
	if q.Limit < 1 || q.Limit > maxListPage {
		return ledger.ListPage{}, fmt.Errorf("%w: limit %d outside [1, %d]", ledger.ErrInvalidEntry, q.Limit, maxListPage)
	}
	var page ledger.ListPage
	if q.Span.Empty() {
		return page, nil
	}
	args := append([]any{q.Merchant, ledger.MerchantAccount(""), string(q.Kind)}, spanArgs(q.Span)...)
	args = append(args, q.After, q.Limit+1)
	rows, err := s.pool.Query(ctx, sqlListRecords, args...)
	if err != nil {
		return page, translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanListed(rows)
		if err != nil {
			return ledger.ListPage{}, translate(err)
		}
		if len(page.Records) == q.Limit {
			page.More = true
			break
		}
		page.Records = append(page.Records, r)
	}
	if err := rows.Err(); err != nil {
		return ledger.ListPage{}, translate(err)
	}
	return page, nil
}

// EachRecord implements ledger.Listings. It reads the span in keyset chunks
// of eachChunk records and emits each chunk with no connection held, so
// memory stays bounded and a slow consumer (a client downloading a
// statement) never keeps a pool connection from the writer. kinds must be
// ledger.MerchantKinds' length or fewer; missing kinds are padded with one
// that matches nothing.
func (s *Store) EachRecord(ctx context.Context, merchant string, kinds []ledger.Kind, sp ledger.Span, emit func(ledger.Record) error) error {
	return s.eachRecord(ctx, merchant, kinds, sp, eachChunk, emit)
}

func (s *Store) eachRecord(ctx context.Context, merchant string, kinds []ledger.Kind, sp ledger.Span, size int, emit func(ledger.Record) error) error {
	if len(kinds) > len(ledger.MerchantKinds) {
		return fmt.Errorf("%w: %d kinds, at most %d", ledger.ErrInvalidEntry, len(kinds), len(ledger.MerchantKinds))
	}
	if sp.Empty() {
		return nil
	}
	args := append([]any{merchant, ledger.MerchantAccount("")}, spanArgs(sp)...)
	args = append(args, int64(0), size)
	for i := range ledger.MerchantKinds {
		k := "" // no entry has an empty kind
		if i < len(kinds) {
			k = string(kinds[i])
		}
		args = append(args, k)
	}
	chunk := make([]ledger.Record, 0, size)
	for {
		rows, err := s.pool.Query(ctx, sqlEachRecord, args...)
		if err != nil {
			return translate(err)
		}
		chunk = chunk[:0]
		for rows.Next() {
			r, err := scanListed(rows)
			if err != nil {
				rows.Close()
				return translate(err)
			}
			chunk = append(chunk, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return translate(err)
		}
		for _, r := range chunk {
			if err := emit(r); err != nil {
				return err
			}
		}
		if len(chunk) < size {
			return nil
		}
		args[6] = chunk[len(chunk)-1].ID
	}
}

func scanListed(row pgx.Row) (ledger.Record, error) {
	var (
		r        ledger.Record
		kind     string
		fp, hash []byte
	)
	if err := row.Scan(&r.ID, &kind, &r.Merchant, &r.OrderID, &r.RefundID, &r.Payer, &r.Currency, &r.Amount, &r.Fee,
		&r.Description, &fp, &hash, &r.CreatedAt, &r.Net); err != nil {
		return ledger.Record{}, err
	}
	if len(fp) != 32 || len(hash) != 32 {
		return ledger.Record{}, internalf("entry %d: bad digest length", r.ID)
	}
	r.Kind = ledger.Kind(kind)
	copy(r.Fingerprint[:], fp)
	copy(r.Hash[:], hash)
	r.CreatedAt = r.CreatedAt.UTC()
	return r, nil
}
