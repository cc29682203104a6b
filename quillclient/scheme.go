package quillclient

import (
	"context"
	"crypto"
	"errors"
	"net/http"
)

// Errors returned by this package, matched with errors.Is. A request that
// reached the server but whose response could not be verified returns an error
// matching ErrUnverified (a *ResponseError, with the status the server sent);
// the more specific sentinel, when there is one, says why.
var (
	// ErrUnverified means a response's platform signature is missing or did
	// not verify. The request did reach the server and may have taken effect.
	ErrUnverified = errors.New("quillclient: response signature not verified")
	// ErrUnknownKey means no platform key has the id a response names, even
	// after fetching the platform keys (or with pinned keys only).
	ErrUnknownKey = errors.New("quillclient: unknown platform key")
	// ErrStaleResponse means a response's signature timestamp is outside the
	// client's window.
	ErrStaleResponse = errors.New("quillclient: response timestamp outside the window")
	// ErrResponseTooLarge means a response body exceeded the transport's limit,
	// so it was not read to the end and cannot be verified.
	ErrResponseTooLarge = errors.New("quillclient: response body too large")
)

// Signer signs outgoing requests with one scheme. Scheme A (WeChat Pay APIv3
// style) is SchemeA; an RFC 9421 signer implements the same interface.
type Signer interface {
	// SignRequest sets req's authentication headers (Authorization for scheme
	// A; Signature-Input, Signature and Content-Digest for RFC 9421) for body,
	// the exact bytes that will be sent (nil when there is none). req is the
	// transport's own copy: SignRequest may change its headers but must not
	// read or replace req.Body. The request target is req.URL.RequestURI().
	SignRequest(req *http.Request, body []byte) error
}

// ResponseVerifier checks the platform signature of responses to one scheme's
// requests. A Signer that also implements ResponseVerifier is used to verify
// the responses to the requests it signed, unless WithResponseVerifier says
// otherwise.
type ResponseVerifier interface {
	// VerifyResponse checks res, whose complete body is body, as the answer
	// to req (the request as signed and sent, headers included). It finds the
	// platform key by the id the response names through keys, and returns an
	// error (which the transport wraps with ErrUnverified) if the response is
	// unsigned, signed by an unknown key (an error from keys, ErrUnknownKey),
	// stale (ErrStaleResponse), or its signature does not verify. It must not
	// read res.Body.
	VerifyResponse(ctx context.Context, req *http.Request, res *http.Response, body []byte, keys KeySource) error
}

// KeySource finds Quill's platform (response-signing) public keys by id.
type KeySource interface {
	// PlatformKey returns the platform key with id. The transport's source
	// fetches GET /v1/certificates once when id is unknown (at most once per
	// refetch interval); it returns an error wrapping ErrUnknownKey if id is
	// still unknown, and a fetch error otherwise.
	PlatformKey(ctx context.Context, id string) (PlatformKey, error)
}

// PlatformKey is one of Quill's response-signing public keys, as published by
// GET /v1/certificates.
type PlatformKey struct {
	ID        string // serial_no: Wechatpay-Serial (scheme A) or keyid (RFC 9421)
	Algorithm string // e.g. "rsa-v1_5-sha256", "ed25519"; empty when not known
	Public    crypto.PublicKey
}

// ResponseError is the error for a response that arrived but did not verify.
// It carries what is safe to act on, never the unverified body: the status
// (which an attacker who can alter responses could also have forged) and the
// Request-ID to quote to Quill's operators.
type ResponseError struct {
	StatusCode int
	RequestID  string
	Err        error // why: wraps ErrUnknownKey, ErrStaleResponse, ... when known
}

func (e *ResponseError) Error() string {
	s := ErrUnverified.Error() + ": " + e.Err.Error()
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// Unwrap lets errors.Is match ErrUnverified and the specific cause.
func (e *ResponseError) Unwrap() []error { return []error{ErrUnverified, e.Err} }
