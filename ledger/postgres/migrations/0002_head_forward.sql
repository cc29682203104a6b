-- The chain head only moves forward. Deleting it stops every write; moving it
-- back (or rewriting its hash in place) would let the next batch fork the
-- chain over entries that stay in the table. A checkpoint signs this row.
CREATE FUNCTION ledger_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP IN ('DELETE', 'TRUNCATE') OR NEW.seq < OLD.seq
		OR (NEW.seq = OLD.seq AND NEW.hash IS DISTINCT FROM OLD.hash) THEN
		RAISE EXCEPTION 'ledger_head only moves forward'
			USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'ledger_head_forward';
	END IF;
	RETURN NEW;
END $$;

CREATE TRIGGER ledger_head_forward BEFORE UPDATE OR DELETE ON ledger_head
	FOR EACH ROW EXECUTE FUNCTION ledger_head_forward();
CREATE TRIGGER ledger_head_no_truncate BEFORE TRUNCATE ON ledger_head
	FOR EACH STATEMENT EXECUTE FUNCTION ledger_head_forward();
