-- 0003: the commit-time balance check reads an entry's postings by index,
-- whatever the planner's statistics say.
--
-- PL/pgSQL caches the trigger's query and soon runs it with a generic plan.
-- Without statistics (autovacuum off, never analysed) the planner guesses that
-- "postings WHERE entry_id = $1" matches 0.5 % of the table, and may join
-- accounts by hashing the whole table: every committed entry then cost scans
-- that grow with the ledger. Here the postings are bounded on both columns of
-- their primary key (entry_id, and the seq range the constraints already
-- impose), which the planner estimates at a tiny fraction of the table, and
-- each posting's currency is a scalar subquery on the accounts primary key,
-- which cannot become a hash join. (A generate_series over the seq slots with
-- LATERAL lookups is as robust but six times slower: its default 1,000-row
-- estimate sizes sorts and caches for 1,000 rows on every call.)
--
-- "seq >= 0 AND seq < posting_count" selects the same postings as before:
-- postings_seq_range and postings_entry_fkey already forbid a posting of this
-- entry outside that range.
CREATE OR REPLACE FUNCTION entries_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	n  bigint;
	ok boolean;
BEGIN
	SELECT coalesce(sum(c), 0), coalesce(bool_and(s = 0), true) INTO n, ok
	FROM (
		SELECT count(*) AS c, sum(x.amount::numeric) AS s
		FROM (
			SELECT p.amount, (SELECT a.currency FROM accounts a WHERE a.id = p.account_id) AS currency
			FROM postings p
			WHERE p.entry_id = NEW.id AND p.seq >= 0 AND p.seq < NEW.posting_count
		) x
		GROUP BY x.currency
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
