package signing

import (
	"context"
	"crypto"
	"errors"
	"time"
)

// SchemeWeChatPay is the Authorization scheme token of scheme A, wire-compatible
// with WeChat Pay APIv3.
const SchemeWeChatPay = "WECHATPAY2-SHA256-RSA2048"

// Errors returned by this package. Every refusal of a request's signature wraps
// ErrUnauthorized (one 401 code at the edge); the more specific sentinel says which
// check failed.
var (
	ErrUnauthorized  = errors.New("signing: request signature not accepted")
	ErrMalformed     = errors.New("signing: malformed authorization header")
	ErrWrongMerchant = errors.New("signing: merchant does not match client certificate")
	ErrUnknownKey    = errors.New("signing: unknown or unusable key")
	ErrStale         = errors.New("signing: timestamp outside the window")
	ErrBadSignature  = errors.New("signing: signature does not verify")
	ErrReplay        = errors.New("signing: replayed nonce")
	// ErrUnavailable means the replay guard could not answer with certainty; the
	// request must be refused with 503 and nothing done.
	ErrUnavailable = errors.New("signing: replay guard unavailable")
)

// Failure is a refused signature with what an honest client needs to fix it.
// Error() never contains key material or a valid signature; Expected is the
// string Quill expected to be signed, truncated.
type Failure struct {
	Err      error  // one of the sentinels above (not ErrUnauthorized)
	Hint     string // human hint, e.g. "timestamp looks like milliseconds"
	Expected string // expected string to sign, truncated (may be empty)
}

func (f *Failure) Error() string { return f.Err.Error() + ": " + f.Hint }

// Unwrap lets errors.Is match both ErrUnauthorized and the specific sentinel.
func (f *Failure) Unwrap() []error { return []error{ErrUnauthorized, f.Err} }

// Request is what the verifier needs from an HTTP request, taken verbatim off the
// wire: Target is the raw request-target (path and query as sent), Body the raw bytes.
type Request struct {
	Method        string
	Target        string
	Authorization string
	Body          []byte
	// Merchant is the identity proven by the client certificate.
	Merchant string
}

// Verified describes an accepted request; it is the evidence stored with the
// ledger entry.
type Verified struct {
	Scheme        string
	Merchant      string
	KeyID         string
	Nonce         string
	Timestamp     time.Time
	Authorization string
}

// KeyResolver finds merchants' verification keys.
type KeyResolver interface {
	// VerifyingKey returns the public key merchant registered under keyID if it is
	// usable at t (active, or retiring and still in its grace period). It returns
	// an error wrapping ErrUnknownKey otherwise.
	VerifyingKey(ctx context.Context, merchant, keyID string, at time.Time) (crypto.PublicKey, error)
}

// NonceStore remembers nonces for the replay window.
type NonceStore interface {
	// Claim records nonce for merchant for ttl. It returns ErrReplay if the nonce
	// was already claimed, and an error wrapping ErrUnavailable if the store could
	// not answer with certainty (unreachable, timeout).
	Claim(ctx context.Context, merchant, nonce string, ttl time.Duration) error
}

// PlatformKeys supplies Quill's response-signing key.
type PlatformKeys interface {
	// SigningKey returns the current platform key id (the serial clients select
	// the verification key by) and its signer.
	SigningKey(ctx context.Context) (serial string, key crypto.Signer, err error)
}

// ResponseSignature is the set of Wechatpay-* headers on a response.
type ResponseSignature struct {
	Timestamp string // Wechatpay-Timestamp (Unix seconds)
	Nonce     string // Wechatpay-Nonce
	Serial    string // Wechatpay-Serial
	Signature string // Wechatpay-Signature (base64)
}
