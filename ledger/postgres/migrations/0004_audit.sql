-- 0004: signed checkpoints of the hash chain, and the index that turns an
-- "as of" time into a chain position.

-- A checkpoint is Quill's signature over (seq, head hash, time, key id) with
-- its platform key: see ledger.CheckpointMessage. Append-only like the ledger.
CREATE TABLE checkpoints (
	id         bigserial   PRIMARY KEY,
	seq        bigint      NOT NULL CONSTRAINT checkpoints_seq_nonnegative CHECK (seq >= 0),
	head_hash  bytea       NOT NULL CONSTRAINT checkpoints_head_len CHECK (length(head_hash) = 32),
	created_at timestamptz NOT NULL,
	key_id     text        NOT NULL,
	algorithm  text        NOT NULL,
	signature  bytea       NOT NULL
);
CREATE INDEX checkpoints_seq_idx ON checkpoints (seq, id);

CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
	FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- "As of T" resolves to the last entry created at or before T: one descending
-- probe of this index. It grows at its right edge only (created_at follows the
-- chain), so it costs the write path little.
CREATE INDEX entries_created_at_idx ON entries (created_at, id);

-- Statements read one account's postings in (entry_id, seq) order, a page at
-- a time, and sum them for opening balances: this index serves both from the
-- index alone. It replaces postings_account_entry_idx, whose uses it covers,
-- so the write path maintains no more indexes than before.
CREATE INDEX postings_account_entry_seq_idx ON postings (account_id, entry_id, seq) INCLUDE (amount);
DROP INDEX postings_account_entry_idx;

-- Block totals: per account, the debit and credit sums of the postings of
-- entries block*size+1 .. (block+1)*size, for blocks entirely below the head.
-- Entries never change, so a built block never does either; reports add the
-- blocks below a position to the few postings above the last full block
-- instead of summing millions of postings. They are derived from the
-- postings, append-only like them, and the trial balance of the head is
-- checked against the balances table, which any disagreement would show.
CREATE TABLE posting_blocks (
	size       bigint  NOT NULL CONSTRAINT posting_blocks_size_positive CHECK (size > 0),
	block      bigint  NOT NULL CONSTRAINT posting_blocks_block_nonnegative CHECK (block >= 0),
	account_id bigint  NOT NULL CONSTRAINT posting_blocks_account_fkey REFERENCES accounts (id),
	debit      numeric NOT NULL,
	credit     numeric NOT NULL,
	CONSTRAINT posting_blocks_pkey PRIMARY KEY (size, block, account_id)
);
CREATE INDEX posting_blocks_account_idx ON posting_blocks (size, account_id, block) INCLUDE (debit, credit);

-- A row here marks a block complete; blocks are built in order from 0.
CREATE TABLE posting_blocks_built (
	size     bigint      NOT NULL,
	block    bigint      NOT NULL,
	built_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT posting_blocks_built_pkey PRIMARY KEY (size, block)
);

CREATE TRIGGER posting_blocks_append_only BEFORE UPDATE OR DELETE ON posting_blocks
	FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER posting_blocks_no_truncate BEFORE TRUNCATE ON posting_blocks
	FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER posting_blocks_built_append_only BEFORE UPDATE OR DELETE ON posting_blocks_built
	FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER posting_blocks_built_no_truncate BEFORE TRUNCATE ON posting_blocks_built
	FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
