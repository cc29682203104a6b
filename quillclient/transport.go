package quillclient

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/quillpay/quill/signing"
)

// DefaultMaxResponseBody is the largest response body the transport reads (and
// so can verify) when WithMaxResponseBody is not given.
const DefaultMaxResponseBody = 16 << 20

// Transport is an http.RoundTripper that signs every request to Quill and
// verifies every response's platform signature before handing it back. A
// response that does not verify is returned as a *ResponseError (matching
// ErrUnverified), never as a response. Build it with NewTransport and use it as
// an http.Client's Transport. It is safe for concurrent use.
type Transport struct {
	base     http.RoundTripper
	signer   Signer
	verifier ResponseVerifier
	keys     *keyCache
	keysURL  string // fixed listing URL; empty: derived from each request
	maxBody  int64
}

// An Option configures NewTransport.
type Option func(*settings)

type settings struct {
	base      http.RoundTripper
	merchant  string
	keyID     string
	key       crypto.Signer
	signer    Signer
	verifier  ResponseVerifier
	pinned    []PlatformKey
	now       func() time.Time
	rand      io.Reader
	keysURL   string
	interval  time.Duration
	maxBody   int64
	window    time.Duration
	alg       signing.Algorithm // scheme B: the RSA key's algorithm
	schemeB   bool              // build SchemeB rather than SchemeA
	hasScheme bool              // any of merchant, key id, key given
}

// WithBase sets the transport that carries the signed requests; it must
// present the merchant's mTLS client certificate and trust Quill's CA. Default:
// http.DefaultTransport (which presents no client certificate).
func WithBase(rt http.RoundTripper) Option { return func(s *settings) { s.base = rt } }

// WithMerchant sets the merchant id (scheme A mchid).
func WithMerchant(id string) Option {
	return func(s *settings) { s.merchant, s.hasScheme = id, true }
}

// WithKeyID sets the id of the merchant's signing key as registered with Quill
// (scheme A serial_no, scheme B keyid; not the platform's key id).
func WithKeyID(id string) Option { return func(s *settings) { s.keyID, s.hasScheme = id, true } }

// WithPrivateKey sets the merchant's request-signing key (RSA for scheme A;
// RSA, ECDSA P-256 or Ed25519 for scheme B).
// Any crypto.Signer works, so the key may live in an HSM or a KMS.
func WithPrivateKey(k crypto.Signer) Option {
	return func(s *settings) { s.key, s.hasScheme = k, true }
}

// WithSigner signs with sig instead of the scheme A signer that WithMerchant,
// WithKeyID and WithPrivateKey build (which must then not be given). If sig
// also implements ResponseVerifier it verifies the responses too.
func WithSigner(sig Signer) Option { return func(s *settings) { s.signer = sig } }

// WithResponseVerifier verifies responses with v instead of the signer's own
// verifier.
func WithResponseVerifier(v ResponseVerifier) Option { return func(s *settings) { s.verifier = v } }

// WithPinnedKeys makes ks the only platform keys trusted: the transport never
// fetches GET /v1/certificates, and a response naming another key id fails
// with ErrUnknownKey. Pin when the keys arrive out of band; remember to add the
// next key before Quill rotates to it.
func WithPinnedKeys(ks ...PlatformKey) Option {
	return func(s *settings) { s.pinned = append(s.pinned, ks...) }
}

// WithClock sets the clock for request timestamps, the response window and the
// refetch interval (default time.Now). For tests.
func WithClock(now func() time.Time) Option { return func(s *settings) { s.now = now } }

// WithNonceSource sets where request nonces come from (default crypto/rand).
// For tests: a predictable source makes nonces predictable and requests
// replayable. The source must be safe for concurrent use if requests are.
func WithNonceSource(r io.Reader) Option { return func(s *settings) { s.rand = r } }

// WithKeysURL fetches the platform keys from this absolute URL instead of
// CertificatesPath on the host of each request.
func WithKeysURL(u string) Option { return func(s *settings) { s.keysURL = u } }

// WithRefetchInterval sets the least time between two key fetches
// (default DefaultRefetchInterval).
func WithRefetchInterval(d time.Duration) Option { return func(s *settings) { s.interval = d } }

// WithMaxResponseBody sets the largest response body read and verified
// (default DefaultMaxResponseBody); a larger one fails with ErrResponseTooLarge.
func WithMaxResponseBody(n int64) Option { return func(s *settings) { s.maxBody = n } }

// WithResponseWindow sets how far a response timestamp may be from the clock
// (default DefaultResponseWindow). It applies to the scheme A or B signer that
// NewTransport builds.
func WithResponseWindow(d time.Duration) Option { return func(s *settings) { s.window = d } }

// NewTransport returns a signing, verifying transport. It needs a signer:
// WithMerchant, WithKeyID and WithPrivateKey (scheme A), WithSchemeB with
// WithKeyID and WithPrivateKey (RFC 9421), or WithSigner;
// and a response verifier: the signer's own or WithResponseVerifier.
func NewTransport(opts ...Option) (*Transport, error) {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	switch {
	case s.signer != nil && (s.hasScheme || s.schemeB):
		return nil, errors.New("quillclient: WithSigner excludes WithMerchant, WithKeyID, WithPrivateKey and WithSchemeB")
	case s.schemeB:
		b, err := NewSchemeB(s.keyID, s.key, opts...)
		if err != nil {
			return nil, err
		}
		s.signer = b
	case s.signer == nil:
		a, err := NewSchemeA(s.merchant, s.keyID, s.key, opts...)
		if err != nil {
			return nil, err
		}
		s.signer = a
	}
	if s.verifier == nil {
		v, ok := s.signer.(ResponseVerifier)
		if !ok {
			return nil, errors.New("quillclient: the signer does not verify responses; give WithResponseVerifier")
		}
		s.verifier = v
	}
	if s.base == nil {
		s.base = http.DefaultTransport
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.interval <= 0 {
		s.interval = DefaultRefetchInterval
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxResponseBody
	}
	if s.keysURL != "" {
		u, err := url.Parse(s.keysURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("quillclient: keys URL %q is not an absolute URL", s.keysURL)
		}
	}
	t := &Transport{base: s.base, signer: s.signer, verifier: s.verifier, keysURL: s.keysURL, maxBody: s.maxBody}
	t.keys = &keyCache{interval: s.interval, now: s.now, fetch: t.fetchKeys, sets: map[string]*keySet{}}
	if s.pinned != nil {
		t.keys.pinned = make(map[string]PlatformKey, len(s.pinned))
		for _, k := range s.pinned {
			if k.ID == "" || k.Public == nil {
				return nil, errors.New("quillclient: a pinned key needs an id and a public key")
			}
			t.keys.pinned[k.ID] = k
		}
	}
	return t, nil
}

type presignedKey struct{}

// Presigned marks req as already signed (for example with
// SchemeA.Authorization, ahead of time): the transport sends its headers as
// they are and still verifies the response. The body must be exactly the
// bytes that were signed.
func Presigned(req *http.Request) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), presignedKey{}, true))
}

// RoundTrip signs req over its exact body, sends it through the base
// transport and verifies the response. It reads req.Body once and hands the
// base transport a copy of the request whose Body and GetBody both yield those
// same bytes, so a retry resends them unchanged; req itself is not modified.
// It returns an error if signing or sending fails, and a *ResponseError if
// the response does not verify. The returned response's Body holds the
// verified bytes.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := drain(req)
	if err != nil {
		return nil, fmt.Errorf("quillclient: read request body: %w", err)
	}
	out := req.Clone(req.Context())
	if body == nil {
		out.Body, out.GetBody, out.ContentLength = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }, 0
	} else {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		out.ContentLength = int64(len(body))
		out.TransferEncoding = nil // the length is known now
	}
	if presigned, _ := req.Context().Value(presignedKey{}).(bool); !presigned {
		if err := t.signer.SignRequest(out, body); err != nil {
			return nil, err
		}
	}
	res, err := t.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	rb, err := readAll(res.Body, t.maxBody)
	res.Body.Close()
	if errors.Is(err, ErrResponseTooLarge) {
		return nil, &ResponseError{StatusCode: res.StatusCode, RequestID: res.Header.Get("Request-ID"), Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("quillclient: read response: %w", err)
	}
	if err := t.verifier.VerifyResponse(req.Context(), out, res, rb, t.keys.source(t.listingURL(out.URL))); err != nil {
		return nil, &ResponseError{StatusCode: res.StatusCode, RequestID: res.Header.Get("Request-ID"), Err: err}
	}
	res.Body = io.NopCloser(bytes.NewReader(rb))
	res.ContentLength = int64(len(rb))
	return res, nil
}

// CloseIdleConnections closes the base transport's idle connections, if it
// has any (http.Client.CloseIdleConnections calls it).
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// drain reads and closes req.Body; nil means no body (or an empty one, which
// every scheme signs the same way).
func drain(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	b, err := io.ReadAll(req.Body)
	if err != nil || len(b) == 0 {
		return nil, err
	}
	return b, nil
}

// listingURL is where the platform keys for a response to u are listed.
func (t *Transport) listingURL(u *url.URL) string {
	if t.keysURL != "" {
		return t.keysURL
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: CertificatesPath}).String()
}

// Format prints t without key material.
func (t Transport) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "quillclient.Transport{signer: %T}", t.signer)
}

// String describes t without key material.
func (t Transport) String() string { return fmt.Sprint(t) }
