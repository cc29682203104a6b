-- 0021: a trial balance first reads the running totals of the last full
-- block in one range scan (the rows of one block are written together, so
-- they sit together), and probes posting_totals_pkey only for the accounts
-- that had no posting in that block. On a ledger where most accounts move in
-- every block this turns 10,000 random probes into one sequential read.
CREATE INDEX posting_totals_block_idx ON posting_totals (size, block);
