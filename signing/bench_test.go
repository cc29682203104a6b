package signing_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/quillpay/quill/signing"
)

// BenchmarkVerify is the full scheme A verification of a request with a 1 KiB
// body and an RSA-2048 key, without network: in-memory keys, no-op nonce store.
func BenchmarkVerify(b *testing.B) {
	key := loadKey(b, "test-key-rsa.key.pem")
	body := bytes.Repeat([]byte("x"), 1024)
	v := &signing.Verifier{Keys: keyMap{merchant + "/" + serial: key.Public()}, Nonces: noNonces{}, Now: clock}
	req := signing.Request{Method: "POST", Target: "/v1/payments?x=1", Body: body, Merchant: merchant,
		Authorization: signedAt(b, key, "POST", "/v1/payments?x=1", body, now, "593BEC0C930BF1AFEB40B4A08C8FB242")}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAuthorization(b *testing.B) {
	h := signedAt(b, loadKey(b, "test-key-rsa.key.pem"), "POST", "/v1/payments", payBody, now, "593BEC0C930BF1AFEB40B4A08C8FB242")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signing.ParseAuthorization(h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResponseSign signs a 1 KiB response with each platform key type; RSA
// is what scheme A clients verify, Ed25519 and P-256 are for scheme B.
func BenchmarkResponseSign(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	for _, k := range []struct{ name, file string }{
		{"rsa2048", "test-key-rsa.key.pem"},
		{"ed25519", "test-key-ed25519.key.pem"},
		{"p256", "test-key-ecc-p256.key.pem"},
	} {
		b.Run(k.name, func(b *testing.B) {
			s := &signing.ResponseSigner{Keys: platformKeys{"P1", loadKey(b, k.file)}, Now: clock}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(ctx, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMessageVerify is the full scheme B verification of a POST with a
// 1 KiB body per algorithm: Signature-Input/Signature parsing, label selection,
// base construction, Content-Digest recomputation and the signature check,
// with in-memory keys and a no-op nonce store.
func BenchmarkMessageVerify(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	for _, alg := range []signing.Algorithm{signing.RSAPKCS1SHA256, signing.RSAPSSSHA512, signing.ECDSAP256SHA256, signing.Ed25519} {
		b.Run(string(alg), func(b *testing.B) {
			f := newBFixture(b)
			f.v.Nonces = noNonces{}
			r := f.signed(b, alg, bRequest(body), 1)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.v.Verify(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMessageResponseSign signs a 1 KiB scheme B response with the
// Ed25519 and P-256 platform keys.
func BenchmarkMessageResponseSign(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	f := newBFixture(b)
	f.v.Nonces = noNonces{}
	v, err := f.v.Verify(context.Background(), f.signed(b, signing.Ed25519, bRequest(body), 1))
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range []struct{ name, file string }{{"ed25519", "test-key-ed25519.key.pem"}, {"p256", "test-key-ecc-p256.key.pem"}} {
		b.Run(k.name, func(b *testing.B) {
			s := &signing.MessageResponseSigner{Keys: platformKeys{"PB1", loadKey(b, k.file)}, Now: clock}
			resp := signing.MessageResponse{Status: 200, Header: map[string][]string{"Content-Type": {"application/json"}}, Body: body}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(ctx, resp, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseSignatureInput parses a typical Signature-Input field.
func BenchmarkParseSignatureInput(b *testing.B) {
	r := newBFixture(b).signed(b, signing.Ed25519, bRequest(payBody), 1)
	in := r.Header["Signature-Input"][0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signing.RequestSignatureBase(r, in, "sig1"); err != nil {
			b.Fatal(err)
		}
	}
}
