package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func samePub(tb testing.TB, got, want crypto.PublicKey) {
	tb.Helper()
	if !samePublic(got, want) {
		tb.Fatalf("public keys differ: %T vs %T", got, want)
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		alg, defaultAlg Algorithm
	}{
		{RSAPKCS1SHA256, RSAPKCS1SHA256},
		{RSAPSSSHA512, RSAPKCS1SHA256},
		{ECDSAP256SHA256, ECDSAP256SHA256},
		{Ed25519, Ed25519},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			k, err := Generate(tc.alg, nil)
			if err != nil {
				t.Fatal(err)
			}
			privPEM, err := MarshalPrivateKeyPEM(k)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(privPEM, []byte("-----BEGIN PRIVATE KEY-----")) {
				t.Fatalf("want PKCS#8, got %.30q", privPEM)
			}
			k2, err := ParsePrivateKeyPEM(privPEM)
			if err != nil {
				t.Fatal(err)
			}
			samePub(t, k2.Public(), k.Public())

			pubPEM, err := MarshalPublicKeyPEM(k.Public())
			if err != nil {
				t.Fatal(err)
			}
			pub, err := ParsePublicKeyPEM(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			samePub(t, pub, k.Public())
			if alg, err := AlgorithmOf(pub); err != nil || alg != tc.defaultAlg {
				t.Fatalf("AlgorithmOf = %q, %v; want %q", alg, err, tc.defaultAlg)
			}
			if err := checkAlgorithm(tc.alg, pub); err != nil {
				t.Fatalf("checkAlgorithm(%q): %v", tc.alg, err)
			}
		})
	}
	if _, err := Generate("hmac-sha256", nil); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("Generate(hmac) = %v, want ErrUnsupportedKey", err)
	}
}

func TestParseTestdata(t *testing.T) {
	// The RFC 9421 Appendix B.1 keys: SEC1, PKCS#1 (public and private),
	// PKCS#8 Ed25519, and a PKCS#8 key labelled id-RSASSA-PSS.
	for _, tc := range []struct {
		name string
		alg  Algorithm
	}{
		{"test-key-rsa", RSAPKCS1SHA256},
		{"test-key-rsa-pss", RSAPKCS1SHA256},
		{"test-key-ecc-p256", ECDSAP256SHA256},
		{"test-key-ed25519", Ed25519},
	} {
		t.Run(tc.name, func(t *testing.T) {
			priv, err := ParsePrivateKeyPEM(readTestdata(t, tc.name+".key.pem"))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := ParsePublicKeyPEM(readTestdata(t, tc.name+".pub.pem"))
			if err != nil {
				t.Fatal(err)
			}
			samePub(t, priv.Public(), pub)
			if alg, _ := AlgorithmOf(pub); alg != tc.alg {
				t.Fatalf("AlgorithmOf = %q, want %q", alg, tc.alg)
			}
		})
	}
}

func TestParsePublicKeyPEMForms(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	pkixDER, _ := x509.MarshalPKIXPublicKey(k.Public())
	rsaPub := readTestdata(t, "test-key-rsa.pub.pem") // "RSA PUBLIC KEY"
	if !bytes.Contains(rsaPub, []byte("RSA PUBLIC KEY")) {
		t.Fatal("testdata: want a PKCS#1 public key")
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})},
		{"pkix", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkixDER})},
		{"pkcs1", rsaPub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParsePublicKeyPEM(tc.in); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	der := func(k any) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pubDER := func(k any) []byte {
		b, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	block := func(typ string, b []byte, h map[string]string) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Headers: h, Bytes: b})
	}
	edPriv := readTestdata(t, "test-key-ed25519.key.pem")

	privCases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not pem")},
		{"public key block", readTestdata(t, "test-key-ed25519.pub.pem")},
		{"rsa 1024", block("PRIVATE KEY", der(small), nil)},
		{"p384", block("PRIVATE KEY", der(p384), nil)},
		{"x25519 cannot sign", block("PRIVATE KEY", der(x25519), nil)},
		{"encrypted", block("RSA PRIVATE KEY", []byte{1}, map[string]string{"Proc-Type": "4,ENCRYPTED"})},
		{"bad der", block("PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}, nil)},
	}
	for _, tc := range privCases {
		t.Run("private/"+tc.name, func(t *testing.T) {
			if k, err := ParsePrivateKeyPEM(tc.in); err == nil {
				t.Fatalf("parsed %T, want error", k)
			} else if strings.Contains(err.Error(), string(edPriv[30:60])) {
				t.Fatalf("error quotes key material: %v", err)
			}
		})
	}
	pubCases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"private key block", edPriv},
		{"rsa 1024", block("PUBLIC KEY", pubDER(&small.PublicKey), nil)},
		{"p384", block("PUBLIC KEY", pubDER(&p384.PublicKey), nil)},
		{"x25519", block("PUBLIC KEY", pubDER(x25519.PublicKey()), nil)},
		{"bad der", block("PUBLIC KEY", []byte{0x30, 0x00}, nil)},
	}
	for _, tc := range pubCases {
		t.Run("public/"+tc.name, func(t *testing.T) {
			if k, err := ParsePublicKeyPEM(tc.in); err == nil {
				t.Fatalf("parsed %T, want error", k)
			}
		})
	}
}

func TestParsePrivateKeySkipsECParameters(t *testing.T) {
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	in := append(params, readTestdata(t, "test-key-ecc-p256.key.pem")...)
	if _, err := ParsePrivateKeyPEM(in); err != nil {
		t.Fatal(err)
	}
}

func TestNewKeyID(t *testing.T) {
	hex40 := regexp.MustCompile(`^[0-9A-F]{40}$`)
	for _, prefix := range []string{"", "PUB_KEY_ID_"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			a, b := NewKeyID(prefix, nil), NewKeyID(prefix, nil)
			if !strings.HasPrefix(a, prefix) || !hex40.MatchString(a[len(prefix):]) {
				t.Fatalf("NewKeyID = %q", a)
			}
			if a == b {
				t.Fatalf("two ids are equal: %q", a)
			}
			if !idPattern.MatchString(a) {
				t.Fatalf("%q is not a valid key id for the store", a)
			}
		})
	}
	zero := NewKeyID("", bytes.NewReader(make([]byte, 20)))
	if zero != strings.Repeat("0", 40) {
		t.Fatalf("NewKeyID(zero reader) = %q", zero)
	}
}

func FuzzParsePublicKeyPEM(f *testing.F) {
	for _, n := range []string{"test-key-rsa.pub.pem", "test-key-rsa-pss.pub.pem", "test-key-ecc-p256.pub.pem", "test-key-ed25519.pub.pem"} {
		f.Add(readTestdata(f, n))
	}
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := ParsePublicKeyPEM(b)
		if err != nil {
			return
		}
		if _, err := AlgorithmOf(pub); err != nil {
			t.Fatalf("parsed an unsupported key: %v", err)
		}
		if _, err := MarshalPublicKeyPEM(pub); err != nil {
			t.Fatalf("cannot re-marshal a parsed key: %v", err)
		}
	})
}

func FuzzParsePrivateKeyPEM(f *testing.F) {
	for _, n := range []string{"test-key-rsa.key.pem", "test-key-rsa-pss.key.pem", "test-key-ecc-p256.key.pem", "test-key-ed25519.key.pem"} {
		f.Add(readTestdata(f, n))
	}
	f.Add([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePrivateKeyPEM(b)
		if err != nil {
			return
		}
		if _, err := AlgorithmOf(k.Public()); err != nil {
			t.Fatalf("parsed an unsupported key: %v", err)
		}
	})
}
