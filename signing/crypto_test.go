package signing_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math/big"
	"sync/atomic"
	"testing"

	"github.com/quillpay/quill/signing"
)

// digestFor is what a signer of key signs for msg: its SHA-256, or msg
// itself for Ed25519.
func digestFor(key crypto.Signer, msg []byte) ([]byte, crypto.SignerOpts) {
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		return msg, crypto.Hash(0)
	}
	d := sha256.Sum256(msg)
	return d[:], crypto.SHA256
}

func TestGoCryptoSignVerify(t *testing.T) {
	pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	for _, tc := range []struct {
		name, file string
		opts       crypto.SignerOpts // nil: the key's default
	}{
		{"rsa-pkcs1v15", "test-key-rsa.key.pem", nil},
		{"rsa-pss", "test-key-rsa.key.pem", pss},
		{"ecdsa-p256", "test-key-ecc-p256.key.pem", nil},
		{"ed25519", "test-key-ed25519.key.pem", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c signing.Crypto = signing.GoCrypto{}
			key := loadKey(t, tc.file)
			s, err := c.NewSigner(key)
			if err != nil {
				t.Fatal(err)
			}
			d, opts := digestFor(key, []byte("TS\nNONCE\nBODY\n"))
			if tc.opts != nil {
				opts = tc.opts
			}
			sig, err := s.Sign(rand.Reader, d, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Verify(key.Public(), d, sig, opts); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			bad := bytes.Clone(sig)
			bad[0] ^= 1
			if err := c.Verify(key.Public(), d, bad, opts); !errors.Is(err, signing.ErrBadSignature) {
				t.Fatalf("Verify of a changed signature = %v, want ErrBadSignature", err)
			}
			other, _ := digestFor(key, []byte("TS\nNONCE\nBODY!\n"))
			if err := c.Verify(key.Public(), other, sig, opts); !errors.Is(err, signing.ErrBadSignature) {
				t.Fatalf("Verify of another message = %v, want ErrBadSignature", err)
			}
		})
	}
}

// opaqueSigner hides the key type, as an HSM signer would.
type opaqueSigner struct{ crypto.Signer }

// lyingSigner signs with one key and claims another's public key.
type lyingSigner struct {
	crypto.Signer
	pub crypto.PublicKey
}

func (l lyingSigner) Public() crypto.PublicKey { return l.pub }

func TestGoCryptoRefusesKeys(t *testing.T) {
	good := loadKey(t, "test-key-rsa.key.pem").(*rsa.PrivateKey)
	broken := *good
	broken.D = new(big.Int).Add(good.D, big.NewInt(2))
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"inconsistent RSA", &broken},
		{"ECDSA P-384", p384},
		{"short Ed25519", ed25519.PrivateKey(make([]byte, 10))},
		{"opaque signer", opaqueSigner{good}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := (signing.GoCrypto{}).NewSigner(tc.key); !errors.Is(err, signing.ErrUnsupportedKey) || s != nil {
				t.Fatalf("NewSigner = %v, %v; want ErrUnsupportedKey", s, err)
			}
		})
	}
	d := sha256.Sum256(nil)
	for _, pub := range []crypto.PublicKey{&p384.PublicKey, ed25519.PublicKey(make([]byte, 5)), "no key"} {
		if err := (signing.GoCrypto{}).Verify(pub, d[:], []byte("x"), crypto.SHA256); !errors.Is(err, signing.ErrUnsupportedKey) {
			t.Errorf("Verify(%T) = %v, want ErrUnsupportedKey", pub, err)
		}
	}
}

func TestCheckSignerCatchesMismatchedKey(t *testing.T) {
	key, other := loadKey(t, "test-key-rsa.key.pem"), loadKey(t, "other-rsa.key.pem")
	if err := signing.CheckSigner(key); err != nil {
		t.Fatal(err)
	}
	if err := signing.CheckSigner(lyingSigner{key, other.Public()}); !errors.Is(err, signing.ErrUnsupportedKey) {
		t.Fatalf("CheckSigner(mismatched) = %v, want ErrUnsupportedKey", err)
	}
}

// countingCrypto is GoCrypto that counts loads and verifications; fail, if
// set, makes every Verify fail.
type countingCrypto struct {
	signing.GoCrypto
	loads, verifies atomic.Int32
	fail            bool
}

func (c *countingCrypto) NewSigner(k crypto.Signer) (crypto.Signer, error) {
	c.loads.Add(1)
	return c.GoCrypto.NewSigner(k)
}

func (c *countingCrypto) Verify(pub crypto.PublicKey, d, sig []byte, opts crypto.SignerOpts) error {
	c.verifies.Add(1)
	if c.fail {
		return signing.ErrBadSignature
	}
	return c.GoCrypto.Verify(pub, d, sig, opts)
}

// switchKeys is a PlatformKeys whose current key a test can change.
type switchKeys struct {
	serial string
	key    crypto.Signer
	err    error
}

func (s *switchKeys) SigningKey(context.Context) (string, crypto.Signer, error) {
	return s.serial, s.key, s.err
}

func TestBackendKeysLoadsOncePerKey(t *testing.T) {
	ctx := context.Background()
	c := &countingCrypto{}
	src := &switchKeys{serial: "P1", key: loadKey(t, "test-key-rsa.key.pem")}
	bk := signing.NewBackendKeys(src, c)
	s := &signing.ResponseSigner{Keys: bk, Now: clock}
	for range 3 {
		sig, err := s.Sign(ctx, []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		if err := signing.VerifyResponse(src.key.Public(), sig, []byte("{}")); err != nil || sig.Serial != "P1" {
			t.Fatalf("response signature %+v: %v", sig.Serial, err)
		}
	}
	if n := c.loads.Load(); n != 1 {
		t.Fatalf("%d loads for one key, want 1", n)
	}
	// Rotation: a new serial is loaded once; so is a new key under an old
	// serial (which a store should never do, but must not sign with the old).
	src.serial, src.key = "P2", loadKey(t, "other-rsa.key.pem")
	for range 2 {
		if _, k, err := bk.SigningKey(ctx); err != nil || !k.Public().(*rsa.PublicKey).Equal(src.key.Public()) {
			t.Fatalf("after rotation: %v", err)
		}
	}
	src.key = loadKey(t, "test-key-ecc-p256.key.pem")
	if _, k, err := bk.SigningKey(ctx); err != nil || !k.Public().(*ecdsa.PublicKey).Equal(src.key.Public()) {
		t.Fatalf("new key under the same serial: %v", err)
	}
	if n := c.loads.Load(); n != 3 {
		t.Fatalf("%d loads for three keys, want 3", n)
	}

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	src.serial, src.key = "P3", p384
	if _, _, err := bk.SigningKey(ctx); !errors.Is(err, signing.ErrUnsupportedKey) {
		t.Fatalf("unloadable key: %v, want ErrUnsupportedKey", err)
	}
	src.err = errors.New("key store down")
	if _, _, err := bk.SigningKey(ctx); err != src.err {
		t.Fatalf("store error = %v, want it as is", err)
	}
}

// TestVerifierUsesCrypto: the scheme A verifier checks signatures with its
// Crypto when one is set.
func TestVerifierUsesCrypto(t *testing.T) {
	key := loadKey(t, "test-key-rsa.key.pem")
	req := signing.Request{Method: "POST", Target: "/v1/payments", Body: payBody, Merchant: merchant,
		Authorization: signedAt(t, key, "POST", "/v1/payments", payBody, now, "593BEC0C930BF1AFEB40B4A08C8FB242")}
	for _, fail := range []bool{false, true} {
		c := &countingCrypto{fail: fail}
		v := &signing.Verifier{Keys: keyMap{merchant + "/" + serial: key.Public()}, Nonces: noNonces{}, Now: clock, Crypto: c}
		_, err := v.Verify(context.Background(), req)
		if fail != errors.Is(err, signing.ErrBadSignature) || fail != (err != nil) {
			t.Fatalf("fail=%v: Verify = %v", fail, err)
		}
		if c.verifies.Load() == 0 {
			t.Fatalf("fail=%v: the verifier did not use its Crypto", fail)
		}
	}
}
