package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"time"
)

// ResponseSigner signs responses with Quill's platform key, producing the
// Wechatpay-* headers. Keys is required; Now defaults to time.Now and Rand (the
// nonce source) to crypto/rand.Reader. It is safe for concurrent use if Keys and
// Rand are.
type ResponseSigner struct {
	Keys PlatformKeys
	Now  func() time.Time
	Rand io.Reader
}

// Sign signs body (the exact response bytes) over
//
//	TIMESTAMP\nNONCE\nBODY\n
//
// (a body-less response signs "TIMESTAMP\nNONCE\n\n") with the current platform
// key. The algorithm follows the key: RSASSA-PKCS1-v1_5 with SHA-256 for RSA (the
// only one WeChat-style clients verify), ECDSA P-256 with SHA-256 (ASN.1 DER
// signature) or Ed25519 over the message itself. The nonce is 32 hexadecimal
// characters from Rand. Errors from Keys are returned wrapped.
func (s *ResponseSigner) Sign(ctx context.Context, body []byte) (ResponseSignature, error) {
	sign, err := s.Prepare(ctx)
	if err != nil {
		return ResponseSignature{}, err
	}
	return sign(body)
}

// Prepare fetches the current platform key and returns the function that signs
// one response body with it, as Sign does. A server calls Prepare before it does
// the work a response reports, so a missing platform key refuses the request
// up front instead of leaving committed work with an unsignable answer. Errors
// from Keys are returned wrapped; so is an unsupported key type.
func (s *ResponseSigner) Prepare(ctx context.Context) (func(body []byte) (ResponseSignature, error), error) {
	serial, key, err := s.Keys.SigningKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("signing: platform key: %w", err)
	}
	var digest func(msg []byte) ([]byte, crypto.SignerOpts)
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		digest = sha256Digest
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("signing: platform ECDSA key must be P-256")
		}
		digest = sha256Digest
	case ed25519.PublicKey:
		digest = func(msg []byte) ([]byte, crypto.SignerOpts) { return msg, crypto.Hash(0) }
	default:
		return nil, fmt.Errorf("signing: unsupported platform key type %T", pub)
	}
	return func(body []byte) (ResponseSignature, error) {
		ts, nonce, err := s.stamp()
		if err != nil {
			return ResponseSignature{}, err
		}
		d, opts := digest(responseMessage(ts, nonce, body))
		sig, err := key.Sign(rand.Reader, d, opts)
		if err != nil {
			return ResponseSignature{}, fmt.Errorf("signing: sign response: %w", err)
		}
		return ResponseSignature{
			Timestamp: ts,
			Nonce:     nonce,
			Serial:    serial,
			Signature: base64.StdEncoding.EncodeToString(sig),
		}, nil
	}, nil
}

// ResponseStream signs one response whose body it is given in pieces
// (Write), for a body too large to hold: Sign then returns the signature
// ResponseSigner.Sign would make over the whole body. Get one from
// PrepareStream; it is not safe for concurrent use.
type ResponseStream struct {
	sig ResponseSignature
	h   hash.Hash
	key crypto.Signer
}

// PrepareStream is Prepare for streamed bodies: it fetches the current
// platform key and returns the function that starts one response's
// signature, timestamp and nonce drawn now. Only a key that signs a digest
// can sign a body it never holds: RSA (what WeChat-style clients verify) or
// ECDSA P-256; an Ed25519 platform key is an error, as are the errors of
// Prepare.
func (s *ResponseSigner) PrepareStream(ctx context.Context) (func() (*ResponseStream, error), error) {
	serial, key, err := s.Keys.SigningKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("signing: platform key: %w", err)
	}
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("signing: platform ECDSA key must be P-256")
		}
	default:
		return nil, fmt.Errorf("signing: a streamed response needs an RSA or ECDSA P-256 platform key, not %T", pub)
	}
	return func() (*ResponseStream, error) {
		ts, nonce, err := s.stamp()
		if err != nil {
			return nil, err
		}
		st := &ResponseStream{sig: ResponseSignature{Timestamp: ts, Nonce: nonce, Serial: serial}, h: sha256.New(), key: key}
		st.h.Write([]byte(ts + "\n" + nonce + "\n"))
		return st, nil
	}, nil
}

// Write adds p to the body; it never fails.
func (st *ResponseStream) Write(p []byte) (int, error) { return st.h.Write(p) }

// Sign returns the signature over the body written so far. Call it once.
func (st *ResponseStream) Sign() (ResponseSignature, error) {
	st.h.Write([]byte{'\n'})
	sig, err := st.key.Sign(rand.Reader, st.h.Sum(nil), crypto.SHA256)
	if err != nil {
		return ResponseSignature{}, fmt.Errorf("signing: sign response: %w", err)
	}
	st.sig.Signature = base64.StdEncoding.EncodeToString(sig)
	return st.sig, nil
}

// ResponseCheck verifies a scheme A response signature over a body it is
// given in pieces (Write), as a client streaming a large response does: the
// same check as VerifyResponse, in constant memory. Only RSA and ECDSA
// platform keys can be checked this way.
type ResponseCheck struct {
	sig ResponseSignature
	h   hash.Hash
}

// NewResponseCheck starts checking sig over a body to be written.
func NewResponseCheck(sig ResponseSignature) *ResponseCheck {
	c := &ResponseCheck{sig: sig, h: sha256.New()}
	c.h.Write([]byte(sig.Timestamp + "\n" + sig.Nonce + "\n"))
	return c
}

// Write adds p to the body; it never fails.
func (c *ResponseCheck) Write(p []byte) (int, error) { return c.h.Write(p) }

// Verify checks the signature over the body written, with pub (the platform
// key selected by the signature's serial). It returns an error wrapping
// ErrBadSignature as VerifyResponse does. Call it once.
func (c *ResponseCheck) Verify(pub crypto.PublicKey) error {
	raw, err := base64.StdEncoding.DecodeString(c.sig.Signature)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", ErrBadSignature)
	}
	c.h.Write([]byte{'\n'})
	d := c.h.Sum(nil)
	var ok bool
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d, raw) == nil
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(pub, d, raw)
	default:
		return fmt.Errorf("%w: a streamed response cannot be checked with a %T key", ErrBadSignature, pub)
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// stamp draws a response's timestamp and nonce.
func (s *ResponseSigner) stamp() (string, string, error) {
	r := s.Rand
	if r == nil {
		r = rand.Reader
	}
	nonce, err := NewNonce(r)
	if err != nil {
		return "", "", err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return strconv.FormatInt(now().Unix(), 10), nonce, nil
}

func sha256Digest(msg []byte) ([]byte, crypto.SignerOpts) {
	d := sha256.Sum256(msg)
	return d[:], crypto.SHA256
}

func responseMessage(ts, nonce string, body []byte) []byte {
	b := make([]byte, 0, len(ts)+len(nonce)+len(body)+3)
	b = append(b, ts...)
	b = append(b, '\n')
	b = append(b, nonce...)
	b = append(b, '\n')
	b = append(b, body...)
	return append(b, '\n')
}

// VerifyResponse checks a response signature, as a client does: pub is the
// platform key the client selected by sig.Serial and body the exact response
// bytes. It returns an error wrapping ErrBadSignature if the signature does not
// verify or is not base64, and nil otherwise. It does not check sig.Timestamp's
// freshness; a client should also reject responses outside its own window.
func VerifyResponse(pub crypto.PublicKey, sig ResponseSignature, body []byte) error {
	raw, err := base64.StdEncoding.DecodeString(sig.Signature)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", ErrBadSignature)
	}
	msg := responseMessage(sig.Timestamp, sig.Nonce, body)
	var ok bool
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], raw) == nil
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		ok = ecdsa.VerifyASN1(pub, d[:], raw)
	case ed25519.PublicKey:
		ok = len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, raw)
	default:
		return fmt.Errorf("%w: unsupported key type %T", ErrBadSignature, pub)
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
