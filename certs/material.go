package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
)

// ParseServerPair parses the server's certificate chain and private key and
// checks that they match and that the leaf may authenticate a server.
// Errors wrap ErrBadMaterial and never quote the key.
func ParseServerPair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: server certificate and key: %w", ErrBadMaterial, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%w: server certificate: %w", ErrBadMaterial, err)
		}
		pair.Leaf = leaf
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return nil, fmt.Errorf("%w: server certificate lacks serverAuth", ErrBadMaterial)
	}
	return &pair, nil
}

// Bundle is the set of CAs a client certificate must chain to.
type Bundle struct {
	Pool *x509.CertPool
	CAs  []*x509.Certificate
}

// ParseBundle parses a PEM bundle of CA certificates; every block must be a
// CA certificate and there must be at least one. Errors wrap ErrBadMaterial.
func ParseBundle(bundlePEM []byte) (*Bundle, error) {
	b := &Bundle{Pool: x509.NewCertPool()}
	for rest := bundlePEM; len(trimSpace(rest)) > 0; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: client CA bundle: not a PEM certificate", ErrBadMaterial)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: client CA bundle: %w", ErrBadMaterial, err)
		}
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, fmt.Errorf("%w: client CA bundle: %q is not a CA", ErrBadMaterial, c.Subject.String())
		}
		b.Pool.AddCert(c)
		b.CAs = append(b.CAs, c)
	}
	if len(b.CAs) == 0 {
		return nil, fmt.Errorf("%w: client CA bundle is empty", ErrBadMaterial)
	}
	return b, nil
}

// ParseCSR parses a PEM certificate request and checks its signature, so a
// certificate is only ever issued for a key its requester holds.
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || (blk.Type != "CERTIFICATE REQUEST" && blk.Type != "NEW CERTIFICATE REQUEST") {
		return nil, fmt.Errorf("%w: not a PEM certificate request", ErrBadMaterial)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate request: %w", ErrBadMaterial, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: certificate request signature: %w", ErrBadMaterial, err)
	}
	return csr, nil
}

// ParseCertificate parses the first PEM certificate of b.
func ParseCertificate(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: not a PEM certificate", ErrBadMaterial)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMaterial, err)
	}
	return c, nil
}
