package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/quillpay/quill/merchant"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quillpay/quill/certs"
	"github.com/quillpay/quill/internal/tlsadmin"
)

func TestCertsCommands(t *testing.T) {
	dir, reg := setup(t) // dev material, and the registry the audit events go to
	list := func() tlsadmin.Listing {
		t.Helper()
		out, err := quillctl(t, dir, "certs", "list", "--json")
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var l tlsadmin.Listing
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if strings.Contains(out, "PRIVATE KEY") {
			t.Fatal("certs list shows a private key")
		}
		return l
	}
	serverSerial := func(l tlsadmin.Listing) string {
		for _, c := range l.Certificates {
			if c.Item == "server" {
				return c.Serial
			}
		}
		t.Fatal("no server certificate listed")
		return ""
	}
	l := list()
	if len(l.Problems) != 0 || len(l.Certificates) != 3 || len(l.Revoked) != 0 {
		t.Fatalf("after dev init: %+v", l)
	}

	// Issue from the merchant's own key (a CSR) and from a new key.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "whatever"}}, key)
	csrFile, certFile := filepath.Join(dir, "m.csr"), filepath.Join(dir, "m.pem")
	os.WriteFile(csrFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o600)
	if out, err := quillctl(t, dir, "certs", "issue", "M700", "--csr", csrFile, "--out", certFile); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	b, _ := os.ReadFile(certFile)
	issued, err := certs.ParseCertificate(b)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := certs.MerchantID(issued); id != "M700" || !issued.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Fatalf("issued for %q", id)
	}
	keyOut, cert2 := filepath.Join(dir, "n.key"), filepath.Join(dir, "n.pem")
	if out, err := quillctl(t, dir, "certs", "issue", "M701", "--out", cert2, "--key-out", keyOut); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if fi, err := os.Stat(keyOut); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key file: %v %v", err, fi)
	}

	// Rotate the server certificate.
	before := serverSerial(l)
	if out, err := quillctl(t, dir, "certs", "rotate-server", "--host", "api.quill.test"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if serverSerial(list()) == before {
		t.Fatal("server certificate not rotated")
	}

	// Revoke by file and by serial (colons allowed).
	if out, err := quillctl(t, dir, "certs", "revoke", "--cert", certFile); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	other, _ := certs.ParseCertificate(mustRead(t, cert2))
	hex := fmt.Sprintf("%X", other.SerialNumber)
	if out, err := quillctl(t, dir, "certs", "revoke", hex[:2]+":"+hex[2:]); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	l = list()
	// Both revocations share a second, so the CRL's order between them is not
	// defined: compare as a set.
	revoked := map[string]bool{}
	for _, r := range l.Revoked {
		revoked[r.Serial] = true
	}
	if len(l.Revoked) != 2 || !revoked[fmt.Sprintf("%X", issued.SerialNumber)] || !revoked[hex] || l.CRLNumber != "3" {
		t.Fatalf("revoked %+v, CRL number %s", l.Revoked, l.CRLNumber)
	}
	// Every certificate action is an operator event, with who did it.
	for _, want := range []struct {
		subject string
		action  merchant.Action
		n       int
	}{
		{"M700", merchant.CertIssued, 1},
		{"M701", merchant.CertIssued, 1},
		{"tls/server", merchant.CertRotated, 1},
		{"tls/crl", merchant.CertRevoked, 2},
	} {
		evs := events(t, reg, want.subject)
		got := 0
		for _, ev := range evs {
			if ev.Action == want.action && ev.Actor == "alice@ops" && (ev.NewKeyID != "" || ev.OldKeyID != "") {
				got++
			}
		}
		if got != want.n {
			t.Errorf("%s %s: %d events, want %d: %+v", want.subject, want.action, got, want.n, evs)
		}
	}

	// Mistakes are refused with a clear message and change nothing.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"certs", "revoke", "--cert", certFile}, "revoked"},
		{[]string{"certs", "revoke", "zz"}, "not a positive hex"},
		{[]string{"certs", "revoke"}, "SERIAL or --cert"},
		{[]string{"certs", "issue", "M702"}, "--csr"},
		{[]string{"certs", "issue", "bad id!", "--key-out", filepath.Join(dir, "x.key"), "--out", filepath.Join(dir, "x.pem")}, "merchant id"},
		{[]string{"certs", "issue", "M703", "--key-out", keyOut, "--out", filepath.Join(dir, "y.pem")}, "exists"},
		{[]string{"certs", "rotate-server"}, "--host"},
		{[]string{"certs", "rotate-server", "--cert", certFile, "--key", keyOut}, "server"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := quillctl(t, dir, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v (out %s), want %q", err, out, tc.want)
			}
		})
	}
	if l2 := list(); len(l2.Revoked) != 2 || serverSerial(l2) != serverSerial(l) {
		t.Fatal("a refused command changed the store")
	}
	if out, err := quillctl(t, dir, "certs", "list"); err != nil || !strings.Contains(out, "REVOKED SERIAL") || !strings.Contains(out, hex) {
		t.Fatalf("table: %v\n%s", err, out)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
