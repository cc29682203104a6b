//go:build cgo

package openssl_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/quillpay/quill/signing"
	"github.com/quillpay/quill/signing/openssl"
)

func TestLoadReportsVersion(t *testing.T) {
	c := backend(t)
	if c.Name() != "openssl" || !strings.HasPrefix(c.Version(), "OpenSSL 3.") {
		t.Fatalf("Name, Version = %q, %q; want openssl, OpenSSL 3.x", c.Name(), c.Version())
	}
	// Init runs once per process; a second Load agrees with the first.
	if again, err := openssl.Load(openssl.DefaultLibrary); err != nil || again.Version() != c.Version() {
		t.Fatalf("second Load = %v, %v", again, err)
	}
}

// TestPKCS1v15SameBytes pins that RSA PKCS#1 v1.5 (deterministic) gives the
// same signature from both backends for the same key and digest.
func TestPKCS1v15SameBytes(t *testing.T) {
	for _, file := range []string{"test-key-rsa.key.pem", "other-rsa.key.pem"} {
		key := loadKey(t, file)
		s, err := backend(t).NewSigner(key)
		if err != nil {
			t.Fatal(err)
		}
		for i, msg := range []string{"", "1700000000\nNONCE\n\n", strings.Repeat("x", 4096)} {
			for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA512} {
				hh := h.New()
				hh.Write([]byte(msg))
				d := hh.Sum(nil)
				want, err := key.Sign(rand.Reader, d, h)
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.Sign(rand.Reader, d, h)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s message %d %v: OpenSSL signature differs from crypto/rsa's", file, i, h)
				}
			}
		}
	}
}

// TestCrossVerify signs with each backend and verifies with each, for every
// algorithm; a changed message or signature fails with ErrBadSignature.
func TestCrossVerify(t *testing.T) {
	for _, a := range algorithms {
		key := loadKey(t, a.file)
		for _, signer := range backends(t) {
			s, err := signer.NewSigner(key)
			if err != nil {
				t.Fatalf("%s: %s NewSigner: %v", a.name, signer.Name(), err)
			}
			msg := []byte("1700000000\n593BEC0C930BF1AFEB40B4A08C8FB242\n{}\n")
			sig, err := s.Sign(rand.Reader, input(a.opts, msg), a.opts)
			if err != nil {
				t.Fatalf("%s: %s Sign: %v", a.name, signer.Name(), err)
			}
			for _, verifier := range backends(t) {
				t.Run(a.name+"/"+signer.Name()+"→"+verifier.Name(), func(t *testing.T) {
					if err := verifier.Verify(key.Public(), input(a.opts, msg), sig, a.opts); err != nil {
						t.Fatalf("Verify: %v", err)
					}
					other := input(a.opts, []byte("1700000000\n593BEC0C930BF1AFEB40B4A08C8FB242\n{ }\n"))
					if err := verifier.Verify(key.Public(), other, sig, a.opts); !errors.Is(err, signing.ErrBadSignature) {
						t.Fatalf("Verify of another message = %v, want ErrBadSignature", err)
					}
					bad := bytes.Clone(sig)
					bad[len(bad)/2] ^= 1
					if err := verifier.Verify(key.Public(), input(a.opts, msg), bad, a.opts); !errors.Is(err, signing.ErrBadSignature) {
						t.Fatalf("Verify of a changed signature = %v, want ErrBadSignature", err)
					}
					if err := verifier.Verify(key.Public(), input(a.opts, msg), sig[:len(sig)-1], a.opts); !errors.Is(err, signing.ErrBadSignature) {
						t.Fatalf("Verify of a short signature = %v, want ErrBadSignature", err)
					}
				})
			}
		}
	}
}

// TestWrongKeyDoesNotVerify: a signature by one RSA key fails with another.
func TestWrongKeyDoesNotVerify(t *testing.T) {
	key, other := loadKey(t, "test-key-rsa.key.pem"), loadKey(t, "other-rsa.key.pem")
	d := sha256.Sum256([]byte("m"))
	sig, err := key.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range backends(t) {
		if err := c.Verify(other.Public(), d[:], sig, crypto.SHA256); !errors.Is(err, signing.ErrBadSignature) {
			t.Errorf("%s: Verify with another key = %v, want ErrBadSignature", c.Name(), err)
		}
	}
}

// opaqueSigner is a crypto.Signer whose key is out of reach (an HSM, say).
type opaqueSigner struct{ crypto.Signer }

// TestUnloadableKeys: a key a backend cannot use is a clear error from
// NewSigner, wrapping ErrUnsupportedKey and naming no key material.
func TestUnloadableKeys(t *testing.T) {
	good := loadKey(t, "test-key-rsa.key.pem").(*rsa.PrivateKey)
	broken := *good
	broken.D = new(big.Int).Add(good.D, big.NewInt(2)) // no longer the inverse of E
	broken.Precomputed = rsa.PrecomputedValues{}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		want string
	}{
		{"inconsistent RSA", &broken, "inconsistent"},
		{"ECDSA P-384", p384, "P-256"},
		{"opaque signer", opaqueSigner{good}, "key type"},
	} {
		for _, c := range backends(t) {
			t.Run(tc.name+"/"+c.Name(), func(t *testing.T) {
				s, err := c.NewSigner(tc.key)
				if !errors.Is(err, signing.ErrUnsupportedKey) || s != nil {
					t.Fatalf("NewSigner = %v, %v; want ErrUnsupportedKey", s, err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q does not say %q", err, tc.want)
				}
				if strings.Contains(err.Error(), good.D.String()[:20]) || strings.Contains(err.Error(), good.D.Text(16)[:20]) {
					t.Errorf("error shows key material: %q", err)
				}
			})
		}
	}
}

// TestMultiPrimeRSAIsRefused: OpenSSL's backend takes two-prime keys only;
// Go's takes any valid key.
func TestMultiPrimeRSAIsRefused(t *testing.T) {
	//lint:ignore SA1019 a three-prime key is exactly the input under test.
	k, err := rsa.GenerateMultiPrimeKey(rand.Reader, 3, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backend(t).NewSigner(k); !errors.Is(err, signing.ErrUnsupportedKey) || !strings.Contains(err.Error(), "3 primes") {
		t.Fatalf("openssl NewSigner(3 primes) = %v, want ErrUnsupportedKey naming 3 primes", err)
	}
	if _, err := (signing.GoCrypto{}).NewSigner(k); err != nil {
		t.Fatalf("go NewSigner(3 primes) = %v", err)
	}
}

// TestUnusablePublicKeys: Verify with a key the backend cannot use wraps
// ErrUnsupportedKey, not ErrBadSignature.
func TestUnusablePublicKeys(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("m"))
	for _, pub := range []crypto.PublicKey{&p384.PublicKey, "not a key"} {
		if err := backend(t).Verify(pub, d[:], []byte("sig"), crypto.SHA256); !errors.Is(err, signing.ErrUnsupportedKey) {
			t.Errorf("Verify(%T) = %v, want ErrUnsupportedKey", pub, err)
		}
	}
}

// TestVerifyNoticesModifiedKey: the cache of loaded public keys notices a Go
// key changed in place and loads it again.
func TestVerifyNoticesModifiedKey(t *testing.T) {
	key, other := loadKey(t, "test-key-rsa.key.pem"), loadKey(t, "other-rsa.key.pem")
	d := sha256.Sum256([]byte("m"))
	sigKey, _ := key.Sign(rand.Reader, d[:], crypto.SHA256)
	sigOther, _ := other.Sign(rand.Reader, d[:], crypto.SHA256)
	pub := *key.Public().(*rsa.PublicKey)
	c := backend(t)
	if err := c.Verify(&pub, d[:], sigKey, crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	pub = *other.Public().(*rsa.PublicKey)
	if err := c.Verify(&pub, d[:], sigOther, crypto.SHA256); err != nil {
		t.Fatalf("after the key changed: %v", err)
	}
	if err := c.Verify(&pub, d[:], sigKey, crypto.SHA256); !errors.Is(err, signing.ErrBadSignature) {
		t.Fatalf("old key's signature after the key changed = %v, want ErrBadSignature", err)
	}
}

// TestSignerIsRedacted: printing a signer shows no key material.
func TestSignerIsRedacted(t *testing.T) {
	for _, a := range algorithms {
		s, err := backend(t).NewSigner(loadKey(t, a.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
			if got := fmt.Sprintf(verb, s); got != "openssl.Signer{REDACTED}" {
				t.Errorf("%s: %s prints %q", a.name, verb, got)
			}
		}
	}
}

// TestConcurrentUse signs and verifies from many goroutines with one signer
// and one backend (run with -race); every RSA signature equals crypto/rsa's.
func TestConcurrentUse(t *testing.T) {
	c := backend(t)
	key := loadKey(t, "test-key-rsa.key.pem")
	s, err := c.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 10
	want := make([][]byte, workers*each)
	for i := range want {
		d := sha256.Sum256([]byte{byte(i)})
		want[i], _ = key.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for j := range each {
				i := w*each + j
				d := sha256.Sum256([]byte{byte(i)})
				sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
				switch {
				case err != nil:
					errs <- err
				case !bytes.Equal(sig, want[i]):
					errs <- fmt.Errorf("signature %d differs from crypto/rsa's", i)
				default:
					// A fresh copy of the public key each time exercises the
					// cache's concurrent inserts as well as its hits.
					pub := key.Public()
					if j%2 == 0 {
						cp := *pub.(*rsa.PublicKey)
						pub = &cp
					}
					if err := c.Verify(pub, d[:], sig, crypto.SHA256); err != nil {
						errs <- fmt.Errorf("verify %d: %w", i, err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
