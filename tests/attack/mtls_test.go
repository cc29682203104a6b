package attack

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/quillpay/quill/certs"
)

// TestMTLSMatrix is issue 11 item 15: a client that presents no
// certificate, one from another CA, an expired or not-yet-valid one, a
// revoked one, one without clientAuth (a server certificate), or that
// speaks TLS below 1.2 (or 1.2 without an AEAD suite) gets no HTTP answer at
// all: the handshake fails, the correctly signed payment it then writes is
// never read, and nothing changes. The merchant's own certificate over the
// same path is served.
func TestMTLSMatrix(t *testing.T) {
	s := shared(t)
	_, tok := s.wallet(t, "10.00")
	now := time.Now()
	rogue, err := certs.NewCA("Rogue CA", time.Hour, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	rogueCert := func() *tls.Certificate {
		c, k, err := rogue.IssueClient(honest, time.Hour, now.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		p := pair(t, c, k)
		return &p
	}()
	serverOnly := func() *tls.Certificate {
		c, k, err := s.ca(t).IssueServer([]string{honest, "127.0.0.1"}, time.Hour, now.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		p := pair(t, c, k)
		return &p
	}()
	expired := s.issue(t, honest, time.Hour, now.Add(-2*time.Hour))
	notYet := s.issue(t, honest, time.Hour, now.Add(time.Hour))
	for _, c := range []struct {
		name   string
		cert   *tls.Certificate
		adjust func(*tls.Config)
	}{
		{"no certificate", nil, nil},
		{"another CA", rogueCert, nil},
		{"expired", &expired, nil},
		{"not yet valid", &notYet, nil},
		{"revoked", &s.revoked, nil},
		{"serverAuth only", serverOnly, nil},
		{"TLS 1.1", s.cert(honest), func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }},
		{"TLS 1.0", s.cert(honest), func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS10 }},
		{"TLS 1.2 with CBC", s.cert(honest), func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := s.state(t)
			r := s.sign(t, honest, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", tok))
			if res, err := s.tryExchange(c.cert, c.adjust, r.raw()); err == nil {
				t.Fatalf("answered over a refused handshake: %d %s", res.Status, res.Body)
			}
			s.unchanged(t, before)
			if s.nonceClaimed(t, honest, r.nonce) {
				t.Fatal("the request was read")
			}
		})
	}
	t.Run("plain HTTP on the TLS port", func(t *testing.T) {
		before := s.state(t)
		r := s.sign(t, honest, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", tok))
		c, err := net.Dial("tcp", hostPort(s.base))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(15 * time.Second))
		io.WriteString(c, r.raw())
		got, _ := io.ReadAll(c)
		if bytes.Contains(got, []byte("HTTP/")) {
			t.Fatalf("answered in HTTP: %q", got)
		}
		s.unchanged(t, before)
	})
	if r := s.send(t, honest, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", tok)); r.Status != http.StatusOK || !r.Signed {
		t.Fatalf("the merchant's own certificate: %d %s", r.Status, r.Body)
	}
}

// tryExchange is exchange that returns the failure instead of failing: a
// handshake that fails (TLS 1.3 reports a refused client certificate at the
// first read) is an error, as is a connection closed without an answer.
func (s *server) tryExchange(cert *tls.Certificate, adjust func(*tls.Config), raw string) (*response, error) {
	conn, err := s.dial(hostPort(s.base), cert, adjust)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(conn)
	return s.roundTrip(br, conn, raw)
}
