package signing_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/signing"
)

func fixedNonce(t *testing.T, h string) *bytes.Reader {
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func TestProtocolDocExamples(t *testing.T) {
	key := loadKey(t, "test-key-ed25519.key.pem")
	body := []byte(`{"order_id":"ORD000000000001","amount":"12.34","currency":"CNY"}`)
	req := signing.MessageRequest{Method: "POST", Scheme: "https", Authority: "quill.example", Target: "/v1/payments",
		Header: map[string][]string{"Content-Type": {"application/json"}}, Body: body}
	rs := signing.RequestSigner{Key: key, KeyID: "test-key-ed25519", Algorithm: signing.Ed25519,
		Now: func() time.Time { return time.Unix(1700000000, 0) }, Rand: fixedNonce(t, "593BEC0C930BF1AFEB40B4A08C8FB242")}
	mh, err := rs.Sign(req)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["Content-Digest"] = []string{mh.ContentDigest}
	req.Header["Signature-Input"] = []string{mh.SignatureInput}
	req.Header["Signature"] = []string{mh.Signature}
	base, err := signing.RequestSignatureBase(req, mh.SignatureInput, "sig1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("request\nContent-Digest: %s\nSignature-Input: %s\nSignature: %s\nbase:\n%s", mh.ContentDigest, mh.SignatureInput, mh.Signature, base)

	platform := &signing.MessageResponseSigner{Keys: platformKeys{"PB_EXAMPLE", key}, Now: func() time.Time { return time.Unix(1700000001, 0) }}
	respBody := []byte(`{"order_id":"ORD000000000001","status":"succeeded"}`)
	resp := signing.MessageResponse{Status: 200, Header: map[string][]string{"Content-Type": {"application/json"}}, Body: respBody}
	rh, err := platform.Sign(context.Background(), resp, signing.Verified{Scheme: signing.SchemeHTTPSig, Label: "sig1", Signature: mh.Signature})
	if err != nil {
		t.Fatal(err)
	}
	resp.Header["Content-Digest"] = []string{rh.ContentDigest}
	rbase, err := signing.ResponseSignatureBase(resp, &req, rh.SignatureInput, "sig1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("response\nContent-Digest: %s\nSignature-Input: %s\nSignature: %s\nbase:\n%s", rh.ContentDigest, rh.SignatureInput, rh.Signature, rbase)

	a := &signing.ResponseSigner{Keys: platformKeys{"PLATFORM_EXAMPLE", loadKey(t, "test-key-rsa.key.pem")},
		Now: func() time.Time { return time.Unix(1700000001, 0) }, Rand: fixedNonce(t, "7E57AB1E7E57AB1E7E57AB1E7E57AB1E")}
	as, err := a.Sign(context.Background(), respBody)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scheme A response %+v", as)

	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{mh.ContentDigest, mh.SignatureInput, mh.Signature, base, rh.ContentDigest, rh.SignatureInput, rh.Signature, rbase,
		as.Signature, as.Nonce} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/PROTOCOL.md does not show:\n%s", want)
		}
	}
}
