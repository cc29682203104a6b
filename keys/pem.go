package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrUnsupportedKey is returned for PEM that holds no key of a supported
// type (RSA ≥ 2048 bits, ECDSA P-256, Ed25519), and for a key that does not
// fit its registered algorithm.
var ErrUnsupportedKey = errors.New("keys: unsupported key")

// minRSABits is the smallest RSA modulus accepted anywhere (WeChat Pay uses 2048).
const minRSABits = 2048

// oidRSAPSS is id-RSASSA-PSS. Go's x509 parses only rsaEncryption keys, but
// OpenSSL writes RSA-PSS-restricted keys (as in the RFC 9421 test vectors)
// with this OID around an ordinary PKCS#1 key.
var oidRSAPSS = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}

// ParsePublicKeyPEM parses the first PEM block of b: a PKIX "PUBLIC KEY",
// a PKCS#1 "RSA PUBLIC KEY", or a "CERTIFICATE" (its subject public key).
// It returns ErrUnsupportedKey for any other key type.
func ParsePublicKeyPEM(b []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("keys: no PEM block")
	}
	var (
		pub crypto.PublicKey
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			pub, err = parsePSSPublicKey(block.Bytes, err)
		}
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("keys: PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: parse public key: %w", err)
	}
	if _, err := AlgorithmOf(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// parsePSSPublicKey retries a SubjectPublicKeyInfo labelled id-RSASSA-PSS as
// PKCS#1; orig is returned when it is anything else.
func parsePSSPublicKey(der []byte, orig error) (crypto.PublicKey, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &spki); err != nil || len(rest) > 0 || !spki.Algorithm.Algorithm.Equal(oidRSAPSS) {
		return nil, orig
	}
	return x509.ParsePKCS1PublicKey(spki.PublicKey.RightAlign())
}

// ParsePrivateKeyPEM parses the first private-key PEM block of b: PKCS#8
// "PRIVATE KEY" (including id-RSASSA-PSS keys), PKCS#1 "RSA PRIVATE KEY" or
// SEC1 "EC PRIVATE KEY" (an "EC PARAMETERS" block before it is skipped).
// Encrypted PEM is refused. Errors never contain key material.
func ParsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	var block *pem.Block
	for {
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("keys: no private key PEM block")
		}
		if block.Type != "EC PARAMETERS" {
			break
		}
	}
	if _, ok := block.Headers["Proc-Type"]; ok {
		return nil, errors.New("keys: encrypted PEM is not supported")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			key, err = parsePSSPrivateKey(block.Bytes, err)
		}
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("keys: PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T cannot sign", ErrUnsupportedKey, key)
	}
	if _, err := AlgorithmOf(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}

// parsePSSPrivateKey retries a PKCS#8 key labelled id-RSASSA-PSS as PKCS#1;
// orig is returned when it is anything else.
func parsePSSPrivateKey(der []byte, orig error) (any, error) {
	var p8 struct {
		Version    int
		Algorithm  pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	if rest, err := asn1.Unmarshal(der, &p8); err != nil || len(rest) > 0 || !p8.Algorithm.Algorithm.Equal(oidRSAPSS) {
		return nil, orig
	}
	return x509.ParsePKCS1PrivateKey(p8.PrivateKey)
}

// MarshalPublicKeyPEM encodes pub as a PKIX "PUBLIC KEY" PEM block.
func MarshalPublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("keys: marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// MarshalPrivateKeyPEM encodes k as a PKCS#8 "PRIVATE KEY" PEM block. The
// result is secret: write it only to 0600 files or a secret store.
func MarshalPrivateKeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("keys: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// AlgorithmOf returns the default algorithm for pub: RSAPKCS1SHA256 for RSA
// (≥ 2048 bits), ECDSAP256SHA256 for ECDSA on P-256, Ed25519 for Ed25519. Any
// other key is ErrUnsupportedKey.
func AlgorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return "", fmt.Errorf("%w: RSA key of %d bits, need %d", ErrUnsupportedKey, p.N.BitLen(), minRSABits)
		}
		return RSAPKCS1SHA256, nil
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: ECDSA curve %s, need P-256", ErrUnsupportedKey, p.Curve.Params().Name)
		}
		return ECDSAP256SHA256, nil
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return "", fmt.Errorf("%w: bad Ed25519 key length", ErrUnsupportedKey)
		}
		return Ed25519, nil
	}
	return "", fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

// checkAlgorithm reports whether pub may be registered with algorithm alg:
// an RSA key may use either RSA algorithm, other keys only their own.
func checkAlgorithm(alg Algorithm, pub crypto.PublicKey) error {
	def, err := AlgorithmOf(pub)
	if err != nil {
		return err
	}
	if alg == def || (alg == RSAPSSSHA512 && def == RSAPKCS1SHA256) {
		return nil
	}
	return fmt.Errorf("%w: %s key registered as %q", ErrUnsupportedKey, def, alg)
}

// Generate makes a new key for alg: RSA-2048 for the RSA algorithms, P-256
// for ECDSA, Ed25519. A nil rand means crypto/rand.
func Generate(alg Algorithm, rand io.Reader) (crypto.Signer, error) {
	if rand == nil {
		rand = cryptoRand
	}
	switch alg {
	case RSAPKCS1SHA256, RSAPSSSHA512:
		return rsa.GenerateKey(rand, minRSABits)
	case ECDSAP256SHA256:
		return ecdsa.GenerateKey(elliptic.P256(), rand)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand)
		return k, err
	}
	return nil, fmt.Errorf("%w: algorithm %q", ErrUnsupportedKey, alg)
}

var cryptoRand = rand.Reader

// NewKeyID returns prefix followed by 40 uppercase hex digits (160 random
// bits), the shape of a WeChat Pay certificate serial. A nil rand means
// crypto/rand. It panics if rand fails, as crypto/rand never does.
func NewKeyID(prefix string, rand io.Reader) string {
	if rand == nil {
		rand = cryptoRand
	}
	var b [20]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		panic("keys: reading randomness: " + err.Error())
	}
	return prefix + strings.ToUpper(hex.EncodeToString(b[:]))
}
