package certs

import (
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"
)

func TestRevoke(t *testing.T) {
	ca := newCA(t, "CA")
	other := newCA(t, "Other")
	now := time.Now()
	crlPEM, err := NewCRL(ca, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 3; i++ {
		if crlPEM, err = Revoke(ca, crlPEM, big.NewInt(0x100+i), now); err != nil {
			t.Fatal(err)
		}
	}
	l, err := ParseCRL(crlPEM, []*x509.Certificate{other.Cert, ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	if l.Number.Int64() != 4 || len(l.Revoked()) != 3 || !l.NextUpdate.After(now) {
		t.Fatalf("number %v, %d revoked, next update %v", l.Number, len(l.Revoked()), l.NextUpdate)
	}
	mine := func(n int64) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(n), RawIssuer: ca.Cert.RawSubject}
	}
	theirs := &x509.Certificate{SerialNumber: big.NewInt(0x101), RawIssuer: other.Cert.RawSubject}
	for _, tc := range []struct {
		name string
		c    *x509.Certificate
		want bool
	}{
		{"listed", mine(0x101), true},
		{"last listed", mine(0x103), true},
		{"not listed", mine(0x104), false},
		{"same serial, other issuer", theirs, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := l.IsRevoked(tc.c); got != tc.want {
				t.Fatalf("IsRevoked = %v", got)
			}
		})
	}
	if _, err := Revoke(ca, crlPEM, big.NewInt(0x102), now); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoking twice: %v", err)
	}
	if _, err := ParseCRL(crlPEM, []*x509.Certificate{other.Cert}); !errors.Is(err, ErrBadMaterial) {
		t.Fatalf("CRL checked against the wrong CA: %v", err)
	}
	var nilList *CRL
	if !nilList.IsRevoked(mine(1)) {
		t.Fatal("no list must refuse")
	}
}

func FuzzParseCRL(f *testing.F) {
	ca, err := NewCA("fuzz", time.Hour, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	good, _ := Revoke(ca, nil, big.NewInt(7), time.Now())
	f.Add(good)
	f.Add([]byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseCRL(b, []*x509.Certificate{ca.Cert})
		if err != nil {
			return
		}
		// Only a list this CA signed parses: and it still says what it said.
		if l.issuer != string(ca.Cert.RawSubject) {
			t.Fatal("accepted a CRL of another issuer")
		}
	})
}
