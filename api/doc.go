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
// Before the signature is checked, a request that could be read two ways is
// refused (checkRequest): a repeated Authorization or Content-Type header, a
// request-target not in origin form. Path parameters are decoded and checked
// before any lookup, so no client byte reaches the database as a 500.
//
// Refused requests cost a platform signature each; FailureLimiter throttles a
// merchant's refusals past a limit to one cached, signed 429.
//
// Every response, errors included, is signed with the platform key
// (Wechatpay-Timestamp, -Nonce, -Serial, -Signature over TS\nNONCE\nBODY\n).
// Errors are RFC 9457 problem details with a stable code from errorTable. An
// unknown error is a 500 that says only "internal error"; its detail goes to
// the log with the request id.
//
// Logs never carry the Authorization header, a signature, a token or a body.
package api
