package signing_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/quillpay/quill/signing"
)

// verifiedB verifies a fresh scheme B request and returns it with its Verified.
func verifiedB(t *testing.T, f *bFixture, seed byte) (signing.MessageRequest, signing.Verified) {
	t.Helper()
	r := f.signed(t, signing.Ed25519, bRequest(payBody), seed)
	v, err := f.v.Verify(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return r, v
}

func platformLookup(keys map[string]signing.RegisteredKey) func(string) (signing.RegisteredKey, error) {
	return func(id string) (signing.RegisteredKey, error) {
		if k, ok := keys[id]; ok {
			return k, nil
		}
		return signing.RegisteredKey{}, fmt.Errorf("%w: %s", signing.ErrUnknownKey, id)
	}
}

func TestMessageResponseRoundTrip(t *testing.T) {
	f := newBFixture(t)
	req, verified := verifiedB(t, f, 1)
	other, _ := verifiedB(t, f, 2)
	body := []byte(`{"order_id":"ORD000000000001","status":"succeeded"}`)
	for _, k := range []struct {
		name string
		key  crypto.Signer
		alg  signing.Algorithm
	}{
		{"ed25519", loadKey(t, "test-key-ed25519.key.pem"), signing.Ed25519},
		{"p256", loadKey(t, "test-key-ecc-p256.key.pem"), signing.ECDSAP256SHA256},
	} {
		t.Run(k.name, func(t *testing.T) {
			s := &signing.MessageResponseSigner{Keys: platformKeys{"PB1", k.key}, Now: clock}
			resp := signing.MessageResponse{Status: 200, Header: map[string][]string{"Content-Type": {"application/json"}}, Body: body}
			mh, err := s.Sign(context.Background(), resp, verified)
			if err != nil {
				t.Fatal(err)
			}
			wantInput := `sig1=("@status" "content-type" "content-digest" "signature";key="sig1";req);created=1700000000;keyid="PB1";alg="` + string(k.alg) + `"`
			if mh.SignatureInput != wantInput || mh.ContentDigest != signing.ContentDigest(body) || !strings.HasPrefix(mh.Signature, "sig1=:") {
				t.Fatalf("headers %+v", mh)
			}
			resp.Header = map[string][]string{"Content-Type": {"application/json"}, "Content-Digest": {mh.ContentDigest},
				"Signature-Input": {mh.SignatureInput}, "Signature": {mh.Signature}}
			lookup := platformLookup(map[string]signing.RegisteredKey{"PB1": {Public: k.key.Public(), Algorithm: k.alg}})
			got, err := signing.VerifyMessageResponse(resp, req, lookup)
			if err != nil {
				t.Fatal(err)
			}
			if got != (signing.ResponseVerified{Label: "sig1", KeyID: "PB1", Created: now}) {
				t.Fatalf("ResponseVerified = %+v", got)
			}

			tests := []struct {
				name string
				resp signing.MessageResponse
				req  signing.MessageRequest
				keys func(string) (signing.RegisteredKey, error)
				want error
			}{
				{"body changed", withBody(resp, []byte(`{"status":"failed"}`)), req, lookup, signing.ErrBadDigest},
				{"status changed", withStatus(resp, 500), req, lookup, signing.ErrBadSignature},
				{"answer to another request", resp, other, lookup, signing.ErrBadSignature},
				{"request without the covered label", resp, setReqHeader(req, "Signature", strings.Replace(req.Header["Signature"][0], "sig1=", "sig9=", 1)), lookup, signing.ErrCoverage},
				{"unknown platform key", resp, req, platformLookup(nil), signing.ErrUnknownKey},
				{"wrong platform key", resp, req, platformLookup(map[string]signing.RegisteredKey{"PB1": {Public: freshKey(t, k.alg).Public(), Algorithm: k.alg}}), signing.ErrBadSignature},
				{"platform key of another algorithm", resp, req, platformLookup(map[string]signing.RegisteredKey{"PB1": {Public: k.key.Public(), Algorithm: signing.RSAPKCS1SHA256}}), signing.ErrAlgorithm},
				{"content-type changed", withHeader(resp, "Content-Type", "text/html"), req, lookup, signing.ErrBadSignature},
				{"unsigned", withHeader(resp, "Signature"), req, lookup, signing.ErrMalformed},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					_, err := signing.VerifyMessageResponse(tt.resp, tt.req, tt.keys)
					if !errors.Is(err, tt.want) {
						t.Fatalf("VerifyMessageResponse = %v, want %v", err, tt.want)
					}
				})
			}
		})
	}
}

func freshKey(t *testing.T, alg signing.Algorithm) crypto.Signer {
	t.Helper()
	if alg == signing.Ed25519 {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func setReqHeader(r signing.MessageRequest, name, val string) signing.MessageRequest {
	h := map[string][]string{}
	for k, v := range r.Header {
		h[k] = v
	}
	h[name] = []string{val}
	r.Header = h
	return r
}

func withBody(r signing.MessageResponse, b []byte) signing.MessageResponse { r.Body = b; return r }
func withStatus(r signing.MessageResponse, s int) signing.MessageResponse  { r.Status = s; return r }

func withHeader(r signing.MessageResponse, name string, vals ...string) signing.MessageResponse {
	h := map[string][]string{}
	for k, v := range r.Header {
		h[k] = v
	}
	if vals == nil {
		delete(h, name)
	} else {
		h[name] = vals
	}
	r.Header = h
	return r
}

func TestMessageResponseSignerRefuses(t *testing.T) {
	f := newBFixture(t)
	_, verified := verifiedB(t, f, 3)
	rsaSigner := &signing.MessageResponseSigner{Keys: platformKeys{"P-RSA", loadKey(t, "test-key-rsa.key.pem")}}
	if _, err := rsaSigner.Prepare(context.Background()); err == nil {
		t.Fatal("RSA platform key accepted for scheme B responses")
	}
	s := &signing.MessageResponseSigner{Keys: platformKeys{"PB1", loadKey(t, "test-key-ed25519.key.pem")}, Now: clock}
	if _, err := s.Sign(context.Background(), signing.MessageResponse{Status: 200}, signing.Verified{Scheme: signing.SchemeWeChatPay}); err == nil {
		t.Fatal("signed a scheme B response for a scheme A request")
	}
	// A body-less response without content-type still covers the digest of
	// the empty body and the request's signature.
	mh, err := s.Sign(context.Background(), signing.MessageResponse{Status: 204}, verified)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mh.SignatureInput, `sig1=("@status" "content-digest" "signature";key="sig1";req)`) ||
		mh.ContentDigest != "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:" {
		t.Fatalf("headers %+v", mh)
	}
}

// TestBindingOf: a refusal of a request whose signature did not verify is
// bound to the request's Signature as far as it can be read, and a client
// verifies the bound case like any response.
func TestBindingOf(t *testing.T) {
	f := newBFixture(t)
	req := f.signed(t, signing.Ed25519, bRequest(payBody), 9)
	edKey := loadKey(t, "test-key-ed25519.key.pem")
	s := &signing.MessageResponseSigner{Keys: platformKeys{"PB1", edKey}, Now: clock}
	lookup := platformLookup(map[string]signing.RegisteredKey{"PB1": {Public: edKey.Public(), Algorithm: signing.Ed25519}})
	withSig := func(sigInput, sig string) map[string][]string {
		h := map[string][]string{}
		if sigInput != "" {
			h["Signature-Input"] = []string{sigInput}
		}
		if sig != "" {
			h["Signature"] = []string{sig}
		}
		return h
	}
	sigValue := req.Header["Signature"][0]
	for _, c := range []struct {
		name      string
		header    map[string][]string
		label     string
		component string // the request binding in the response's Signature-Input
		verifies  bool   // by VerifyMessageResponse, as Quill's clients do
	}{
		{"as signed", req.Header, "sig1", `"signature";key="sig1";req`, true},
		{"input malformed", withSig(`sig1=("@method"`, sigValue), "sig1", `"signature";key="sig1";req`, true},
		{"input names another label first", withSig(`proxy=("@method");keyid="x", sig1=("@method")`, `proxy=:AAAA:, sig1=`+sigValue[len("sig1="):]), "proxy", `"signature";key="proxy";req`, true},
		{"signature malformed", withSig(`sig1=("@method")`, "sig1=:not base64"), "", `"signature";req`, false},
		{"no signature field", withSig(`sig1=("@method")`, ""), "", `"content-digest")`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := signing.BindingOf(c.header)
			if b.Scheme != signing.SchemeHTTPSig || b.Label != c.label {
				t.Fatalf("binding %+v, want label %q", b, c.label)
			}
			resp := signing.MessageResponse{Status: 401, Header: map[string][]string{"Content-Type": {"application/problem+json"}}, Body: []byte(`{"code":"signature_invalid"}`)}
			mh, err := s.Sign(context.Background(), resp, b)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(mh.SignatureInput, c.component) {
				t.Fatalf("Signature-Input %q lacks %s", mh.SignatureInput, c.component)
			}
			resp.Header["Signature-Input"] = []string{mh.SignatureInput}
			resp.Header["Signature"] = []string{mh.Signature}
			resp.Header["Content-Digest"] = []string{mh.ContentDigest}
			base, err := signing.ResponseSignatureBase(resp, &signing.MessageRequest{Header: c.header}, mh.SignatureInput, "sig1")
			if err != nil {
				t.Fatalf("the response's own base does not build: %v", err)
			}
			if c.label == "" && c.component == `"signature";req` && !strings.Contains(base, `"signature";req: sig1=:not base64`) {
				t.Fatalf("raw field not covered as received:\n%s", base)
			}
			_, err = signing.VerifyMessageResponse(resp, signing.MessageRequest{Header: c.header}, lookup)
			if (err == nil) != c.verifies {
				t.Fatalf("client verification: %v, want success %v", err, c.verifies)
			}
		})
	}
}
