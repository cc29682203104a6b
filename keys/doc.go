// Package keys holds Quill's key rings: every merchant's request-verification
// keys, the payer-token (JWT) verification keys, and Quill's own platform
// (response-signing) key pairs; and the TLS material (TLSItem: server
// certificate and key, client CA bundle, CRL, the client CA issuer) as PEM,
// which package certs interprets.
//
// A key is a ring of versions (like Vault transit): each owner — a merchant,
// PlatformOwner, PlatformEd25519Owner, PayerOwner, AuditorOwner — has one Ring whose versions are
// numbered 1, 2, … as keys are added. Each version has an id (the serial a
// client names in its signature or selects a response key by), an algorithm
// fixed at registration and never chosen by a request, and a status:
//
//   - Active keys verify (and, for the platform, the newest active one signs);
//   - Retiring keys verify until their NotAfter, and never sign;
//   - Revoked keys are refused. Revocation is final.
//
// A ring accepts min_version <= v <= latest minus revoked (and expired
// retiring) versions; raising min_version refuses every older version.
//
// Rotation adds a new active version and retires the previous ones with an
// overlap window, so requests in flight keep verifying and no request fails.
// Manager makes every change (add, rotate, retire, revoke, min_version) on any
// backend that implements RingEditor; each change is one atomic EditRing, so
// if it cannot be persisted nothing changes, and a concurrent change of the
// same ring makes it fail with ErrConflict rather than overwrite.
//
// Backends: FileStore is the development default, a single JSON file that
// quillctl edits and a running server picks up without restart (through
// internal/reload, which keeps the last good snapshot and reports failures),
// plus one JSON file per TLS item in tls/. keys/vault
// keeps the same rings in Vault KV v2; the server reads it through Cache,
// which refreshes in the background and on unknown key ids (rate-limited),
// keeps serving the last good keys for MaxStale when the backend fails, and
// serves nothing (ErrUnavailable) before its first load or past MaxStale.
//
// Guarantees and caveats:
//
//   - Reads are served from an in-memory snapshot (no I/O on the hot path
//     beyond a periodic stat); a bad file never replaces a good snapshot.
//   - PrivateKey, SecretPEM, Ring and FileStore cannot be printed: fmt shows
//     ids, never material, and errors never quote key PEM. TLSItem marshals
//     to JSON with its private key redacted; backends store it via Fields.
//   - Every TLS item change is one EditTLS (TLSStore): validated, and
//     check-and-set in Vault, like a ring change.
//   - The dev FileStore keeps the platform private key on disk (0600); in
//     production Vault holds it.
//   - RSA keys must have at least 2048 bits; ECDSA keys must be on P-256.
package keys
