package signing_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/quillpay/quill/signing"
)

// A body signed in pieces verifies as if it had been signed whole, and a
// whole-body signature checks in pieces: both sides of a streamed response.
func TestResponseStream(t *testing.T) {
	body := bytes.Repeat([]byte("entry_id,kind,amount\n1,payment,12.34\n"), 1000)
	for name, key := range map[string]crypto.Signer{
		"rsa":  loadKey(t, "test-key-rsa.key.pem"),
		"p256": loadKey(t, "test-key-ecc-p256.key.pem"),
	} {
		t.Run(name, func(t *testing.T) {
			s := &signing.ResponseSigner{Keys: platformKeys{"P1", key}, Now: clock}
			start, err := s.PrepareStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			st, err := start()
			if err != nil {
				t.Fatal(err)
			}
			for chunk := range pieces(body, 977) {
				st.Write(chunk)
			}
			sig, err := st.Sign()
			if err != nil {
				t.Fatal(err)
			}
			if sig.Serial != "P1" || sig.Timestamp != "1700000000" || len(sig.Nonce) != 32 {
				t.Errorf("signature headers %+v", sig)
			}
			if err := signing.VerifyResponse(key.Public(), sig, body); err != nil {
				t.Fatalf("a streamed signature does not verify over the whole body: %v", err)
			}
			whole, err := s.Sign(context.Background(), body)
			if err != nil {
				t.Fatal(err)
			}
			for what, c := range map[string]struct {
				sig  signing.ResponseSignature
				body []byte
				want error
			}{
				"streamed":       {sig, body, nil},
				"whole":          {whole, body, nil},
				"body changed":   {whole, append(bytes.Clone(body[:len(body)-1]), 'X'), signing.ErrBadSignature},
				"body truncated": {whole, body[:len(body)-1], signing.ErrBadSignature},
			} {
				check := signing.NewResponseCheck(c.sig)
				for chunk := range pieces(c.body, 4096) {
					check.Write(chunk)
				}
				if err := check.Verify(key.Public()); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
					t.Errorf("%s: Verify = %v, want %v", what, err, c.want)
				}
			}
		})
	}
	ed := &signing.ResponseSigner{Keys: platformKeys{"P2", loadKey(t, "test-key-ed25519.key.pem")}, Now: clock}
	if _, err := ed.PrepareStream(context.Background()); err == nil || !strings.Contains(err.Error(), "RSA or ECDSA") {
		t.Errorf("an Ed25519 key cannot sign a body it never holds: PrepareStream = %v", err)
	}
}

// pieces yields b in pieces of n bytes.
func pieces(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

// A scheme B response over a body known by its SHA-256 only signs and
// verifies like one over the body itself.
func TestMessageResponseBodySHA256(t *testing.T) {
	f := newBFixture(t)
	req, verified := verifiedB(t, f, 1)
	key := loadKey(t, "test-key-ed25519.key.pem")
	body := []byte("a,b\n1,2\n")
	sum := sha256.Sum256(body)
	s := &signing.MessageResponseSigner{Keys: platformKeys{"PB1", key}, Now: clock}
	resp := signing.MessageResponse{Status: 200, Header: map[string][]string{"Content-Type": {"text/csv"}}, BodySHA256: sum[:]}
	mh, err := s.Sign(context.Background(), resp, verified)
	if err != nil {
		t.Fatal(err)
	}
	if mh.ContentDigest != signing.ContentDigest(body) || mh.ContentDigest != signing.ContentDigestOf(sum) {
		t.Fatalf("Content-Digest %q, want that of the body %q", mh.ContentDigest, signing.ContentDigest(body))
	}
	got := signing.MessageResponse{Status: 200, Header: map[string][]string{"Content-Type": {"text/csv"},
		"Content-Digest": {mh.ContentDigest}, "Signature-Input": {mh.SignatureInput}, "Signature": {mh.Signature}}}
	lookup := platformLookup(map[string]signing.RegisteredKey{"PB1": {Public: key.Public(), Algorithm: signing.Ed25519}})
	whole := got
	whole.Body = body
	if _, err := signing.VerifyMessageResponse(whole, req, lookup); err != nil {
		t.Fatalf("verified over the body: %v", err)
	}
	streamed := got
	streamed.BodySHA256 = sum[:]
	if _, err := signing.VerifyMessageResponse(streamed, req, lookup); err != nil {
		t.Fatalf("verified over the body's SHA-256: %v", err)
	}
	other := sha256.Sum256([]byte("a,b\n1,3\n"))
	streamed.BodySHA256 = other[:]
	if _, err := signing.VerifyMessageResponse(streamed, req, lookup); !errors.Is(err, signing.ErrBadDigest) {
		t.Errorf("another body's SHA-256: %v, want ErrBadDigest", err)
	}
	resp.BodySHA256 = sum[:5]
	if _, err := s.Sign(context.Background(), resp, verified); err == nil {
		t.Error("a BodySHA256 of 5 bytes was signed")
	}
}
