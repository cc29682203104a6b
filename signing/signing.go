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
	// ErrCoverage means a scheme B signature does not cover a component Quill
	// requires (@method, the target, content-digest for a body) or covers one
	// the message does not have.
	ErrCoverage = errors.New("signing: signature does not cover the required components")
	// ErrBadDigest means Content-Digest is missing or does not match the raw body.
	ErrBadDigest = errors.New("signing: content digest does not match the body")
	// ErrAlgorithm means a scheme B signature's alg parameter disagrees with the
	// algorithm its key was registered with.
	ErrAlgorithm = errors.New("signing: algorithm does not match the key's registration")
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
	Authorization string // scheme A: the Authorization header

	// Scheme B (RFC 9421) evidence. Label is the verified signature's label;
	// SignatureInput and Signature are that label's members of the two fields,
	// serialized (e.g. `sig1=("@method" …);created=…` and `sig1=:…:`);
	// SignatureBase is the exact signature base the signature covers, so an
	// auditor can re-verify it with the key and check the body against its
	// content-digest line; Algorithm is the registered algorithm.
	Label          string
	SignatureInput string
	Signature      string
	SignatureBase  string
	Algorithm      Algorithm
}

// KeyResolver finds merchants' verification keys.
type KeyResolver interface {
	// VerifyingKey returns the public key merchant registered under keyID if it is
	// usable at t (active, or retiring and still in its grace period). It returns
	// an error wrapping ErrUnknownKey otherwise.
	VerifyingKey(ctx context.Context, merchant, keyID string, at time.Time) (crypto.PublicKey, error)
}

// Algorithm is an RFC 9421 signature algorithm name. It is fixed by a key's
// registration, never chosen by the request.
type Algorithm string

// Scheme B algorithms (the HTTP Signature Algorithms registry names).
const (
	RSAPKCS1SHA256  Algorithm = "rsa-v1_5-sha256"
	RSAPSSSHA512    Algorithm = "rsa-pss-sha512" // salt length 64
	ECDSAP256SHA256 Algorithm = "ecdsa-p256-sha256"
	Ed25519         Algorithm = "ed25519"
)

// RegisteredKey is a merchant's verification key with the algorithm it was
// registered for.
type RegisteredKey struct {
	Public    crypto.PublicKey
	Algorithm Algorithm
}

// RegisteredKeyResolver finds merchants' scheme B keys. It is separate from
// KeyResolver because scheme B needs the registered algorithm too.
type RegisteredKeyResolver interface {
	// RegisteredKey returns the key merchant registered under keyID, with its
	// algorithm, if it is usable at t (active, or retiring and still in its
	// grace period). It returns an error wrapping ErrUnknownKey otherwise.
	RegisteredKey(ctx context.Context, merchant, keyID string, at time.Time) (RegisteredKey, error)
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
