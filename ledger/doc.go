// Package ledger is Quill's double-entry journal: accounts, entries, postings,
// balances and the tamper-evident hash chain over entries.
//
// It declares the types and the Writer and Reader interfaces; storage lives in
// adapters (ledger/postgres). It builds entries (Payment, Deposit), validates
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
//	amount, fee, description, postings
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
//	length-prefixed)
//
// Entry ids are consecutive from 1, so a deleted entry shows as a gap and an
// altered one as a hash mismatch from that entry on.
package ledger
