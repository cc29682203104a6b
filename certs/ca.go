package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

// backdate is how far before "now" a certificate's validity starts, so that
// a peer whose clock is a little behind accepts it.
const backdate = 5 * time.Minute

// CA is a development certificate authority that issues Quill's server
// certificate and the merchants' client certificates. In production the CA
// key lives in Vault or an HSM. CA cannot be printed with its key: fmt shows
// only the subject.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// String names the CA without its key.
func (ca *CA) String() string {
	if ca == nil || ca.Cert == nil {
		return "certs.CA{}"
	}
	return "certs.CA{" + ca.Cert.Subject.String() + ", key REDACTED}"
}

// Format prints only String, for every verb including %#v.
func (ca *CA) Format(f fmt.State, _ rune) { fmt.Fprint(f, ca.String()) }

// NewCA creates a self-signed CA with an ECDSA P-256 key, valid from now
// (less a few minutes for clock skew) for validity. It may issue only end
// entity certificates (path length 0).
func NewCA(commonName string, validity time.Duration, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	tmpl, err := template(pkix.Name{CommonName: commonName}, validity, now)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certs: create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA parses a CA certificate and its private key (PKCS#8, PKCS#1 or
// SEC1 PEM), checking that they match and that the certificate is a CA.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: load CA: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("certs: load CA: key cannot sign")
	}
	cert := pair.Leaf
	if cert == nil {
		if cert, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certs: load CA: %w", err)
		}
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("certs: load CA: certificate is not a CA")
	}
	return &CA{Cert: cert, Key: signer}, nil
}

// PEM returns the CA certificate and its PKCS#8 private key. keyPEM is
// secret: write it only to a 0600 file or a secret store.
func (ca *CA) PEM() (certPEM, keyPEM []byte, err error) {
	keyPEM, err = marshalKey(ca.Key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(ca.Cert.Raw), keyPEM, nil
}

// IssueServer issues a server certificate (serverAuth) for hosts: IP
// addresses become IP SANs, anything else a DNS SAN; the first host is also
// the subject CN.
func (ca *CA) IssueServer(hosts []string, validity time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("certs: server certificate needs at least one host")
	}
	tmpl, err := template(pkix.Name{CommonName: hosts[0]}, validity, now)
	if err != nil {
		return nil, nil, err
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	return ca.issue(tmpl)
}

// IssueClient issues a merchant's client certificate (clientAuth only)
// with a fresh P-256 key: CN is merchantID and the SAN URI is
// quill://merchant/<merchantID>.
func (ca *CA) IssueClient(merchantID string, validity time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	tmpl, err := clientTemplate(merchantID, validity, now)
	if err != nil {
		return nil, nil, err
	}
	return ca.issue(tmpl)
}

// IssueClientFor issues a merchant's client certificate for pub, a key the
// merchant holds (from a CSR checked with ParseCSR): the identity is
// merchantID whatever the request's subject says.
func (ca *CA) IssueClientFor(merchantID string, pub crypto.PublicKey, validity time.Duration, now time.Time) (certPEM []byte, err error) {
	tmpl, err := clientTemplate(merchantID, validity, now)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("certs: issue: %w", err)
	}
	return encodeCert(der), nil
}

func clientTemplate(merchantID string, validity time.Duration, now time.Time) (*x509.Certificate, error) {
	if !merchantIDPattern.MatchString(merchantID) {
		return nil, fmt.Errorf("%w: invalid merchant id %q", ErrNoIdentity, merchantID)
	}
	tmpl, err := template(pkix.Name{CommonName: merchantID}, validity, now)
	if err != nil {
		return nil, err
	}
	tmpl.URIs = []*url.URL{{Scheme: "quill", Host: "merchant", Path: "/" + merchantID}}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return tmpl, nil
}

// issue signs tmpl with a fresh P-256 key and returns the PEM pair.
func (ca *CA) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: issue: %w", err)
	}
	keyPEM, err = marshalKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// template starts a certificate valid from now-backdate to now+validity with
// a random 128-bit serial.
func template(subject pkix.Name, validity time.Duration, now time.Time) (*x509.Certificate, error) {
	if validity <= 0 {
		return nil, errors.New("certs: validity must be positive")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("certs: serial: %w", err)
	}
	serial.Add(serial, big.NewInt(1)) // never zero
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
	}, nil
}

func marshalKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("certs: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
