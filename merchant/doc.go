// Package merchant is the one home of the merchant noun: the merchant id and
// its syntax (ID, ParseID), the profile (Profile: fee, deposit permission,
// field rules, status), the Directory the API reads profiles through, the
// Registry operators change them through, and the append-only record of
// operator actions (Event, EventLog).
//
// The merchant id syntax is defined here and nowhere else: 1 to 32 ASCII
// letters, digits, '_' or '-', starting with a letter or digit
// (^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$). The signature header parser (signing),
// the client-certificate identity (certs), the field rules (policy) and the
// key rings (keys) all call ParseID or ValidID. A leading '_' is reserved for
// the key store's own rings (_platform, _payer, _auditor), so no merchant can
// own one of them.
//
// This package is a leaf: it imports no other project package, which is why
// the domain packages may import it (internal/layout enforces both).
//
// Backends: merchant/postgres keeps profiles and events in PostgreSQL (tables
// from the ledger's migrations, see docs/OPERATIONS.md "Merchants and
// operator events"). Cache serves a Directory from memory, reloading every
// profile in the background and once (rate-limited) for an unknown id, so a
// merchant added, changed or disabled is seen by every node within one
// refresh interval, without restart.
//
// Guarantees and caveats:
//
//   - ParseID's errors never quote the input: they are safe to show a client.
//   - Registry writes record their Event in the same transaction: a profile
//     change without its audit row cannot be committed.
//   - A disabled merchant's lookups fail with ErrDisabled, which also matches
//     ErrUnknown, so a caller that only knows ErrUnknown still refuses it.
//   - When the registry cannot be read, Cache keeps serving the last good
//     profiles and reports the failure (Ready); it serves nothing before its
//     first successful load.
package merchant
