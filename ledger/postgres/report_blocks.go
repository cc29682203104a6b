package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// blockSize is how many entries one block of running totals covers: the
// most postings a report sums above the last built block. A variable so
// tests can use small blocks; rows of another size are ignored.
var blockSize int64 = 16384

// blockLock is the advisory lock key that serializes block builders.
const blockLock = 0x71626c6b /* "qblk" */

// ensureBlocks builds, in order, every missing block entirely at or below
// the head. Each block is its own short transaction; concurrent builders
// wait for each other and skip what is done.
func (s *Store) ensureBlocks(ctx context.Context) error {
	for {
		built, err := s.buildNextBlock(ctx)
		if err != nil || !built {
			return err
		}
	}
}

// buildNextBlock builds the next block if it is complete; it reports whether
// it built one. A block's rows are its accounts' running totals: the
// account's latest earlier row plus the block's own postings.
func (s *Store) buildNextBlock(ctx context.Context) (bool, error) {
	// A plain read first: almost always nothing is due, and then no
	// transaction, lock or write happens (a replica can answer it too).
	var due bool
	if err := s.pool.QueryRow(ctx, `SELECT ((SELECT count(*) FROM posting_totals_built WHERE size = $1) + 1) * $1 <= (SELECT seq FROM ledger_head)`,
		blockSize).Scan(&due); err != nil || !due {
		return false, translate(err)
	}
	built := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(blockLock)); err != nil {
			return err
		}
		var next, head int64
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM posting_totals_built WHERE size = $1), (SELECT seq FROM ledger_head)`,
			blockSize).Scan(&next, &head); err != nil {
			return err
		}
		if (next+1)*blockSize > head {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO posting_totals (size, block, account_id, debit, credit)
			SELECT $1, $2, d.account_id, coalesce(prev.debit, 0) + d.debit, coalesce(prev.credit, 0) + d.credit
			FROM (SELECT account_id, coalesce(sum(amount) FILTER (WHERE amount > 0), 0) AS debit,
					coalesce(-sum(amount) FILTER (WHERE amount < 0), 0) AS credit
				FROM postings WHERE entry_id > $2::bigint * $1::bigint AND entry_id <= ($2::bigint + 1) * $1::bigint
				GROUP BY account_id) d
			LEFT JOIN LATERAL (SELECT debit, credit FROM posting_totals t
				WHERE t.size = $1 AND t.account_id = d.account_id AND t.block < $2 ORDER BY t.block DESC LIMIT 1) prev ON true`,
			blockSize, next); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO posting_totals_built (size, block) VALUES ($1, $2)`, blockSize, next)
		built = err == nil
		return err
	})
	return built, translate(err)
}

// fullBlocks returns how many built blocks lie entirely at or below entry n,
// in tx's snapshot.
func fullBlocks(ctx context.Context, tx pgx.Tx, n int64) (int64, error) {
	var built int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM posting_totals_built WHERE size = $1`, blockSize).Scan(&built); err != nil {
		return 0, translate(err)
	}
	return min(built, max(n, 0)/blockSize), nil
}

// accountNetThrough returns the sum of account's postings of entries 1..n:
// its running totals below the last full block, plus its postings above it.
func accountNetThrough(ctx context.Context, tx pgx.Tx, accountID, n int64) (int64, error) {
	nb, err := fullBlocks(ctx, tx, n)
	if err != nil {
		return 0, err
	}
	var net int64
	err = tx.QueryRow(ctx, `SELECT
		coalesce((SELECT debit - credit FROM posting_totals WHERE size = $1 AND account_id = $2 AND block < $3 ORDER BY block DESC LIMIT 1), 0) +
		coalesce((SELECT sum(amount) FROM postings WHERE account_id = $2 AND entry_id > $3::bigint * $1::bigint AND entry_id <= $4), 0)`,
		blockSize, accountID, nb, n).Scan(&net)
	return net, translate(err)
}

// blocksBestEffort builds due blocks before a report. Reports are correct
// without them (they sum the postings above the last built block), so a
// failure — a read-only replica, a busy primary — only costs speed.
func (s *Store) blocksBestEffort(ctx context.Context) {
	if err := s.ensureBlocks(ctx); err != nil {
		s.opts.Logger.Debug().Err(err).Msg("ledger: report blocks not built")
	}
}
