package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"time"
)

// tls12Suites are the TLS 1.2 suites allowed: ECDHE key exchange (forward
// secrecy) with an AEAD. TLS 1.3 suites are not configurable and all qualify.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ServerOptions configures ServerTLSConfig.
type ServerOptions struct {
	// ClientCAs returns the CAs a merchant's client certificate must chain
	// to, read at every handshake (e.g. Live.ClientCAs).
	ClientCAs func() *x509.CertPool
	// Certificate returns the server certificate, e.g. Reloader.GetCertificate.
	Certificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// IsRevoked reports a revoked certificate, e.g. RevocationList.IsRevoked.
	// Optional.
	IsRevoked func(*x509.Certificate) bool
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time
}

// ServerTLSConfig returns the merchant API's TLS configuration: TLS 1.2+
// (ECDHE AEAD suites only on 1.2; 1.3 negotiated when the client offers it),
// a client certificate required and verified against o.ClientCAs, and a
// VerifyConnection check, which Go also runs on resumed sessions, that the
// leaf is within validity, carries clientAuth (ErrNotClient), that no
// certificate of the chain is revoked (ErrRevoked) and that it names a
// merchant (ErrNoIdentity).
func ServerTLSConfig(o ServerOptions) *tls.Config {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	base := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   slices.Clone(tls12Suites),
		ClientAuth:     tls.RequireAndVerifyClientCert,
		GetCertificate: o.Certificate,
		Time:           now,
	}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		// The CA pool of this handshake; session tickets stay encrypted
		// with base's keys (crypto/tls uses the original config's keys).
		c := base.Clone()
		c.GetConfigForClient = nil
		pool := o.ClientCAs()
		c.ClientCAs = pool
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if cs.DidResume {
				// A resumed session skips chain verification: check the
				// chain against the CAs trusted now.
				if err := verifyChain(cs, pool, now()); err != nil {
					return err
				}
			}
			return verifyClient(cs, now(), o.IsRevoked)
		}
		return c, nil
	}
	return base
}

// verifyChain verifies a resumed session's client certificate against pool.
func verifyChain(cs tls.ConnectionState, pool *x509.CertPool, now time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: no client certificate", ErrNotClient)
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return fmt.Errorf("%w: resumed session's certificate no longer chains to a trusted CA: %w", ErrNotClient, err)
	}
	return nil
}

// verifyClient is the per-connection (and per-resumption) client check.
func verifyClient(cs tls.ConnectionState, now time.Time, isRevoked func(*x509.Certificate) bool) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: no client certificate", ErrNotClient)
	}
	if len(cs.VerifiedChains) == 0 {
		return fmt.Errorf("%w: client certificate not verified", ErrNotClient)
	}
	leaf := cs.PeerCertificates[0]
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return fmt.Errorf("%w: client certificate outside its validity", ErrNotClient)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return ErrNotClient
	}
	if isRevoked != nil {
		for _, chain := range cs.VerifiedChains {
			for _, c := range chain {
				if isRevoked(c) {
					return fmt.Errorf("%w: serial %X", ErrRevoked, c.SerialNumber)
				}
			}
		}
	}
	_, err := MerchantID(leaf)
	return err
}

// Identify re-runs the connection check for one request and returns the
// merchant the client certificate names. The handshake check alone is not
// enough: a keep-alive connection can outlive its certificate's validity or
// revocation, and would otherwise keep being served. cs is
// http.Request.TLS; nil is refused.
func (o ServerOptions) Identify(cs *tls.ConnectionState) (string, error) {
	if cs == nil {
		return "", fmt.Errorf("%w: not a TLS connection", ErrNoIdentity)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if err := verifyClient(*cs, now(), o.IsRevoked); err != nil {
		return "", err
	}
	return PeerMerchant(cs)
}

// PeerMerchant returns the merchant named by the verified client
// certificate of a connection (http.Request.TLS in a handler). It returns
// ErrNoIdentity when there is no verified client certificate.
func PeerMerchant(cs *tls.ConnectionState) (string, error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", fmt.Errorf("%w: no verified client certificate", ErrNoIdentity)
	}
	return MerchantID(cs.VerifiedChains[0][0])
}
