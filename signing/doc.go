// Package signing authenticates merchant requests and signs Quill's responses,
// in two schemes.
//
// Scheme A is wire-compatible with WeChat Pay APIv3, so merchant SDKs that sign
// for WeChat Pay work against Quill unchanged. A request carries
//
//	Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"
//
// where signature is the base64 of an RSASSA-PKCS1-v1_5 SHA-256 signature over
//
//	METHOD\nREQUEST_TARGET\nTIMESTAMP\nNONCE\nBODY\n
//
// (StringToSign). ParseAuthorization reads the header, SignRequest produces it,
// and Verifier.Verify runs the checks in a fixed order (see its doc) with the
// merchant's keys (KeyResolver) and a replay guard (NonceStore; the Redis one is
// in signing/redis). ResponseSigner signs responses with the platform key into
// the Wechatpay-Timestamp, -Nonce, -Serial and -Signature headers over
// "TIMESTAMP\nNONCE\nBODY\n"; VerifyResponse is the client side.
//
// Scheme B is RFC 9421 HTTP Message Signatures. A request carries
//
//	Signature-Input: sig1=("@method" "@target-uri" "content-type" "content-digest");created=…;keyid="…";nonce="…";alg="…"
//	Signature: sig1=:<base64 signature>:
//	Content-Digest: sha-256=:<base64 SHA-256 of the body>:
//
// The fields are parsed by a strict RFC 8941 structured-field parser (sfv.go)
// whose errors give the byte offset and what was wrong. MessageVerifier.Verify
// (checks listed in its doc) selects exactly one signature: the one label whose
// keyid resolves, through a RegisteredKeyResolver asked for (certificate
// merchant, keyid), to a key of the merchant the client certificate names; that
// lookup is the identity binding, since a keyid never names another merchant's
// key. It requires @method, @target-uri (or @authority, @path and @query) and,
// for a body, content-digest; parameters created, nonce and keyid; honours
// expires; and takes the algorithm from the key's registration (Algorithm:
// rsa-v1_5-sha256, rsa-pss-sha512 with a 64-byte salt, ecdsa-p256-sha256 with a
// raw 64-byte r‖s, ed25519), refusing an alg parameter that disagrees. The
// signature base (RFC 9421 §2.5, httpsig_base.go) is built from the message
// exactly as received: the raw request-target and the raw field lines. The
// Content-Digest (RFC 9530, sha-256 or sha-512) is recomputed over the raw body
// and compared in constant time. The nonce rules and window are scheme A's.
// MessageResponseSigner signs responses with the Ed25519 (or P-256) platform
// key over @status, content-type, content-digest and the request's own
// signature ("signature";key="…";req); RequestSigner and VerifyMessageResponse
// are the client side, RequestSignatureBase and ResponseSignatureBase show the
// base for debugging. BindingOf says what a refusal of a request whose
// signature did not verify is bound to. Redact removes secrets (payer
// tokens, anything JWT-shaped) from every echo of client input.
//
// Guarantees:
//
//   - Verification is over the exact bytes received: the raw request-target and
//     raw body, never re-serialized JSON or a re-encoded query.
//   - Each check fails closed; nothing is recorded for a request whose signature
//     does not verify, so a forged request cannot burn a merchant's nonce.
//   - Every refusal is a *Failure matching ErrUnauthorized: callers answer all of
//     them with one 401 code, whichever check failed. The replay guard being
//     unavailable is not a refusal but ErrUnavailable (503, do nothing).
//
// Security caveats:
//
//   - Failure.Hint and Failure.Expected are written for the honest client: they
//     say which check failed and echo the expected string to sign (truncated),
//     but never key material or the received signature. They may echo the
//     request's own method, target, body, merchant id and serial, so send them
//     only to the authenticated (mTLS) client that made the request, and log
//     key ids rather than Authorization headers.
//   - The nonce store is a fast first line against replays, not the durable one:
//     Redis forgets keys on restart, failover and eviction. The ledger's unique
//     constraint on (merchant, order id) is what stops a replayed payment.
//   - Timestamps are compared in whole seconds against the injected clock; the
//     window (default ±300 s) bounds how long a captured request stays usable.
//   - Scheme B: a signature covers only the components it lists. Quill insists
//     on the method, the full target and the body digest, but any other header
//     (e.g. Content-Type, Idempotency-Key) is unprotected unless the client
//     covers it; handlers must not trust an uncovered field for a security
//     decision. Verified.SignatureBase records exactly what was covered.
//   - Scheme B: members of Signature-Input whose keyid does not resolve (e.g.
//     a gateway's own signature) are ignored, not verified. Two members naming
//     keys of the same merchant are refused, so a request never has two
//     candidate nonces or creation times.
//   - Scheme B: the structured-field parser refuses a dictionary key or
//     parameter that occurs twice, where RFC 8941 would keep the last value, so
//     Quill and an intermediary cannot read different signatures from one
//     header. Byte sequences without "=" padding are accepted, as RFC 8941
//     asks.
//   - Scheme B: @authority and @target-uri use the Host as received,
//     lowercased and without the scheme's default port (RFC 9421 §2.2.3); a
//     proxy that rewrites Host breaks signatures, by design. @query-param
//     values are decoded and re-encoded as RFC 9421 §2.2.8 prescribes; the
//     components Quill requires (@target-uri, or @path and @query) are raw.
//   - Scheme B: expires is honoured without grace: a signature is refused
//     once Quill's clock passes it. created must also be within the window,
//     whatever expires says.
//   - Scheme B: a failure's Expected echoes the signature base Quill built
//     (truncated), which contains the covered field values; like scheme A's
//     hint, send it only to the authenticated client.
//   - If the nonce store times out after recording a nonce, the client gets 503
//     and a retry with the same nonce is refused as a replay: clients should
//     retry with a fresh nonce (the order id keeps the retry idempotent).
package signing
