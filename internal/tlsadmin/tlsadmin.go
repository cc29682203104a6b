// Package tlsadmin is what an operator does to the TLS material in the key
// store — issue a merchant's client certificate, rotate the server
// certificate, revoke a client certificate in the CRL, list — shared by
// `quillctl certs` and the tests that prove a running server picks the
// changes up. It composes keys (where the material lives) and certs (what
// it means); it reads configuration from nowhere.
//
// Every change is one keys.TLSStore.EditTLS: validated before it is
// written, with check-and-set in Vault, so a failed or concurrent change
// leaves the store as it was.
package tlsadmin

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/quillpay/quill/certs"
	"github.com/quillpay/quill/keys"
)

// Issuer loads the client CA (certificate and key) from tls/issuer.
func Issuer(ctx context.Context, s keys.TLSStore) (*certs.CA, error) {
	it, err := s.TLSItem(ctx, keys.TLSIssuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	return certs.LoadCA(it.CertificatePEM, it.PrivateKeyPEM)
}

// IssueClient issues merchant's client certificate from the client CA: for
// the key in csrPEM (checked) when given, else for a fresh P-256 key,
// returned as keyPEM (write it once, 0600; Quill keeps no copy).
func IssueClient(ctx context.Context, s keys.TLSStore, merchant string, csrPEM []byte, validity time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	ca, err := Issuer(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	if err := checkInBundle(ctx, s, ca); err != nil {
		return nil, nil, err
	}
	if csrPEM == nil {
		return ca.IssueClient(merchant, validity, now)
	}
	csr, err := certs.ParseCSR(csrPEM)
	if err != nil {
		return nil, nil, err
	}
	certPEM, err = ca.IssueClientFor(merchant, csr.PublicKey, validity, now)
	return certPEM, nil, err
}

// checkInBundle refuses to issue from a CA the server does not trust.
func checkInBundle(ctx context.Context, s keys.TLSStore, ca *certs.CA) error {
	it, err := s.TLSItem(ctx, keys.TLSClientCA)
	if err != nil {
		return fmt.Errorf("client CA bundle: %w", err)
	}
	b, err := certs.ParseBundle(it.BundlePEM)
	if err != nil {
		return err
	}
	for _, c := range b.CAs {
		if c.Equal(ca.Cert) {
			return nil
		}
	}
	return errors.New("the issuer is not in the client CA bundle: the server would refuse its certificates")
}

// RotateServer replaces the server certificate: with certPEM and keyPEM
// when given (a certificate from another CA), else with one the issuer
// issues for hosts. The new pair is checked before it is written; the
// server serves it to new handshakes after its next refresh.
func RotateServer(ctx context.Context, s keys.TLSStore, hosts []string, certPEM, keyPEM []byte, validity time.Duration, now time.Time) (*x509.Certificate, error) {
	if certPEM == nil {
		ca, err := Issuer(ctx, s)
		if err != nil {
			return nil, err
		}
		if certPEM, keyPEM, err = ca.IssueServer(hosts, validity, now); err != nil {
			return nil, err
		}
	}
	pair, err := certs.ParseServerPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	err = s.EditTLS(ctx, keys.TLSServer, func(it *keys.TLSItem, _ time.Time) error {
		it.CertificatePEM, it.PrivateKeyPEM = certPEM, keyPEM
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pair.Leaf, nil
}

// Revoke adds serial to the CRL in the store, signed again by the issuer.
// It returns an error wrapping certs.ErrRevoked if the serial is listed.
func Revoke(ctx context.Context, s keys.TLSStore, serial *big.Int, now time.Time) error {
	ca, err := Issuer(ctx, s)
	if err != nil {
		return err
	}
	return s.EditTLS(ctx, keys.TLSCRL, func(it *keys.TLSItem, _ time.Time) error {
		crl, err := certs.Revoke(ca, it.CRLPEM, serial, now)
		if err != nil {
			return err
		}
		it.CRLPEM = crl
		return nil
	})
}

// Cert is one certificate in a listing.
type Cert struct {
	Item      keys.TLSName `json:"item"`
	Subject   string       `json:"subject"`
	Serial    string       `json:"serial"`
	NotBefore time.Time    `json:"not_before"`
	NotAfter  time.Time    `json:"not_after"`
	DNSNames  []string     `json:"dns_names,omitempty"`
	IPs       []string     `json:"ip_addresses,omitempty"`
}

// RevokedSerial is one CRL entry.
type RevokedSerial struct {
	Serial    string    `json:"serial"`
	RevokedAt time.Time `json:"revoked_at"`
}

// Listing is what the store holds, without any private key.
type Listing struct {
	Certificates []Cert          `json:"certificates"`
	CRLNumber    string          `json:"crl_number,omitempty"`
	CRLNext      time.Time       `json:"crl_next_update,omitzero"`
	Revoked      []RevokedSerial `json:"revoked"`
	// Problems names items missing or unusable (what the server would
	// report on /readyz).
	Problems []string `json:"problems,omitempty"`
}

// List describes the TLS material in the store.
func List(ctx context.Context, s keys.TLSStore) (Listing, error) {
	var l Listing
	var cas []*x509.Certificate
	for _, name := range keys.TLSNames {
		it, err := s.TLSItem(ctx, name)
		if errors.Is(err, keys.ErrNotFound) || errors.Is(err, keys.ErrInvalid) {
			l.Problems = append(l.Problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		if err != nil {
			return l, err
		}
		var pem []byte
		switch name {
		case keys.TLSServer, keys.TLSIssuer:
			pem = it.CertificatePEM
		case keys.TLSClientCA:
			b, err := certs.ParseBundle(it.BundlePEM)
			if err != nil {
				l.Problems = append(l.Problems, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			cas = b.CAs
			for _, c := range b.CAs {
				l.Certificates = append(l.Certificates, describe(name, c))
			}
			continue
		case keys.TLSCRL:
			crl, err := certs.ParseCRL(it.CRLPEM, cas)
			if err != nil {
				l.Problems = append(l.Problems, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			if crl.Number != nil {
				l.CRLNumber = crl.Number.String()
			}
			l.CRLNext = crl.NextUpdate.UTC()
			for serial, at := range crl.Revoked() {
				l.Revoked = append(l.Revoked, RevokedSerial{Serial: upperHex(serial), RevokedAt: at.UTC()})
			}
			sort.Slice(l.Revoked, func(i, j int) bool { return l.Revoked[i].RevokedAt.Before(l.Revoked[j].RevokedAt) })
			continue
		}
		c, err := certs.ParseCertificate(pem)
		if err != nil {
			l.Problems = append(l.Problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		l.Certificates = append(l.Certificates, describe(name, c))
	}
	return l, nil
}

func describe(item keys.TLSName, c *x509.Certificate) Cert {
	out := Cert{Item: item, Subject: c.Subject.String(), Serial: fmt.Sprintf("%X", c.SerialNumber),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), DNSNames: c.DNSNames}
	for _, ip := range c.IPAddresses {
		out.IPs = append(out.IPs, ip.String())
	}
	return out
}

func upperHex(s string) string {
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		return s
	}
	return fmt.Sprintf("%X", n)
}

// ParseSerial reads a certificate serial as quillctl prints it: hex, with
// an optional "0x" prefix and optional colons.
func ParseSerial(s string) (*big.Int, error) {
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			clean = append(clean, s[i])
		}
	}
	str := string(clean)
	if len(str) > 2 && (str[:2] == "0x" || str[:2] == "0X") {
		str = str[2:]
	}
	n, ok := new(big.Int).SetString(str, 16)
	if !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("serial %q is not a positive hex number", s)
	}
	return n, nil
}
