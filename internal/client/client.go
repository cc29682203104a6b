// Package client is a merchant-side Quill client: it signs each request with
// scheme A (WeChat Pay APIv3 style) over mutual TLS and verifies the platform's
// response signature, choosing the verification key by Wechatpay-Serial from
// GET /v1/certificates. quillctl, the end-to-end tests and the load generator
// use it; it is also the reference for merchant developers writing their own.
package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/signing"
)

// ErrUnverified means a response's platform signature did not verify.
var ErrUnverified = errors.New("client: response signature not verified")

// Client sends signed requests for one merchant.
type Client struct {
	BaseURL  string // e.g. https://127.0.0.1:8443
	Merchant string
	KeyID    string        // the merchant key's serial_no
	Key      crypto.Signer // the merchant's RSA signing key
	HTTP     *http.Client  // with the mTLS client certificate configured
	Now      func() time.Time
	Rand     io.Reader

	mu       sync.Mutex
	platform map[string]crypto.PublicKey // by serial
}

// Response is a response with the outcome of its signature check.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Verified is nil when the Wechatpay-Signature verified with the platform
	// key named by Wechatpay-Serial, and says why not otherwise.
	Verified error
}

// Do signs and sends method target (path and query, exactly as sent) with body.
// A transport error is returned; an HTTP error status is not an error.
func (c *Client) Do(ctx context.Context, method, target string, body []byte) (*Response, error) {
	auth, err := c.Authorization(method, target, body)
	if err != nil {
		return nil, err
	}
	return c.Send(ctx, method, target, body, auth)
}

// Send sends a request already signed with auth (see Authorization) and
// verifies the response's signature, as Do does.
func (c *Client) Send(ctx context.Context, method, target string, body []byte, auth string) (*Response, error) {
	resp, err := c.send(ctx, method, target, body, auth)
	if err != nil {
		return nil, err
	}
	resp.Verified = c.verify(ctx, resp)
	return resp, nil
}

// Authorization returns a fresh Authorization header for the request, for
// callers that send it themselves.
func (c *Client) Authorization(method, target string, body []byte) (string, error) {
	now, rnd := time.Now, c.Rand
	if c.Now != nil {
		now = c.Now
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	nonce, err := signing.NewNonce(rnd)
	if err != nil {
		return "", err
	}
	return signing.SignRequest(c.Key, c.Merchant, c.KeyID, method, target, body, now(), nonce)
}

func (c *Client) send(ctx context.Context, method, target string, body []byte, auth string) (*Response, error) {
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+target, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

func (c *Client) verify(ctx context.Context, r *Response) error {
	sig := signing.ResponseSignature{
		Timestamp: r.Header.Get("Wechatpay-Timestamp"),
		Nonce:     r.Header.Get("Wechatpay-Nonce"),
		Serial:    r.Header.Get("Wechatpay-Serial"),
		Signature: r.Header.Get("Wechatpay-Signature"),
	}
	if sig.Signature == "" {
		return fmt.Errorf("%w: response is not signed", ErrUnverified)
	}
	pub, err := c.platformKey(ctx, sig.Serial)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	if err := signing.VerifyResponse(pub, sig, r.Body); err != nil {
		return fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	return nil
}

// platformKey returns the platform key serial, fetching GET /v1/certificates
// when serial is not known yet (the first response, or after a rotation). The
// listing's own response must verify with a key it lists; the trust anchor is
// the server's TLS certificate.
func (c *Client) platformKey(ctx context.Context, serial string) (crypto.PublicKey, error) {
	c.mu.Lock()
	pub, ok := c.platform[serial]
	c.mu.Unlock()
	if ok {
		return pub, nil
	}
	auth, err := c.Authorization(http.MethodGet, "/v1/certificates", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/certificates", nil, auth)
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("fetch platform keys: status %d", resp.Status)
	}
	var list struct {
		Data []struct {
			SerialNo  string `json:"serial_no"`
			PublicKey string `json:"public_key"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.Body, &list); err != nil {
		return nil, fmt.Errorf("fetch platform keys: %w", err)
	}
	found := make(map[string]crypto.PublicKey, len(list.Data))
	for _, d := range list.Data {
		k, err := keys.ParsePublicKeyPEM([]byte(d.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("platform key %s: %w", d.SerialNo, err)
		}
		found[d.SerialNo] = k
	}
	listSig := signing.ResponseSignature{
		Timestamp: resp.Header.Get("Wechatpay-Timestamp"),
		Nonce:     resp.Header.Get("Wechatpay-Nonce"),
		Serial:    resp.Header.Get("Wechatpay-Serial"),
		Signature: resp.Header.Get("Wechatpay-Signature"),
	}
	lk, ok := found[listSig.Serial]
	if !ok {
		return nil, errors.New("platform key listing signed by an unlisted key")
	}
	if err := signing.VerifyResponse(lk, listSig, resp.Body); err != nil {
		return nil, fmt.Errorf("platform key listing: %w", err)
	}
	c.mu.Lock()
	if c.platform == nil {
		c.platform = map[string]crypto.PublicKey{}
	}
	for s, k := range found {
		c.platform[s] = k
	}
	pub, ok = c.platform[serial]
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no platform key with serial %q", serial)
	}
	return pub, nil
}
