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
//  2. look up the batch's (merchant, order id) pairs: the same fingerprint is a
//     replay, a different one ErrOrderConflict; within a batch the first of a
//     pair wins and identical later ones share its result;
//  3. create missing accounts and lock the touched balances;
//  4. apply the entries in order in memory: one that would take a wallet,
//     merchant or fee account below zero gets ErrInsufficientFunds and is left
//     out, the others go on;
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
// entries_merchant_order_key makes (merchant, order id) idempotent. Errors
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
