// Package vault stores Quill's key rings in HashiCorp Vault's KV v2 secrets
// engine (or OpenBao's), through github.com/hashicorp/vault/api.
//
// Layout (docs/OPERATIONS.md "Vault layout" is the operator's reference):
// one KV v2 secret per ring at <mount>/data/<prefix>/rings/<owner>, whose
// fields are format (1), owner, min_version and versions (a list of key
// versions: version, id, algorithm, status, public_key_pem, private_key_pem
// for the platform ring only, created_at, rotated_at, not_after).
//
// Guarantees:
//
//   - Every change is one check-and-set write of one ring (KV v2 "cas" set
//     to the version read): of two concurrent rotations one wins and the
//     other gets keys.ErrConflict with the ring as the winner left it. A
//     change that fails validation or cannot be written leaves Vault
//     unchanged; there are no multi-step writes to roll back.
//   - Store implements keys.Source and keys.RingEditor; the server reads
//     through keys.Cache, which serves from memory and keeps serving the
//     last good keys for a bounded time when Vault is unreachable or sealed.
//   - Authentication is a token or an AppRole login (role id and secret id);
//     renewable tokens are kept alive with a LifetimeWatcher, and an AppRole
//     login is redone when renewal ends or Vault refuses the token.
//   - Errors name the Vault address, the path and an error class
//     (unreachable, sealed, permission denied, …), never a token, a secret
//     id or key material; Store and Config print without their secrets.
//   - Private keys read from Vault are parsed into keys.PrivateKey, which
//     cannot be printed.
package vault
