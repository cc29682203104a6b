package quillclient

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/signing"
)

// SchemeB signs requests with RFC 9421 HTTP Message Signatures and verifies
// Quill's RFC 9421 response signatures (see docs/PROTOCOL.md, scheme B). A
// request carries
//
//	Signature-Input: sig1=("@method" "@target-uri" "content-type" "content-digest");created=…;keyid="…";nonce="…";alg="…"
//	Signature: sig1=:<base64>:
//	Content-Digest: sha-256=:<base64 SHA-256 of the body>:
//
// covering the method, the full target URI as sent (scheme, Host and the raw
// path and query), Content-Type when the request has one and Content-Digest
// when it has a body. The merchant is the one the mTLS client certificate
// names; only the key id goes in the signature. It implements Signer and
// ResponseVerifier; build it with NewSchemeB (or NewTransport with
// WithSchemeB). It is safe for concurrent use. Printing a SchemeB never shows
// the key.
type SchemeB struct {
	signer signing.RequestSigner
	now    func() time.Time
	window time.Duration
}

// NewSchemeB returns a scheme B signer for the merchant key registered with
// Quill under keyID. The key's type decides the algorithm: ed25519 for
// Ed25519, ecdsa-p256-sha256 for ECDSA P-256, and rsa-v1_5-sha256 for RSA
// (2048 bits or more) unless WithAlgorithm(signing.RSAPSSSHA512) says the RSA
// key is registered for rsa-pss-sha512. The algorithm must be the one the key
// was registered with: Quill refuses any other. Of opts it uses WithAlgorithm,
// WithClock (default time.Now), WithNonceSource (default crypto/rand.Reader)
// and WithResponseWindow (default DefaultResponseWindow, applied to the
// response signature's created parameter).
func NewSchemeB(keyID string, key crypto.Signer, opts ...Option) (*SchemeB, error) {
	var o settings
	for _, opt := range opts {
		opt(&o)
	}
	if key == nil {
		return nil, errors.New("quillclient: scheme B needs the merchant's private key")
	}
	if err := checkKeyID(keyID); err != nil {
		return nil, err
	}
	alg, err := requestAlgorithm(key.Public(), o.alg)
	if err != nil {
		return nil, err
	}
	s := &SchemeB{
		signer: signing.RequestSigner{Key: key, KeyID: keyID, Algorithm: alg, Now: o.now, Rand: o.rand},
		now:    o.now,
		window: o.window,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.signer.Rand == nil {
		s.signer.Rand = rand.Reader
	}
	if s.window <= 0 {
		s.window = DefaultResponseWindow
	}
	return s, nil
}

// checkKeyID refuses a key id that cannot be an RFC 8941 string (visible
// ASCII and space), so every signature parses on the server.
func checkKeyID(id string) error {
	if id == "" || len(id) > 256 {
		return errors.New("quillclient: key id must be 1-256 characters")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c > 0x7e {
			return errors.New("quillclient: key id must be printable ASCII")
		}
	}
	return nil
}

// requestAlgorithm is the algorithm pub signs with: want if it fits the key,
// else the key type's default.
func requestAlgorithm(pub crypto.PublicKey, want signing.Algorithm) (signing.Algorithm, error) {
	def, err := keys.AlgorithmOf(pub)
	if err != nil {
		return "", fmt.Errorf("quillclient: scheme B needs an Ed25519, ECDSA P-256 or RSA (2048+ bits) key: %w", err)
	}
	alg := signing.Algorithm(def)
	switch {
	case want == "" || want == alg:
		return alg, nil
	case want == signing.RSAPSSSHA512 && alg == signing.RSAPKCS1SHA256:
		return want, nil
	}
	return "", fmt.Errorf("quillclient: a %s key cannot sign %s", alg, want)
}

// WithAlgorithm sets the RFC 9421 algorithm of the scheme B signer's key when
// the key type allows two: signing.RSAPSSSHA512 for an RSA key registered for
// rsa-pss-sha512 (the default for RSA is rsa-v1_5-sha256). Other key types
// have one algorithm, which WithAlgorithm may only repeat.
func WithAlgorithm(alg signing.Algorithm) Option { return func(s *settings) { s.alg = alg } }

// WithSchemeB makes NewTransport sign with RFC 9421 (SchemeB) instead of
// scheme A, from WithKeyID and WithPrivateKey (and WithAlgorithm). WithMerchant
// is not needed: Quill takes the merchant from the client certificate.
func WithSchemeB() Option { return func(s *settings) { s.schemeB = true } }

// KeyID returns the merchant key id s signs with.
func (s *SchemeB) KeyID() string { return s.signer.KeyID }

// Algorithm returns the RFC 9421 algorithm s signs with.
func (s *SchemeB) Algorithm() signing.Algorithm { return s.signer.Algorithm }

// SignRequest sets req's Signature-Input and Signature over its method, its
// target URI as it goes on the wire (req.URL's scheme, the Host sent and
// req.URL.RequestURI()), its Content-Type if set and, for a body, a
// Content-Digest (sha-256) it also sets. Each call draws a new nonce and
// reads the clock. To sign ahead of time, call it on the request and send the
// request with Presigned.
func (s *SchemeB) SignRequest(req *http.Request, body []byte) error {
	h, err := s.signer.Sign(messageRequest(req, body))
	if err != nil {
		return fmt.Errorf("quillclient: %w", err)
	}
	if h.ContentDigest != "" {
		req.Header.Set("Content-Digest", h.ContentDigest)
	}
	req.Header.Set("Signature-Input", h.SignatureInput)
	req.Header.Set("Signature", h.Signature)
	return nil
}

// messageRequest is req as it goes on the wire: the Host Go's transport sends
// (req.Host, else the URL's) and the request-target it writes.
func messageRequest(req *http.Request, body []byte) signing.MessageRequest {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	return signing.MessageRequest{
		Method: req.Method, Scheme: req.URL.Scheme, Authority: host,
		Target: req.URL.RequestURI(), Header: req.Header, Body: body,
	}
}

// VerifyResponse checks res's RFC 9421 signature with signing.VerifyMessageResponse:
// exactly one Signature-Input member names a platform key (looked up by its
// keyid through keys, so an unknown id costs one refetch); it covers @status,
// content-type (when present), content-digest and the request's own signature
// ("signature";key="sig1";req), so the response answers this request and no
// other; Content-Digest matches body; the signature verifies with the platform
// key, which must be Ed25519 or ECDSA P-256 (the key type decides the
// algorithm, and an alg parameter must agree); and created is within the
// window of the clock. Response nonces are not remembered.
func (s *SchemeB) VerifyResponse(ctx context.Context, req *http.Request, res *http.Response, body []byte, keys KeySource) error {
	return s.verify(ctx, req, res, body, nil, keys)
}

// verify is VerifyResponse for a body held in body or, when sum is not nil,
// known by its SHA-256 only (a streamed body).
func (s *SchemeB) verify(ctx context.Context, req *http.Request, res *http.Response, body, sum []byte, keys KeySource) error {
	var unknown error // the KeySource's own ErrUnknownKey, more precise than signing's
	lookup := func(id string) (signing.RegisteredKey, error) {
		k, err := keys.PlatformKey(ctx, id)
		if errors.Is(err, ErrUnknownKey) {
			unknown = err
			return signing.RegisteredKey{}, fmt.Errorf("%w: %w", signing.ErrUnknownKey, err)
		}
		if err != nil {
			return signing.RegisteredKey{}, err
		}
		alg, err := responseAlgorithm(k.Public)
		if err != nil {
			return signing.RegisteredKey{}, fmt.Errorf("%w: %q: %v", ErrUnknownKey, id, err)
		}
		return signing.RegisteredKey{Public: k.Public, Algorithm: alg}, nil
	}
	v, err := signing.VerifyMessageResponse(
		signing.MessageResponse{Status: res.StatusCode, Header: res.Header, Body: body, BodySHA256: sum},
		messageRequest(req, nil), lookup)
	if err != nil {
		if unknown != nil && errors.Is(err, signing.ErrUnknownKey) {
			return fmt.Errorf("%w (%w)", err, unknown)
		}
		return err
	}
	w := int64(s.window / time.Second)
	if skew := s.now().Unix() - v.Created.Unix(); skew > w || -skew > w {
		return fmt.Errorf("%w: created is %d s from the client clock", ErrStaleResponse, skew)
	}
	return nil
}

// responseAlgorithm is the algorithm of a scheme B platform key: Quill signs
// scheme B responses with Ed25519 or ECDSA P-256 only, never with the RSA keys
// it lists for scheme A.
func responseAlgorithm(pub crypto.PublicKey) (signing.Algorithm, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return signing.Ed25519, nil
	case *ecdsa.PublicKey:
		if p.Curve == elliptic.P256() {
			return signing.ECDSAP256SHA256, nil
		}
	}
	return "", fmt.Errorf("a %T platform key does not sign scheme B responses (Ed25519 or ECDSA P-256 do)", pub)
}

// Format prints s without its key, whatever the verb.
func (s SchemeB) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "quillclient.SchemeB{key id: %q, algorithm: %s, key: [redacted]}", s.signer.KeyID, s.signer.Algorithm)
}

// String describes s without its key.
func (s SchemeB) String() string { return fmt.Sprint(s) }
