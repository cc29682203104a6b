// Package postgres stores the ledger in PostgreSQL: it implements
// ledger.Writer and ledger.Reader on a pgx connection pool.
//
// # Write path: group commit
//
// Every payment credits the same merchant account, so one transaction per
// payment, each locking that balance and waiting for its own fsync, cannot go
// beyond a few hundred payments a second. A Store instead hands every Record
// call to a single writer goroutine, which takes whatever has queued (up to
// Options.MaxBatch) and writes it in one transaction:
//
//  1. lock the chain head (SELECT … FROM ledger_head FOR UPDATE), which orders
//     all writers, in this and in other processes;
//  2. look up the batch's (merchant, order id) pairs and, for refunds,
//     (merchant, refund id) pairs: a request that ledger.Matches the stored
//     entry is a replay, a different one ErrOrderConflict; within a batch the
//     first of a key wins and matching later ones share its result; and read
//     the payments the batch's refunds name with what their refunds so far
//     returned (then, in a second round trip, the refunds' accounts);
//  3. create missing accounts and lock the touched balances;
//  4. apply the entries in order in memory: a refund is first completed
//     against its payment and the refunds before it, in the database and
//     earlier in the batch (ledger.CompleteRefund: payer, fee share,
//     postings; over the payment is ErrRefundExceedsPayment); one that would
//     take a wallet, merchant or fee account below zero gets
//     ErrInsufficientFunds (ErrMerchantFunds for a refund) and is left out,
//     the others go on;
//  5. assign ids (the chain sequence), created_at and chain hashes, and write
//     all entries, postings, balance deltas and the new head in one pipelined
//     round trip of multi-row INSERT … SELECT FROM unnest(…);
//  6. commit: one fsync for the whole batch.
//
// While one batch commits the next one queues, so batches grow with load and
// the cost of a commit is shared by all of them. If a batch fails on the
// server (a constraint, an error the Go checks did not foresee) each of its
// items is retried alone, so one poison entry cannot fail the others. If the
// server cannot be reached before the commit is sent, every item gets
// ErrUnavailable and nothing was written; if the connection is lost during the
// commit the items are retried alone too, which reports an entry that did
// commit as Replayed.
//
// The money rules of steps 2–5 are pure functions of the batch and what steps
// 1–3 read (plan.go: keys, decide), tested without a database; writer.go only
// reads, writes and commits around them.
//
// # Cost independent of the ledger's size
//
// Every statement a batch sends finds its rows through a unique or primary
// key: key lists arrive as arrays and are looked up through LATERAL … LIMIT 1
// subqueries (which the planner cannot turn into a hash join over a whole
// table) or = ANY on a primary key, and the commit-time balance trigger reads
// an entry's postings and their accounts by primary key. So the generic plans
// PostgreSQL caches for them are index lookups even on a ledger that was
// never analysed; TestWritePathPlans checks it on 100,000 entries, for the
// statements and, through auto_explain, for the trigger and foreign-key
// queries. See docs/OPERATIONS.md for the settings the server needs.
//
// # What the database enforces on its own
//
// The Go checks are backed by the schema (migrations/): an entry declares its
// posting_count (at least two) and its postings' seq must lie below it; a
// deferred constraint trigger on entries rejects at commit an entry that does
// not have exactly that many postings or whose postings do not balance per
// currency, so no posting can be added to a committed entry either (see the
// migration for why this needs no per-posting trigger); triggers reject
// UPDATE, DELETE and
// TRUNCATE on entries, postings and accounts; CHECK balances_non_negative
// stops a wallet, merchant or fee balance going negative; UNIQUE
// entries_merchant_order_key makes (merchant, order id) idempotent (for every
// kind but refunds, which carry their payment's order id) and
// entries_merchant_refund_key (merchant, refund id); and a refund's place
// among its payment's refunds is unique (entries_refund_seq_key) and checked
// by a trigger against the refunds visible before it and the payment's
// amount and fee (entries_refund_total), so refunds never exceed their
// payment whoever writes them, at any isolation level (migration 0011).
// Errors
// are translated by constraint name into the ledger package's sentinels, so
// nothing above this package sees pgx.
//
// Seed writes a synthetic, valid ledger of any size by COPY (cmd/quill-seed),
// for benchmarks and tests on big ledgers.
//
// VerifyChain and CheckBalances recompute the hash chain and the balances
// from the stored rows, for auditors and tests.
//
// Migrations are embedded, numbered and forward-only; each runs in its own
// transaction under an advisory lock, so concurrent migrators are safe.
//
// The triggers bind every role but a table's owner and superusers, who can
// disable them. SetupRoles therefore gives each database an owner role (runs
// Migrate), a service role (Open for the server: INSERT and SELECT on the
// journal, UPDATE only of balances.balance and the chain head, no UPDATE,
// DELETE or TRUNCATE of history, no DDL) and a read-only reader role for
// auditors; see Roles.
package postgres
