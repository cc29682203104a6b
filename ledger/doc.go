// Package ledger is Quill's double-entry journal: accounts, entries, postings,
// balances and the tamper-evident hash chain over entries.
//
// It declares the types and the Writer and Reader interfaces; storage lives in
// adapters (ledger/postgres). It builds entries (Payment, Deposit, Refund,
// completed against its payment by CompleteRefund), validates
// them (Entry.Validate), classifies accounts (Classify) and defines the digests
// an auditor recomputes (Fingerprint, EvidenceDigest, ChainHash).
//
// # Guarantees
//
//   - An entry has at least two postings and, per currency, its postings sum to
//     zero; a positive posting is a debit, a negative one a credit.
//   - Accounts that may not go negative (user wallets, merchant accounts,
//     platform:fees) never do; bank:settlement, the boundary with the outside
//     world, may.
//   - A balance is shown in its normal sign: sum of postings for asset and
//     expense accounts, minus that sum for liability, equity and revenue.
//   - Recording is idempotent on (merchant, order id): the same request again
//     returns the stored entry with Replayed set; a different one under the
//     same order id is ErrOrderConflict. "The same request" is Matches, the
//     one rule both the writer and the API's retry path apply: it compares
//     what the client asked for, not the fee or postings Quill derived, nor
//     the evidence (a retry carries a fresh nonce and signature).
//   - A refund returns part or all of one payment: the payer's wallet is
//     credited, the merchant debited, and the platform returns the floored
//     proportional share of the payment's fee on the running total
//     (RefundFee), so refunds never return more than the payment or its fee,
//     and a payment refunded in full has returned all of both. Refunds are
//     idempotent on (merchant, refund id), a namespace apart from order ids.
//   - Entries are append-only and chained: hash = SHA-256(prev_hash ‖ canonical
//     entry), the first entry's prev_hash being 32 zero bytes.
//
// # Canonical encodings
//
// All three digests are SHA-256 over a byte string built from fields, in the
// order listed, each encoded as:
//
//   - string or bytes: 4-byte big-endian unsigned length, then the bytes
//     (strings as their UTF-8 bytes);
//   - integer: 8-byte big-endian two's complement;
//   - postings: the count as an integer, then each posting as account (string),
//     currency (string), amount (integer), sorted by account, then currency,
//     then amount (byte-wise string order, numeric order).
//
// The first field of each is a domain-separation tag string.
//
// Fingerprint = SHA-256 of:
//
//	"quill.ledger.fingerprint.v1", kind, merchant, order id, payer, currency,
//	amount, fee, description, postings [, refund id — refunds only]
//
// EvidenceDigest = SHA-256 of:
//
//	"quill.ledger.evidence.v1", scheme, key id, authorization header,
//	method, target, body
//
// ChainHash (the entry's hash) = SHA-256 of the previous entry's hash (32 raw
// bytes, no length prefix) followed by:
//
//	"quill.ledger.entry.v1", id, kind, merchant, order id, payer, currency,
//	amount, fee, description, fingerprint (32 bytes, length-prefixed),
//	created_at (integer: microseconds since the Unix epoch, UTC — the
//	precision PostgreSQL stores), postings, evidence digest (32 bytes,
//	length-prefixed) [, refund id — refunds only]
//
// The refund id is appended for entries of kind refund only, so every other
// entry's bytes, including those written before refunds existed, are
// unchanged. A refund's order id is its payment's.
//
// Entry ids are consecutive from 1, so a deleted entry shows as a gap and an
// altered one as a hash mismatch from that entry on.
package ledger
