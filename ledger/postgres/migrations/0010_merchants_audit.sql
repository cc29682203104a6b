-- The merchant registry and the operator audit log (package merchant,
-- adapter merchant/postgres). They live in the ledger's database and its one
-- migration sequence so that one `quill migrate` sets up a node.

-- merchants: one row per merchant, changed in place by operators (every
-- change is also an audit_events row, in the same transaction). A merchant is
-- never deleted: ledger accounts and entries name it. Disable it instead.
CREATE TABLE merchants (
	-- Mirrors merchant.ValidID (TestIDSyntaxAgrees checks both agree).
	id          text        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$'),
	name        text        NOT NULL DEFAULT '' CHECK (length(name) <= 200),
	status      text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
	can_deposit boolean     NOT NULL DEFAULT false,
	fee_bps     integer     NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
	rules       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(rules) = 'object'),
	created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
	updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION merchants_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'merchants: % is not allowed: disable a merchant instead', TG_OP
		USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'merchants_no_delete';
END $$;
CREATE TRIGGER merchants_no_delete BEFORE DELETE ON merchants
	FOR EACH ROW EXECUTE FUNCTION merchants_no_delete();
CREATE TRIGGER merchants_no_truncate BEFORE TRUNCATE ON merchants
	FOR EACH STATEMENT EXECUTE FUNCTION merchants_no_delete();

-- audit_events: every operator action (merchant added/updated/disabled, key
-- rotated/retired/revoked, certificate issued/rotated/revoked). Append-only,
-- enforced here like the ledger: no UPDATE, DELETE or TRUNCATE.
CREATE TABLE audit_events (
	seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at         timestamptz NOT NULL DEFAULT clock_timestamp(),
	actor      text        NOT NULL CHECK (actor <> '' AND length(actor) <= 200),
	action     text        NOT NULL CHECK (action ~ '^[a-z]+\.[a-z_]+$'),
	subject    text        NOT NULL CHECK (subject <> '' AND length(subject) <= 128),
	old_key_id text        CHECK (length(old_key_id) <= 128),
	new_key_id text        CHECK (length(new_key_id) <= 128),
	detail     text        NOT NULL DEFAULT '' CHECK (length(detail) <= 2000)
);
CREATE INDEX audit_events_subject ON audit_events (subject, seq);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_events: % is not allowed: the operator log is append-only', TG_OP
		USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'audit_append_only';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
