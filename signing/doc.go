// Package signing authenticates merchant requests and signs Quill's responses.
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
//   - If the nonce store times out after recording a nonce, the client gets 503
//     and a retry with the same nonce is refused as a replay: clients should
//     retry with a fresh nonce (the order id keeps the retry idempotent).
package signing
