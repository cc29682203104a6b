// Package api is Quill's HTTP surface: the chi router of the merchant API, its
// middleware, handlers, the one table from error to HTTP status, and the ops
// listener (health and readiness).
//
// Every merchant route runs the checks of BRIEF.md "Request authentication" in
// order: the TLS layer (package certs) has already proven the client
// certificate; the authenticate middleware then verifies the signature, the
// timestamp window and the nonce over the raw request-target and raw body, and
// only then is the body decoded strictly and checked against the merchant's
// field rules; the ledger write is last. A failed check answers at once and
// changes nothing.
//
// Two signature schemes are served through one Authenticator, chosen by the
// headers present: Authorization is scheme A (WeChat Pay APIv3), Signature-
// Input/Signature scheme B (RFC 9421); both is 400 signature_scheme_ambiguous,
// neither a 401. What was verified goes into the request's context once, as
// an immutable verifiedRequest (signature evidence and raw body) that handlers
// read; handlers return their errors (the handler adapter answers them), and
// writeError records each error for the access log through the context, so
// no ResponseWriter wrapping can lose it.
//
// Before the signature is checked, a request that could be read two ways is
// refused (checkRequest): signed in both schemes, a repeated Authorization or
// Content-Type header, a request-target not in origin form. Path parameters
// are decoded and checked before any lookup, so no client byte reaches the
// database as a 500.
//
// Payments, deposits and refunds are served by one create handler
// (handleCreate): decode, field rules, record; whether a request repeats a
// recorded one is ledger.Matches, applied by the writer when the rules pass
// and by the handler's retry lookup when they fail for an id already
// recorded, so the two can never disagree.
//
// Refused requests cost a platform signature each; FailureLimiter throttles a
// merchant's refusals past a limit to one cached, signed 429 (scheme A; a
// scheme B 429 is signed per request with Ed25519, since it is bound to its
// request).
//
// Every response, errors included, is signed with a platform key taken
// before the handler runs: scheme A answers (and answers to requests in
// neither scheme) with the RSA key (Wechatpay-Timestamp, -Nonce, -Serial,
// -Signature over TS\nNONCE\nBODY\n); answers to requests carrying scheme B
// fields, refusals included, with RFC 9421 and the Ed25519 platform key,
// bound to the request's signature (signing.BindingOf when it did not
// verify). Errors are RFC 9457 problem details with a stable code and reason
// and a fixed detail from errorTable. An unknown error is a 500 that says
// only "internal error"; its detail goes to the log with the request id.
//
// A body too large to buffer (the merchant's daily statement) is not
// written by its handler: the handler hands the envelope a function that
// produces it (streamResponse), and the envelope runs it twice over the same
// immutable entries, first to digest and sign it, then to send it with the
// signature and Content-Length already in the headers (serveStream). The
// signature still covers the exact body; a failure while sending cuts the
// connection, so a client never gets a complete-looking unsigned answer.
// Listing cursors are sealed for the merchant they were issued to.
//
// Logs never carry the Authorization or Signature header, a token or a body;
// hints and logged reasons pass through signing.Redact.
package api
