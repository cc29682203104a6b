-- 0011: refunds. A refund is an entry of kind 'refund' that returns part or
-- all of one payment: its order_id is the payment's, its refund_id the
-- merchant's own id for the refund (a namespace of its own, idempotent like
-- order ids), refund_of the payment's entry id and refund_seq its place among
-- that payment's refunds (1, 2, …). The database itself keeps the refunded
-- total within the payment, under any concurrency and isolation level:
--
--   - entries_refund_seq_key makes (refund_of, refund_seq) unique, so two
--     transactions that both take the next place of one payment conflict on
--     the index (the second waits for the first and fails), whatever their
--     snapshots;
--   - entries_check_refund, after each refund row, checks that its payment is
--     a payment of the same merchant, order, payer and currency, that every
--     place before it is taken by a refund this transaction can see (so a
--     refund decided without seeing an earlier one is refused), and that the
--     refunds through it total at most the payment's amount and fee.
--
-- Quill's writer decides refunds under the chain-head lock, so it never trips
-- these; they stop any other writer. Payments pay nothing for them: the
-- trigger has a WHEN clause and the new indexes are partial.
--
-- Rebuilding entries_merchant_order_key reads the table once; on a large
-- ledger the migration holds its lock for that long.

ALTER TABLE entries
	ADD COLUMN refund_id  text,
	ADD COLUMN refund_of  bigint,
	ADD COLUMN refund_seq int;

ALTER TABLE entries ADD CONSTRAINT entries_refund_columns CHECK (
	(kind = 'refund') = (refund_id IS NOT NULL)
	AND (refund_id IS NULL) = (refund_of IS NULL)
	AND (refund_id IS NULL) = (refund_seq IS NULL)
	AND refund_seq >= 1);

-- A refund returns its share of the payment's fee, which for a one-cent
-- refund of a payment with a high fee can be the whole cent: fee = amount.
ALTER TABLE entries DROP CONSTRAINT entries_fee_range;
ALTER TABLE entries ADD CONSTRAINT entries_fee_range CHECK (
	fee >= 0 AND (fee < amount OR (kind = 'refund' AND fee <= amount)));

-- Order ids and refund ids are separate namespaces: a refund carries its
-- payment's order id, so the order key covers the other kinds only. The name
-- stays: it is how a duplicate order is recognised.
ALTER TABLE entries DROP CONSTRAINT entries_merchant_order_key;
CREATE UNIQUE INDEX entries_merchant_order_key ON entries (merchant_id, order_id) WHERE refund_id IS NULL;
CREATE UNIQUE INDEX entries_merchant_refund_key ON entries (merchant_id, refund_id) WHERE refund_id IS NOT NULL;
CREATE UNIQUE INDEX entries_refund_seq_key ON entries (refund_of, refund_seq) INCLUDE (amount, fee)
	WHERE refund_of IS NOT NULL;

CREATE FUNCTION entries_check_refund() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	p        record;
	n        bigint;
	refunded numeric;
	fees     numeric;
BEGIN
	SELECT e.kind, e.merchant_id, e.order_id, e.payer, e.currency, e.amount, e.fee INTO p
	FROM entries e WHERE e.id = NEW.refund_of;
	IF NOT FOUND OR p.kind <> 'payment' OR p.merchant_id <> NEW.merchant_id OR p.order_id <> NEW.order_id
		OR p.payer <> NEW.payer OR p.currency <> NEW.currency THEN
		RAISE EXCEPTION 'ledger: refund % does not name a payment of its merchant, order, payer and currency', NEW.id
			USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_refund_target';
	END IF;
	SELECT count(*), coalesce(sum(r.amount), 0), coalesce(sum(r.fee), 0) INTO n, refunded, fees
	FROM entries r
	WHERE r.refund_of = NEW.refund_of AND r.refund_of IS NOT NULL AND r.refund_seq >= 1 AND r.refund_seq <= NEW.refund_seq;
	IF n <> NEW.refund_seq THEN
		RAISE EXCEPTION 'ledger: refund % is refund % of entry % but only % are visible', NEW.id, NEW.refund_seq, NEW.refund_of, n
			USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_refund_sequence';
	END IF;
	IF refunded > p.amount OR fees > p.fee THEN
		RAISE EXCEPTION 'ledger: refunds of entry % would total %, fee %: more than the payment', NEW.refund_of, refunded, fees
			USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_refund_total';
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER entries_refund_check AFTER INSERT ON entries
	FOR EACH ROW WHEN (NEW.refund_of IS NOT NULL) EXECUTE FUNCTION entries_check_refund();
