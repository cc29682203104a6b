package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// blockSize is how many entries one block of totals covers. A variable so
// tests can use small blocks; rows of another size are ignored.
var blockSize int64 = 65536

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
// it built one.
func (s *Store) buildNextBlock(ctx context.Context) (bool, error) {
	// A plain read first: almost always nothing is due, and then no
	// transaction, lock or write happens (a replica can answer it too).
	var due bool
	if err := s.pool.QueryRow(ctx, `SELECT ((SELECT count(*) FROM posting_blocks_built WHERE size = $1) + 1) * $1 <= (SELECT seq FROM ledger_head)`,
		blockSize).Scan(&due); err != nil || !due {
		return false, translate(err)
	}
	built := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(blockLock)); err != nil {
			return err
		}
		var next, head int64
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM posting_blocks_built WHERE size = $1), (SELECT seq FROM ledger_head)`,
			blockSize).Scan(&next, &head); err != nil {
			return err
		}
		if (next+1)*blockSize > head {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO posting_blocks (size, block, account_id, debit, credit)
			SELECT $1, $2, account_id, coalesce(sum(amount) FILTER (WHERE amount > 0), 0), coalesce(-sum(amount) FILTER (WHERE amount < 0), 0)
			FROM postings WHERE entry_id > $2::bigint * $1::bigint AND entry_id <= ($2::bigint + 1) * $1::bigint GROUP BY account_id`, blockSize, next); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO posting_blocks_built (size, block) VALUES ($1, $2)`, blockSize, next)
		built = err == nil
		return err
	})
	return built, translate(err)
}

// fullBlocks returns how many built blocks lie entirely at or below entry n,
// in tx's snapshot.
func fullBlocks(ctx context.Context, tx pgx.Tx, n int64) (int64, error) {
	var built int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM posting_blocks_built WHERE size = $1`, blockSize).Scan(&built); err != nil {
		return 0, translate(err)
	}
	return min(built, max(n, 0)/blockSize), nil
}

// accountNetThrough returns the sum of account's postings of entries 1..n.
func accountNetThrough(ctx context.Context, tx pgx.Tx, accountID, n int64) (int64, error) {
	nb, err := fullBlocks(ctx, tx, n)
	if err != nil {
		return 0, err
	}
	var net int64
	err = tx.QueryRow(ctx, `SELECT
		coalesce((SELECT sum(debit - credit) FROM posting_blocks WHERE size = $1 AND account_id = $2 AND block < $3), 0) +
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
