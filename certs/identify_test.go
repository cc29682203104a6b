package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"
)

// TestIdentifyRechecksEveryRequest: a connection's certificate is checked
// again per request, so revocation and expiry take effect on keep-alive
// connections that never handshake again.
func TestIdentifyRechecksEveryRequest(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test CA", time.Hour, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.IssueClient("M42", 10*time.Minute, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cs := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf, ca.Cert}}}
	revoked := false
	o := ServerOptions{IsRevoked: func(c *x509.Certificate) bool { return revoked && c.SerialNumber.Cmp(leaf.SerialNumber) == 0 }}

	o.Now = func() time.Time { return now }
	if id, err := o.Identify(cs); err != nil || id != "M42" {
		t.Fatalf("Identify = %q, %v", id, err)
	}
	revoked = true
	if _, err := o.Identify(cs); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked certificate: %v", err)
	}
	revoked = false
	o.Now = func() time.Time { return now.Add(20 * time.Minute) }
	if _, err := o.Identify(cs); !errors.Is(err, ErrNotClient) {
		t.Fatalf("expired certificate: %v", err)
	}
	if _, err := o.Identify(nil); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("no TLS: %v", err)
	}
	if _, err := o.Identify(&tls.ConnectionState{}); err == nil {
		t.Fatal("a connection without a verified certificate was identified")
	}
}
