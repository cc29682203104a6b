package quillclient

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/quillpay/quill/signing"
)

// DefaultResponseWindow is how far a response's Wechatpay-Timestamp may be from
// the client's clock, either way, when SchemeA.Window is zero. It matches the
// server's request window and the WeChat Pay SDKs.
const DefaultResponseWindow = 300 * time.Second

// SchemeA signs requests the WeChat Pay APIv3 way and verifies the
// Wechatpay-* response signatures (see docs/PROTOCOL.md):
//
//	Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"
//
// with an RSASSA-PKCS1-v1_5 SHA-256 signature over
// "METHOD\nTARGET\nTIMESTAMP\nNONCE\nBODY\n". It implements Signer and
// ResponseVerifier. Build it with NewSchemeA (or let NewTransport do it from
// WithMerchant, WithKeyID and WithPrivateKey); it is safe for concurrent use.
// Printing a SchemeA never shows the key.
type SchemeA struct {
	merchant string
	keyID    string
	key      crypto.Signer
	now      func() time.Time
	rand     io.Reader
	window   time.Duration
}

// NewSchemeA returns a scheme A signer for merchant (mchid) with its RSA key
// (2048 bits or more) registered under keyID (serial_no). Of opts it uses
// WithClock (default time.Now), WithNonceSource (default crypto/rand.Reader)
// and WithResponseWindow (default DefaultResponseWindow). It checks the inputs
// so that every request it signs will parse on the server.
func NewSchemeA(merchant, keyID string, key crypto.Signer, opts ...Option) (*SchemeA, error) {
	var o settings
	for _, opt := range opts {
		opt(&o)
	}
	if key == nil {
		return nil, errors.New("quillclient: scheme A needs the merchant's private key")
	}
	pub, ok := key.Public().(*rsa.PublicKey)
	if !ok || pub.Size() < 2048/8 {
		return nil, errors.New("quillclient: scheme A needs an RSA key of 2048 bits or more")
	}
	if o.alg != "" && o.alg != signing.RSAPKCS1SHA256 {
		return nil, fmt.Errorf("quillclient: scheme A signs with rsa-v1_5-sha256 only, not %s (WithAlgorithm is for scheme B)", o.alg)
	}
	s := &SchemeA{merchant: merchant, keyID: keyID, key: key, now: o.now, rand: o.rand, window: o.window}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.window <= 0 {
		s.window = DefaultResponseWindow
	}
	// A trial header catches a bad merchant id or key id now rather than on
	// the first request: the server's parser is the judge.
	trial := signing.Credentials{Merchant: merchant, Nonce: "0", Timestamp: "0", Serial: keyID, Signature: "x"}
	if _, err := signing.ParseAuthorization(trial.Header()); err != nil {
		return nil, fmt.Errorf("quillclient: merchant id or key id: %w", err)
	}
	return s, nil
}

// Merchant returns the merchant id (mchid) s signs for.
func (s *SchemeA) Merchant() string { return s.merchant }

// KeyID returns the merchant key id (serial_no) s signs with.
func (s *SchemeA) KeyID() string { return s.keyID }

// Authorization returns a fresh Authorization header value for a request:
// method, target (the path and query exactly as they will be sent) and body
// (the exact bytes). Each call draws a new nonce and reads the clock. Use it to
// sign ahead of time and send with Presigned.
func (s *SchemeA) Authorization(method, target string, body []byte) (string, error) {
	nonce, err := signing.NewNonce(s.rand)
	if err != nil {
		return "", fmt.Errorf("quillclient: %w", err)
	}
	return signing.SignRequest(s.key, s.merchant, s.keyID, method, target, body, s.now(), nonce)
}

// SignRequest sets req's Authorization header over its method, its
// request-target as it goes on the wire (req.URL.RequestURI()) and body.
func (s *SchemeA) SignRequest(req *http.Request, body []byte) error {
	auth, err := s.Authorization(req.Method, req.URL.RequestURI(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	return nil
}

// VerifyResponse checks the Wechatpay-Signature of res over
// "TIMESTAMP\nNONCE\nBODY\n" with the platform key named by Wechatpay-Serial,
// and that Wechatpay-Timestamp is within the window of the clock. It does not
// remember response nonces.
func (s *SchemeA) VerifyResponse(ctx context.Context, _ *http.Request, res *http.Response, body []byte, keys KeySource) error {
	sig, k, err := s.responseKey(ctx, res, keys)
	if err != nil {
		return err
	}
	return signing.VerifyResponse(k.Public, sig, body)
}

// responseKey reads res's Wechatpay-* signature, checks its timestamp is in
// the window and finds the platform key it names.
func (s *SchemeA) responseKey(ctx context.Context, res *http.Response, keys KeySource) (signing.ResponseSignature, PlatformKey, error) {
	sig := signing.ResponseSignature{
		Timestamp: res.Header.Get("Wechatpay-Timestamp"),
		Nonce:     res.Header.Get("Wechatpay-Nonce"),
		Serial:    res.Header.Get("Wechatpay-Serial"),
		Signature: res.Header.Get("Wechatpay-Signature"),
	}
	if sig.Signature == "" || sig.Serial == "" || sig.Timestamp == "" || sig.Nonce == "" {
		return sig, PlatformKey{}, errors.New("response has no complete Wechatpay-* signature headers")
	}
	ts, err := strconv.ParseInt(sig.Timestamp, 10, 64)
	if err != nil {
		return sig, PlatformKey{}, errors.New("Wechatpay-Timestamp is not decimal Unix seconds")
	}
	if skew := s.now().Unix() - ts; skew > int64(s.window/time.Second) || -skew > int64(s.window/time.Second) {
		return sig, PlatformKey{}, fmt.Errorf("%w: %d s from the client clock", ErrStaleResponse, skew)
	}
	k, err := keys.PlatformKey(ctx, sig.Serial)
	return sig, k, err
}

// Format prints s without its key, whatever the verb.
func (s SchemeA) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "quillclient.SchemeA{merchant: %q, key id: %q, key: [redacted]}", s.merchant, s.keyID)
}

// String describes s without its key.
func (s SchemeA) String() string { return fmt.Sprint(s) }
