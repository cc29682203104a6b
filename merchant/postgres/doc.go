// Package postgres keeps Quill's merchant registry and the operator audit log
// in PostgreSQL: it implements merchant.Registry and merchant.EventLog with
// pgx.
//
// The tables (merchants, audit_events) are created by the ledger's embedded
// migrations (ledger/postgres/migrations/0010_merchants_audit.sql): one
// database, one migration sequence, one `quill migrate`. This package only
// queries them.
//
// Guarantees:
//
//   - Add and Update write the profile and its audit event in one
//     transaction; Update locks the row (SELECT … FOR UPDATE), so two
//     operators changing one merchant serialize instead of losing a change.
//   - audit_events is append-only in the database itself: triggers refuse
//     UPDATE, DELETE and TRUNCATE; merchants refuse DELETE and TRUNCATE.
//   - Driver errors become merchant errors (a duplicate id ErrExists, no row
//     ErrUnknown, an unreachable server ErrUnavailable, a violated CHECK
//     ErrInvalid); nothing above this package imports pgx. Errors never
//     include the DSN's password.
package postgres
