// Package keys holds Quill's key rings: every merchant's request-verification
// keys, the payer-token (JWT) verification keys, and Quill's own platform
// (response-signing) key pairs.
//
// A key is a ring of versions, each with an id (the serial a client names in
// its signature or selects a response key by), an algorithm fixed at
// registration and never chosen by a request, and a status:
//
//   - Active keys verify (and, for the platform, sign);
//   - Retiring keys verify until their NotAfter, and never sign;
//   - Revoked keys are refused. Revocation is final.
//
// Rotation adds a new active version and retires the previous ones with an
// overlap window, so requests in flight keep verifying and no request fails.
// If a rotation cannot be persisted, nothing changes.
//
// Backends implement Store. FileStore is the development default: a single
// JSON file that quillctl edits and a running server picks up without
// restart. The Vault backend (keys/vault) keeps the same semantics.
//
// Guarantees and caveats:
//
//   - Reads are served from an in-memory snapshot (no I/O on the hot path
//     beyond a periodic stat); a bad file never replaces a good snapshot.
//   - PrivateKey and FileStore cannot be printed: fmt shows ids, never
//     material, and errors never quote key PEM.
//   - The dev FileStore keeps the platform private key on disk (0600); in
//     production Vault holds it.
//   - RSA keys must have at least 2048 bits; ECDSA keys must be on P-256.
package keys
