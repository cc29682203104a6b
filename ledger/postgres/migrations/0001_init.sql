-- 0001: accounts, entries, postings, balances, the chain head, and the rules
-- the database enforces on its own: balanced entries with at least two
-- postings (checked at commit), append-only entries and postings, and wallets
-- that never go negative. Constraint names are part of the contract: the Go
-- adapter translates errors by them.

CREATE TABLE accounts (
	id             bigserial PRIMARY KEY,
	code           text        NOT NULL,
	currency       char(3)     NOT NULL,
	type           text        NOT NULL
		CONSTRAINT accounts_type_check CHECK (type IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
	allow_negative boolean     NOT NULL,
	created_at     timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT accounts_code_currency_key UNIQUE (code, currency)
);

CREATE TABLE entries (
	id                   bigint      PRIMARY KEY CONSTRAINT entries_id_positive CHECK (id > 0),
	kind                 text        NOT NULL,
	merchant_id          text        NOT NULL,
	order_id             text        NOT NULL,
	payer                text        NOT NULL,
	currency             char(3)     NOT NULL,
	amount               bigint      NOT NULL CONSTRAINT entries_amount_positive CHECK (amount > 0),
	fee                  bigint      NOT NULL CONSTRAINT entries_fee_range CHECK (fee >= 0 AND fee < amount),
	description          text        NOT NULL,
	fingerprint          bytea       NOT NULL CONSTRAINT entries_fingerprint_len CHECK (length(fingerprint) = 32),
	prev_hash            bytea       NOT NULL CONSTRAINT entries_prev_hash_len CHECK (length(prev_hash) = 32),
	hash                 bytea       NOT NULL CONSTRAINT entries_hash_len CHECK (length(hash) = 32),
	created_at           timestamptz NOT NULL,
	evidence_scheme      text        NOT NULL,
	evidence_key_id      text        NOT NULL,
	authorization_header text        NOT NULL,
	evidence_method      text        NOT NULL,
	evidence_target      text        NOT NULL,
	evidence_body        bytea       NOT NULL,
	evidence_body_sha256 bytea       NOT NULL CONSTRAINT entries_body_sha256 CHECK (evidence_body_sha256 = sha256(evidence_body)),
	posting_count        int         NOT NULL CONSTRAINT entries_min_postings CHECK (posting_count >= 2),
	CONSTRAINT entries_merchant_order_key UNIQUE (merchant_id, order_id),
	CONSTRAINT entries_id_posting_count_key UNIQUE (id, posting_count)
);

CREATE TABLE postings (
	entry_id       bigint NOT NULL,
	seq            int    NOT NULL,
	entry_postings int    NOT NULL, -- the entry's posting_count
	account_id     bigint NOT NULL CONSTRAINT postings_account_fkey REFERENCES accounts (id),
	amount         bigint NOT NULL CONSTRAINT postings_amount_nonzero CHECK (amount <> 0),
	CONSTRAINT postings_pkey PRIMARY KEY (entry_id, seq),
	CONSTRAINT postings_seq_range CHECK (seq >= 0 AND seq < entry_postings),
	CONSTRAINT postings_entry_fkey FOREIGN KEY (entry_id, entry_postings) REFERENCES entries (id, posting_count)
);
CREATE INDEX postings_account_entry_idx ON postings (account_id, entry_id);

-- balance is in the account's normal sign (what its holder sees).
CREATE TABLE balances (
	account_id     bigint  PRIMARY KEY CONSTRAINT balances_account_fkey REFERENCES accounts (id),
	balance        bigint  NOT NULL DEFAULT 0,
	allow_negative boolean NOT NULL,
	CONSTRAINT balances_non_negative CHECK (allow_negative OR balance >= 0)
);

-- The chain head: the id and hash of the last entry. Writers lock this row
-- first, which orders all writes, across processes too.
CREATE TABLE ledger_head (
	singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT ledger_head_singleton CHECK (singleton),
	seq       bigint  NOT NULL,
	hash      bytea   NOT NULL CONSTRAINT ledger_head_hash_len CHECK (length(hash) = 32)
);
INSERT INTO ledger_head (singleton, seq, hash) VALUES (true, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- An entry must have at least two postings and balance per currency.
--
-- An entry declares its posting_count; each posting carries it too, pointing
-- at (entries.id, entries.posting_count), and its seq must lie in
-- [0, posting_count). With the (entry_id, seq) primary key that bounds an
-- entry to posting_count postings. The deferred constraint trigger below
-- checks, at commit of the transaction that inserts the entry, that exactly
-- posting_count postings exist and that they balance per currency. So every
-- seq slot of a committed entry is taken and no later transaction can append
-- a posting to it: one check per entry covers the postings too, without a
-- per-posting trigger (which would cost one PL/pgSQL call per posting on the
-- hot path).
CREATE FUNCTION entries_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	n  bigint;
	ok boolean;
BEGIN
	SELECT coalesce(sum(c), 0), coalesce(bool_and(s = 0), true) INTO n, ok
	FROM (
		SELECT count(*) AS c, sum(p.amount::numeric) AS s
		FROM postings p JOIN accounts a ON a.id = p.account_id
		WHERE p.entry_id = NEW.id
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

CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON entries
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION entries_check_balanced();

-- Entries, postings and accounts are append-only: corrections are reversing
-- entries.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'ledger: % on % is not allowed: the ledger is append-only', TG_OP, TG_TABLE_NAME
		USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'ledger_append_only';
END $$;

CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
	FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
	FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
	FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
	FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER accounts_append_only BEFORE UPDATE OR DELETE ON accounts
	FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
	FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
