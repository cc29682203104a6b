package signing_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"testing"

	"github.com/quillpay/quill/signing"
)

// fixedRand yields 0xab forever, so the response nonce is "ABAB…".
type fixedRand struct{}

func (fixedRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0xab
	}
	return len(p), nil
}

func TestResponseSignKnownAnswer(t *testing.T) {
	// printf '1700000000\nABAB…AB\n{"status":"SUCCESS"}\n' | openssl dgst -sha256 -sign testdata/test-key-rsa.key.pem | base64 -w0
	const want = "VrTQe/qJO57jOPFcrL+Dhwst8uoS9VX/2xR4HP2zFtQNUv2v9s2FVJjE+bdjKzw0Ts8/nnVwM+IMEOA9rxTx5SDgQlTpHiHgsPF7tVXXw6YobsStN+umTsjytuUc6bZjwF3HFHsNNJzMrvYujPE98TrHWZXYr0qrK21ezjbxKPClug4+Pr8nNwRf3+nvCGKQ4Cu+0S9QscAqU1sc+fjZtXUV4OIEk69m3kStmcc3HFqPWjSFjjDCbyhGw76/AuOR41aGQojTBINHwXTHth4lt2tgIiavqyr27qRqaWOJWWigNyzpazg+2AlCO+LG7xzh3P5zD+2Kh4DQnz5RmN82sg=="
	s := &signing.ResponseSigner{Keys: platformKeys{"P1", loadKey(t, "test-key-rsa.key.pem")}, Now: clock, Rand: fixedRand{}}
	got, err := s.Sign(context.Background(), []byte(`{"status":"SUCCESS"}`))
	if err != nil {
		t.Fatal(err)
	}
	wantSig := signing.ResponseSignature{Timestamp: "1700000000", Nonce: "ABABABABABABABABABABABABABABABAB", Serial: "P1", Signature: want}
	if got != wantSig {
		t.Errorf("Sign = %+v, want %+v", got, wantSig)
	}
}

func TestResponseSignVerify(t *testing.T) {
	keys := map[string]crypto.Signer{
		"rsa":     loadKey(t, "test-key-rsa.key.pem"),
		"ed25519": loadKey(t, "test-key-ed25519.key.pem"),
		"p256":    loadKey(t, "test-key-ecc-p256.key.pem"),
	}
	other := loadKey(t, "other-rsa.key.pem")
	for name, key := range keys {
		for _, body := range [][]byte{nil, []byte(`{"id":"P1","amount":"12.34"}`)} {
			t.Run(name+"/"+string(body), func(t *testing.T) {
				s := &signing.ResponseSigner{Keys: platformKeys{"PLAT-" + name, key}, Now: clock}
				sig, err := s.Sign(context.Background(), body)
				if err != nil {
					t.Fatal(err)
				}
				if sig.Serial != "PLAT-"+name || sig.Timestamp != "1700000000" || len(sig.Nonce) != 32 {
					t.Errorf("signature headers %+v", sig)
				}
				if err := signing.VerifyResponse(key.Public(), sig, body); err != nil {
					t.Fatalf("VerifyResponse: %v", err)
				}
				tampered := map[string]func() (crypto.PublicKey, signing.ResponseSignature, []byte){
					"body": func() (crypto.PublicKey, signing.ResponseSignature, []byte) {
						return key.Public(), sig, append(bytes.Clone(body), ' ')
					},
					"timestamp": func() (crypto.PublicKey, signing.ResponseSignature, []byte) {
						s := sig
						s.Timestamp = "1700000001"
						return key.Public(), s, body
					},
					"nonce": func() (crypto.PublicKey, signing.ResponseSignature, []byte) {
						s := sig
						s.Nonce = "X" + s.Nonce[1:]
						return key.Public(), s, body
					},
					"signature not base64": func() (crypto.PublicKey, signing.ResponseSignature, []byte) {
						s := sig
						s.Signature = "!" + s.Signature
						return key.Public(), s, body
					},
					"other key": func() (crypto.PublicKey, signing.ResponseSignature, []byte) {
						return other.Public(), sig, body
					},
				}
				for what, mk := range tampered {
					pub, s, b := mk()
					if err := signing.VerifyResponse(pub, s, b); !errors.Is(err, signing.ErrBadSignature) {
						t.Errorf("tampered %s: VerifyResponse = %v, want ErrBadSignature", what, err)
					}
				}
			})
		}
	}
}

func TestResponseSignKeyError(t *testing.T) {
	boom := errors.New("vault down")
	s := &signing.ResponseSigner{Keys: failingKeys{boom}}
	if _, err := s.Sign(context.Background(), nil); !errors.Is(err, boom) {
		t.Errorf("Sign: %v, want %v", err, boom)
	}
}

type failingKeys struct{ err error }

func (k failingKeys) SigningKey(context.Context) (string, crypto.Signer, error) {
	return "", nil, k.err
}
