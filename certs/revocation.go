package certs

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// DefaultCRLValidity is how far ahead a CRL written by Revoke or NewCRL
// sets its NextUpdate.
const DefaultCRLValidity = 30 * 24 * time.Hour

// CRL is a parsed X.509 certificate revocation list whose signature has been
// checked against a CA of the client bundle. It revokes serials issued by
// that CA only.
type CRL struct {
	issuer  string // raw subject of the issuing CA
	serials map[string]time.Time
	Number  *big.Int
	// ThisUpdate and NextUpdate are the CRL's own times.
	ThisUpdate, NextUpdate time.Time
}

// Revoked lists the revoked serials (hex) with their revocation times.
func (l *CRL) Revoked() map[string]time.Time { return l.serials }

// IsRevoked reports whether c was issued by the CRL's CA and its serial is
// listed. A nil CRL revokes everything: with no list loaded nothing passes.
func (l *CRL) IsRevoked(c *x509.Certificate) bool {
	if l == nil {
		return true
	}
	if string(c.RawIssuer) != l.issuer {
		return false
	}
	_, ok := l.serials[serialKey(c.SerialNumber)]
	return ok
}

func serialKey(s *big.Int) string { return s.Text(16) }

// ParseCRL parses a PEM "X509 CRL" and checks that one of cas signed it.
// Errors wrap ErrBadMaterial and never quote the input.
func ParseCRL(crlPEM []byte, cas []*x509.Certificate) (*CRL, error) {
	blk, rest := pem.Decode(crlPEM)
	if blk == nil || blk.Type != "X509 CRL" || len(trimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%w: CRL: want exactly one PEM X509 CRL block", ErrBadMaterial)
	}
	rl, err := x509.ParseRevocationList(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: CRL: %w", ErrBadMaterial, err)
	}
	var signer *x509.Certificate
	for _, ca := range cas {
		if string(ca.RawSubject) == string(rl.RawIssuer) && rl.CheckSignatureFrom(ca) == nil {
			signer = ca
			break
		}
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: CRL is not signed by a CA of the client bundle", ErrBadMaterial)
	}
	l := &CRL{issuer: string(signer.RawSubject), serials: map[string]time.Time{}, Number: rl.Number, ThisUpdate: rl.ThisUpdate, NextUpdate: rl.NextUpdate}
	for _, e := range rl.RevokedCertificateEntries {
		l.serials[serialKey(e.SerialNumber)] = e.RevocationTime
	}
	return l, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// NewCRL returns an empty CRL (number 1) signed by ca.
func NewCRL(ca *CA, now time.Time) ([]byte, error) {
	return signCRL(ca, nil, big.NewInt(1), now)
}

// Revoke returns crlPEM (a CRL signed by ca; empty for none yet) with serial
// added, its number raised by one and signed again by ca. Revoking a serial
// already listed is an error wrapping ErrRevoked, so a mistyped repeat is
// visible; nothing is returned then.
func Revoke(ca *CA, crlPEM []byte, serial *big.Int, now time.Time) ([]byte, error) {
	if serial == nil || serial.Sign() <= 0 {
		return nil, errors.New("certs: revoke: serial must be positive")
	}
	var entries []x509.RevocationListEntry
	number := big.NewInt(1)
	if len(trimSpace(crlPEM)) > 0 {
		blk, _ := pem.Decode(crlPEM)
		if _, err := ParseCRL(crlPEM, []*x509.Certificate{ca.Cert}); err != nil {
			return nil, fmt.Errorf("certs: revoke: the stored CRL is not this CA's (%w); nothing changed", err)
		}
		rl, _ := x509.ParseRevocationList(blk.Bytes)
		entries = rl.RevokedCertificateEntries
		if rl.Number != nil {
			number = new(big.Int).Add(rl.Number, big.NewInt(1))
		}
	}
	for _, e := range entries {
		if e.SerialNumber.Cmp(serial) == 0 {
			return nil, fmt.Errorf("%w: serial %X was revoked at %s", ErrRevoked, serial, e.RevocationTime.UTC().Format(time.RFC3339))
		}
	}
	entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: now.UTC()})
	return signCRL(ca, entries, number, now)
}

func signCRL(ca *CA, entries []x509.RevocationListEntry, number *big.Int, now time.Time) ([]byte, error) {
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		RevokedCertificateEntries: entries,
		Number:                    number,
		ThisUpdate:                now.Add(-backdate),
		NextUpdate:                now.Add(DefaultCRLValidity),
	}, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("certs: sign CRL: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}
