-- 0003: the commit-time balance check reads an entry's postings by index,
-- whatever the planner's statistics say.
--
-- PL/pgSQL caches the trigger's query and soon runs it with a generic plan.
-- Without statistics (autovacuum off, never analysed) the planner guesses that
-- "postings WHERE entry_id = $1" matches 0.5 % of the table and that joining
-- accounts is best done by hashing the whole accounts table, so every
-- committed entry cost a scan of accounts, growing with the ledger. Here each
-- of the entry's posting slots (entry_id, seq) and each posting's account (id)
-- is looked up by its primary key through a LATERAL … LIMIT 1 subquery, which
-- the planner cannot flatten into a hash join: the only plan besides a scan of
-- the whole table per slot is the index lookup.
--
-- Looking up the slots 0 .. posting_count-1 counts the same postings as
-- "WHERE entry_id = NEW.id" did: postings_seq_range and postings_entry_fkey
-- already forbid a posting of this entry outside those slots.
CREATE OR REPLACE FUNCTION entries_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	n  bigint;
	ok boolean;
BEGIN
	SELECT coalesce(sum(c), 0), coalesce(bool_and(s = 0), true) INTO n, ok
	FROM (
		SELECT count(*) AS c, sum(p.amount::numeric) AS s
		FROM generate_series(0, NEW.posting_count - 1) AS slot(seq)
		CROSS JOIN LATERAL (
			SELECT p.account_id, p.amount FROM postings p
			WHERE p.entry_id = NEW.id AND p.seq = slot.seq LIMIT 1) p
		CROSS JOIN LATERAL (
			SELECT a.currency FROM accounts a WHERE a.id = p.account_id LIMIT 1) a
		GROUP BY a.currency
	) t;
	IF n <> NEW.posting_count THEN
		RAISE EXCEPTION 'ledger: entry % has % postings, declares %', NEW.id, n, NEW.posting_count
			USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_postings_complete';
	END IF;
	IF NOT ok THEN
		RAISE EXCEPTION 'ledger: entry % does not balance', NEW.id
			USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_balanced';
	END IF;
	RETURN NULL;
END $$;
