// Package audit decides who may read the books: it verifies auditor bearer
// tokens (JWTs) and turns them into an Auditor with a Scope.
//
// It is a domain package of its own, not part of policy: policy holds the field
// rules a merchant's payment must pass, while this package is access control
// for a different kind of user, with its own keys (the key store's auditor
// ring), claims and failure modes. Keeping it apart also keeps the auditor API
// (api/audit*.go) from depending on merchant rules.
//
// # Tokens
//
// An auditor token is a compact JWS (RFC 7515) whose header names a key id
// ("kid") of the auditor ring. The algorithm is pinned by that key: an Ed25519
// key verifies only "EdDSA", a P-256 key only "ES256", an RSA key only "RS256".
// "none" and every HMAC algorithm are refused before any key is looked up, so
// the classic "HS256 keyed with the public key" forgery cannot work. Claims:
//
//   - iss and aud must equal the configured issuer and audience;
//   - exp is required, nbf honoured when present, both with a small leeway;
//   - sub names the auditor (for logs);
//   - role must be "auditor";
//   - scope, optional, is a space-separated list of "merchant:ID" items; when
//     present only those merchants' entries and accounts are visible. An empty
//     or unparseable scope refuses the token (fail closed, never "everything").
//
// Every refusal wraps ErrToken (or ErrForbidden for a valid token without the
// auditor role; ErrUnavailable if the key store cannot answer). Error texts
// name the failed check for logs and never contain the token.
package audit
