-- 0020: running totals replace the per-block sums of 0004.
--
-- A trial balance over the per-block sums read one row per account and block
-- (150,000 rows on a ledger of 1,000,000 entries over 10,000 accounts) and
-- then every posting above the last block (up to 65,535 entries). A running
-- total makes the block part one row per account whatever the ledger's
-- length, and the smaller blocks bound the postings summed above them.
--
-- posting_totals: for each account with a posting among the entries of
-- block k (ids k*size+1 .. (k+1)*size), its debit and credit totals over
-- entries 1 .. (k+1)*size. An account without a row for block k had no
-- posting in it, so its latest row at or below k holds its totals through
-- block k. Built in order, once per block, off the write path; derived from
-- the postings and append-only like them (a tampered row would contradict
-- the balances table, which the trial balance of the head is compared with).
CREATE TABLE posting_totals (
	size       bigint  NOT NULL CONSTRAINT posting_totals_size_positive CHECK (size > 0),
	block      bigint  NOT NULL CONSTRAINT posting_totals_block_nonnegative CHECK (block >= 0),
	account_id bigint  NOT NULL CONSTRAINT posting_totals_account_fkey REFERENCES accounts (id),
	debit      numeric NOT NULL CONSTRAINT posting_totals_debit_nonnegative CHECK (debit >= 0),
	credit     numeric NOT NULL CONSTRAINT posting_totals_credit_nonnegative CHECK (credit >= 0),
	-- An account's latest row below a block is one backward probe.
	CONSTRAINT posting_totals_pkey PRIMARY KEY (size, account_id, block)
);

-- A row here marks a block's totals complete; blocks are built in order from 0.
CREATE TABLE posting_totals_built (
	size     bigint      NOT NULL,
	block    bigint      NOT NULL,
	built_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT posting_totals_built_pkey PRIMARY KEY (size, block)
);

CREATE TRIGGER posting_totals_append_only BEFORE UPDATE OR DELETE ON posting_totals
	FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER posting_totals_no_truncate BEFORE TRUNCATE ON posting_totals
	FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER posting_totals_built_append_only BEFORE UPDATE OR DELETE ON posting_totals_built
	FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER posting_totals_built_no_truncate BEFORE TRUNCATE ON posting_totals_built
	FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- The per-block sums are derived data that nothing reads any more.
DROP TABLE posting_blocks_built;
DROP TABLE posting_blocks;
