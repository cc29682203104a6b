//go:build cgo

package openssl_test

import (
	"crypto"
	"crypto/rsa"
	_ "crypto/sha512" // for rsa-pss-sha512
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/quillpay/quill/signing"
	"github.com/quillpay/quill/signing/openssl"
)

var (
	loadOnce sync.Once
	loaded   *openssl.Crypto
	loadErr  error
)

// backend loads the system libcrypto, failing the test if it is missing
// (scripts/test.sh installs it, Debian package libssl3) unless
// QUILL_SKIP_OPENSSL is set.
func backend(tb testing.TB) *openssl.Crypto {
	tb.Helper()
	loadOnce.Do(func() { loaded, loadErr = openssl.Load(openssl.DefaultLibrary) })
	if loadErr != nil && os.Getenv("QUILL_SKIP_OPENSSL") != "" {
		tb.Skipf("QUILL_SKIP_OPENSSL set and OpenSSL does not load: %v", loadErr)
	}
	if loadErr != nil {
		tb.Fatalf("OpenSSL does not load (apt-get install libssl3, or set QUILL_SKIP_OPENSSL=1): %v", loadErr)
	}
	return loaded
}

// loadKey reads a PEM private key (PKCS #1, SEC 1 or PKCS #8) from the
// signing package's testdata.
func loadKey(tb testing.TB, name string) crypto.Signer {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		tb.Fatalf("%s: no PEM block", name)
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return key.(crypto.Signer)
}

// algorithm is one signature algorithm of signing.Crypto with its test key.
type algorithm struct {
	name string
	file string
	opts crypto.SignerOpts // its HashFunc is the digest signed; 0: the message
}

// The RSA key is other-rsa.key.pem, whose primes are 1024 bits each like
// every key crypto/rsa or OpenSSL generates. (The RFC 9421 test key's are
// 1088 and 960 bits, which OpenSSL signs with several times slower: it is
// the "unbalanced" entry.)
var algorithms = []algorithm{
	{"rsa2048-pkcs1v15-sha256", "other-rsa.key.pem", crypto.SHA256},
	{"rsa2048-unbalanced-pkcs1v15-sha256", "test-key-rsa.key.pem", crypto.SHA256},
	{"rsa2048-pss-sha256", "other-rsa.key.pem", &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}},
	// Scheme B's rsa-pss-sha512 (RFC 9421: salt of 64 bytes).
	{"rsa2048-pss-sha512", "other-rsa.key.pem", &rsa.PSSOptions{SaltLength: 64, Hash: crypto.SHA512}},
	{"ecdsa-p256-sha256", "test-key-ecc-p256.key.pem", crypto.SHA256},
	{"ed25519", "test-key-ed25519.key.pem", crypto.Hash(0)},
}

// input is what a signer is given for msg under opts: its digest, or the
// message itself for Ed25519.
func input(opts crypto.SignerOpts, msg []byte) []byte {
	h := opts.HashFunc()
	if h == 0 {
		return msg
	}
	hh := h.New()
	hh.Write(msg)
	return hh.Sum(nil)
}

// backends are the two implementations under test, Go's first.
func backends(tb testing.TB) []signing.Crypto {
	return []signing.Crypto{signing.GoCrypto{}, backend(tb)}
}
