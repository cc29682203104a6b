package certs

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/fakeclock"
)

func newCA(tb testing.TB, name string) *CA {
	tb.Helper()
	ca, err := NewCA(name, 24*time.Hour, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return ca
}

func pool(cas ...*CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

// pair returns a function that turns an issued PEM pair (or its error) into
// a tls.Certificate: pair(t)(ca.IssueClient(…)).
func pair(tb testing.TB) func(certPEM, keyPEM []byte, err error) tls.Certificate {
	return func(certPEM, keyPEM []byte, err error) tls.Certificate {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
}

func clientCert(tb testing.TB, ca *CA, id string) tls.Certificate {
	tb.Helper()
	return pair(tb)(ca.IssueClient(id, time.Hour, time.Now()))
}

// issueCustom signs tmpl (given a serial, validity and clientAuth) with ca.
func issueCustom(tb testing.TB, ca *CA, tmpl *x509.Certificate) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		tb.Fatal(err)
	}
	keyPEM, err := marshalKey(key)
	return pair(tb)(encodeCert(der), keyPEM, err)
}

func leaf(tb testing.TB, c tls.Certificate) *x509.Certificate {
	tb.Helper()
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		tb.Fatal(err)
	}
	return x
}

// memSource is a Source held in memory; tests change it and call Reload.
type memSource struct {
	mu                     sync.Mutex
	cert, key, bundle, crl []byte
	err                    error
}

func (m *memSource) ServerPair(context.Context) ([]byte, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cert, m.key, m.err
}

func (m *memSource) ClientCABundle(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bundle, m.err
}

func (m *memSource) CRL(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crl, m.err
}

func (m *memSource) set(f func(m *memSource)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

// result is what the test server saw of one connection.
type result struct {
	merchant string
	err      error
	resumed  bool
}

// serve accepts TLS connections with cfg; each reports on the returned
// channel and, if accepted, gets the merchant id back as its reply.
func serve(tb testing.TB, cfg *tls.Config) (addr string, results <-chan result) {
	tb.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ch := make(chan result, 16)
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				r := result{err: tc.Handshake()}
				cs := tc.ConnectionState()
				r.resumed = cs.DidResume
				if r.err == nil {
					r.merchant, r.err = PeerMerchant(&cs)
				}
				if r.err == nil {
					fmt.Fprintln(tc, r.merchant)
				}
				ch <- r
			})
		}
	})
	return ln.Addr().String(), ch
}

// dial connects with cfg and reads the server's reply.
func dial(tb testing.TB, addr string, cfg *tls.Config) (reply string, cs tls.ConnectionState, err error) {
	tb.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", cs, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cs = c.ConnectionState()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil {
		io.Copy(io.Discard, c) // lets the client take in session tickets
	}
	return strings.TrimSpace(line), cs, err
}

func receive(tb testing.TB, ch <-chan result) result {
	tb.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		tb.Fatal("server reported nothing")
		return result{}
	}
}

// testPKI is a client CA and live TLS material over a memory source, as
// cmd/quill wires them over the key store.
type testPKI struct {
	ca    *CA
	src   *memSource
	live  *Live
	clock *fakeclock.Clock
}

func newPKI(tb testing.TB) *testPKI {
	tb.Helper()
	p := &testPKI{ca: newCA(tb, "Quill test CA"), src: &memSource{}, clock: fakeclock.New(time.Now())}
	var err error
	if p.src.cert, p.src.key, err = p.ca.IssueServer([]string{"localhost", "127.0.0.1"}, time.Hour, time.Now()); err != nil {
		tb.Fatal(err)
	}
	p.src.bundle, _, _ = p.ca.PEM()
	if p.src.crl, err = NewCRL(p.ca, time.Now()); err != nil {
		tb.Fatal(err)
	}
	p.live = NewLive(p.src, LiveOptions{Now: p.clock.Now})
	if err := p.live.Reload(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return p
}

// revoke revokes c's serial in the source's CRL and reloads.
func (p *testPKI) revoke(tb testing.TB, c tls.Certificate) {
	tb.Helper()
	crl, err := Revoke(p.ca, p.src.crl, leaf(tb, c).SerialNumber, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	p.src.set(func(m *memSource) { m.crl = crl })
	if err := p.live.Reload(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

func (p *testPKI) serverConfig() *tls.Config { return ServerTLSConfig(p.live.ServerOptions()) }

func (p *testPKI) clientConfig(cert tls.Certificate) *tls.Config {
	return clientTLSConfig(pool(p.ca), cert, "localhost")
}

func TestHandshake(t *testing.T) {
	p := newPKI(t)
	addr, results := serve(t, p.serverConfig())
	other := newCA(t, "Other CA")
	revoked := clientCert(t, p.ca, "M300")
	p.revoke(t, revoked)

	for _, tc := range []struct {
		name      string
		cfg       func() *tls.Config
		want      string // merchant; "" means refused
		serverErr error  // wanted in the server's error chain, if set
	}{
		{"good client cert", func() *tls.Config { return p.clientConfig(clientCert(t, p.ca, "M100")) }, "M100", nil},
		{"good over TLS 1.2", func() *tls.Config {
			c := p.clientConfig(clientCert(t, p.ca, "M100"))
			c.MaxVersion = tls.VersionTLS12
			return c
		}, "M100", nil},
		{"no client cert", func() *tls.Config { return p.clientConfig(tls.Certificate{}) }, "", nil},
		{"cert from another CA", func() *tls.Config { return p.clientConfig(clientCert(t, other, "M100")) }, "", nil},
		{"expired cert", func() *tls.Config {
			return p.clientConfig(pair(t)(p.ca.IssueClient("M100", time.Hour, time.Now().Add(-48*time.Hour))))
		}, "", nil},
		{"server cert as client cert", func() *tls.Config {
			return p.clientConfig(pair(t)(p.ca.IssueServer([]string{"M100"}, time.Hour, time.Now())))
		}, "", nil},
		{"revoked serial", func() *tls.Config { return p.clientConfig(revoked) }, "", ErrRevoked},
		{"two merchant URIs", func() *tls.Config {
			return p.clientConfig(issueCustom(t, p.ca, &x509.Certificate{
				Subject: pkix.Name{CommonName: "M100"},
				URIs:    []*url.URL{{Scheme: "quill", Host: "merchant", Path: "/M1"}, {Scheme: "quill", Host: "merchant", Path: "/M2"}},
			}))
		}, "", ErrNoIdentity},
		{"SAN URI wins over CN", func() *tls.Config {
			return p.clientConfig(issueCustom(t, p.ca, &x509.Certificate{
				Subject: pkix.Name{CommonName: "M200"},
				URIs:    []*url.URL{{Scheme: "quill", Host: "merchant", Path: "/M100"}},
			}))
		}, "M100", nil},
		{"TLS 1.2 without AEAD", func() *tls.Config {
			c := p.clientConfig(clientCert(t, p.ca, "M100"))
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
			return c
		}, "", nil},
		{"TLS 1.1", func() *tls.Config {
			c := p.clientConfig(clientCert(t, p.ca, "M100"))
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			return c
		}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, _, clientErr := dial(t, addr, tc.cfg())
			r := receive(t, results)
			if tc.want != "" {
				if clientErr != nil || r.err != nil || reply != tc.want || r.merchant != tc.want {
					t.Fatalf("client %q %v, server %q %v; want %q", reply, clientErr, r.merchant, r.err, tc.want)
				}
				return
			}
			if clientErr == nil || r.err == nil || reply != "" {
				t.Fatalf("accepted: client %q %v, server %v", reply, clientErr, r.err)
			}
			if tc.serverErr != nil && !errors.Is(r.err, tc.serverErr) {
				t.Fatalf("server error %v, want %v", r.err, tc.serverErr)
			}
		})
	}
}

func TestRevokedOnResumption(t *testing.T) {
	p := newPKI(t)
	addr, results := serve(t, p.serverConfig())
	cert := clientCert(t, p.ca, "M100")
	cfg := p.clientConfig(cert)
	cfg.MinVersion = tls.VersionTLS13
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)

	for i, wantResumed := range []bool{false, true} { // the second proves resumption works
		reply, cs, err := dial(t, addr, cfg)
		r := receive(t, results)
		if err != nil || r.err != nil || reply != "M100" {
			t.Fatalf("connection %d: client %q %v, server %v", i, reply, err, r.err)
		}
		if cs.DidResume != wantResumed || r.resumed != wantResumed {
			t.Fatalf("connection %d: resumed client %v server %v, want %v", i, cs.DidResume, r.resumed, wantResumed)
		}
	}

	p.revoke(t, cert)
	reply, cs, err := dial(t, addr, cfg)
	r := receive(t, results)
	if !errors.Is(r.err, ErrRevoked) || !r.resumed {
		t.Fatalf("resumed connection with a revoked cert: server err %v, resumed %v; want ErrRevoked on a resumed session", r.err, r.resumed)
	}
	if err == nil || reply != "" || !cs.DidResume {
		t.Fatalf("client: reply %q, err %v, resumed %v", reply, err, cs.DidResume)
	}
}

func TestVerifyClient(t *testing.T) {
	ca := newCA(t, "CA")
	now := time.Now()
	good := leaf(t, clientCert(t, ca, "M1"))
	noEKU := leaf(t, pair(t)(ca.IssueServer([]string{"M1"}, time.Hour, now)))
	noName := leaf(t, issueCustom(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "not a merchant"}}))
	chain := func(c *x509.Certificate) tls.ConnectionState {
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c, ca.Cert}}}
	}
	revokedSerial := func(s *big.Int) func(*x509.Certificate) bool {
		return func(c *x509.Certificate) bool { return c.SerialNumber.Cmp(s) == 0 }
	}
	for _, tc := range []struct {
		name      string
		cs        tls.ConnectionState
		at        time.Time
		isRevoked func(*x509.Certificate) bool
		want      error
	}{
		{"good", chain(good), now, nil, nil},
		{"good, not revoked", chain(good), now, revokedSerial(big.NewInt(1)), nil},
		{"no certificate", tls.ConnectionState{}, now, nil, ErrNotClient},
		{"not verified", tls.ConnectionState{PeerCertificates: []*x509.Certificate{good}}, now, nil, ErrNotClient},
		{"expired", chain(good), good.NotAfter.Add(time.Second), nil, ErrNotClient},
		{"not yet valid", chain(good), good.NotBefore.Add(-time.Second), nil, ErrNotClient},
		{"server-only EKU", chain(noEKU), now, nil, ErrNotClient},
		{"leaf revoked", chain(good), now, revokedSerial(good.SerialNumber), ErrRevoked},
		{"issuer revoked", chain(good), now, revokedSerial(ca.Cert.SerialNumber), ErrRevoked},
		{"no merchant", chain(noName), now, nil, ErrNoIdentity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyClient(tc.cs, tc.at, tc.isRevoked)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("verifyClient = %v, want %v", err, tc.want)
			}
		})
	}
	if id, err := PeerMerchant(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{good}}); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("PeerMerchant without verified chains = %q, %v", id, err)
	}
	if _, err := PeerMerchant(nil); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("PeerMerchant(nil) = %v", err)
	}
}

func TestMerchantID(t *testing.T) {
	u := func(s string) *url.URL {
		t.Helper()
		x, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, tc := range []struct {
		name string
		cn   string
		uris []string
		want string // "" means ErrNoIdentity
	}{
		{"CN only", "M100", nil, "M100"},
		{"URI only", "", []string{"quill://merchant/M100"}, "M100"},
		{"URI wins over CN", "M200", []string{"quill://merchant/M100"}, "M100"},
		{"other URIs ignored", "M200", []string{"spiffe://example.org/x", "https://merchant/M1"}, "M200"},
		{"two merchant URIs", "M100", []string{"quill://merchant/M1", "quill://merchant/M2"}, ""},
		{"same URI twice", "M1", []string{"quill://merchant/M1", "quill://merchant/M1"}, ""},
		{"wrong host", "M100", []string{"quill://payer/M1"}, ""},
		{"upper-case scheme", "M100", []string{"QUILL://merchant/M1"}, "M1"},
		{"query", "M100", []string{"quill://merchant/M1?x=1"}, ""},
		{"fragment", "M100", []string{"quill://merchant/M1#x"}, ""},
		{"user info", "M100", []string{"quill://u@merchant/M1"}, ""},
		{"port", "M100", []string{"quill://merchant:1/M1"}, ""},
		{"sub path", "M100", []string{"quill://merchant/M1/x"}, ""},
		{"escaped", "M100", []string{"quill://merchant/M%31"}, ""},
		{"empty id", "M100", []string{"quill://merchant/"}, ""},
		{"id too long", strings.Repeat("A", 33), nil, ""},
		{"id of 32", strings.Repeat("A", 32), nil, strings.Repeat("A", 32)},
		{"space in CN", "M 1", nil, ""},
		{"no name", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &x509.Certificate{Subject: pkix.Name{CommonName: tc.cn}}
			for _, s := range tc.uris {
				c.URIs = append(c.URIs, u(s))
			}
			got, err := MerchantID(c)
			if tc.want == "" {
				if !errors.Is(err, ErrNoIdentity) {
					t.Fatalf("MerchantID = %q, %v; want ErrNoIdentity", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("MerchantID = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := MerchantID(nil); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("MerchantID(nil) = %v", err)
	}
}

func TestCA(t *testing.T) {
	now := time.Now()
	ca := newCA(t, "Quill dev CA")
	certPEM, keyPEM, err := ca.PEM()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Fatal("LoadCA(PEM()) returned another certificate")
	}

	client := leaf(t, pair(t)(loaded.IssueClient("M100", time.Hour, now)))
	if _, err := client.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("a loaded CA's client cert does not verify: %v", err)
	}
	if client.Subject.CommonName != "M100" || len(client.URIs) != 1 || client.URIs[0].String() != MerchantURIPrefix+"M100" {
		t.Fatalf("client identity: CN %q URIs %v", client.Subject.CommonName, client.URIs)
	}
	if len(client.ExtKeyUsage) != 1 || client.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || client.IsCA {
		t.Fatalf("client usage %v, CA %v", client.ExtKeyUsage, client.IsCA)
	}
	if client.SerialNumber.Sign() <= 0 || client.SerialNumber.BitLen() > 129 {
		t.Fatalf("serial %v", client.SerialNumber)
	}
	if !client.NotAfter.Equal(now.Add(time.Hour).Truncate(time.Second)) {
		t.Fatalf("NotAfter %v, want %v", client.NotAfter, now.Add(time.Hour))
	}
	other := leaf(t, pair(t)(loaded.IssueClient("M100", time.Hour, now)))
	if other.SerialNumber.Cmp(client.SerialNumber) == 0 {
		t.Fatal("two certificates share a serial")
	}

	server := leaf(t, pair(t)(ca.IssueServer([]string{"api.quill.test", "127.0.0.1", "::1"}, time.Hour, now)))
	if len(server.DNSNames) != 1 || len(server.IPAddresses) != 2 || server.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("server SANs %v %v usage %v", server.DNSNames, server.IPAddresses, server.ExtKeyUsage)
	}
	if err := server.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatal(err)
	}

	serverCert, serverKey, _ := ca.IssueServer([]string{"x"}, time.Hour, now)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"bad merchant id", func() error { _, _, err := ca.IssueClient("M 1", time.Hour, now); return err }()},
		{"zero validity", func() error { _, _, err := ca.IssueClient("M1", 0, now); return err }()},
		{"no hosts", func() error { _, _, err := ca.IssueServer(nil, time.Hour, now); return err }()},
		{"CA from a leaf", func() error { _, err := LoadCA(serverCert, serverKey); return err }()},
		{"mismatched key", func() error { _, err := LoadCA(certPEM, serverKey); return err }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("accepted")
			}
		})
	}

	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, ca); strings.Contains(out, "D:") || !strings.Contains(out, "REDACTED") {
			t.Fatalf("%s of CA = %.200s", verb, out)
		}
	}
}

// TestLive: each kind of material reloads on its own; bad material keeps
// the last good version in force and Ready says why.
func TestLive(t *testing.T) {
	p := newPKI(t)
	ctx := context.Background()
	var changes []string
	var mu sync.Mutex
	p.live = NewLive(p.src, LiveOptions{Now: p.clock.Now, OnChange: func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, fmt.Sprintf("%s: %v", what, err))
	}})
	if err := p.live.Ready(ctx); !errors.Is(err, ErrNotLoaded) && err == nil {
		t.Fatalf("ready before loading: %v", err)
	}
	if _, err := p.live.GetCertificate(nil); err == nil {
		t.Fatal("a certificate before loading")
	}
	if !p.live.IsRevoked(leaf(t, clientCert(t, p.ca, "M1"))) {
		t.Fatal("no CRL loaded must refuse every certificate")
	}
	if err := p.live.Reload(ctx); err != nil || p.live.Ready(ctx) != nil {
		t.Fatalf("reload %v, ready %v", err, p.live.Ready(ctx))
	}
	served := func() string {
		t.Helper()
		c, err := p.live.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.String()
	}
	first := served()

	// A new server certificate is served after the next reload.
	cert, key, err := p.ca.IssueServer([]string{"localhost"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.src.set(func(m *memSource) { m.cert, m.key = cert, key })
	if served() != first {
		t.Fatal("served before a reload")
	}
	if err := p.live.Reload(ctx); err != nil || served() == first {
		t.Fatalf("new pair not served: %v", err)
	}

	// A revoked certificate, then a bad CRL: the old list stays in force,
	// the failure is visible in Ready and was reported once.
	victim := clientCert(t, p.ca, "M1")
	p.revoke(t, victim)
	other := newCA(t, "Other CA")
	foreign, err := Revoke(other, nil, big.NewInt(99), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{"garbage": []byte("not a CRL"), "another CA's CRL": foreign, "empty": nil} {
		t.Run(name, func(t *testing.T) {
			good := p.src.crl
			p.src.set(func(m *memSource) { m.crl = bad })
			defer func() {
				p.src.set(func(m *memSource) { m.crl = good })
				if err := p.live.Reload(ctx); err != nil || p.live.Ready(ctx) != nil {
					t.Fatalf("recovery: %v / %v", err, p.live.Ready(ctx))
				}
			}()
			for range 2 {
				if err := p.live.Reload(ctx); err == nil {
					t.Fatal("bad CRL loaded")
				}
			}
			if !p.live.IsRevoked(leaf(t, victim)) {
				t.Fatal("bad CRL un-revoked a certificate")
			}
			err := p.live.Ready(ctx)
			if err == nil || !strings.Contains(err.Error(), WhatCRL) || !strings.Contains(err.Error(), "stays in force") {
				t.Fatalf("Ready = %v", err)
			}
			if _, err := p.live.GetCertificate(nil); err != nil {
				t.Fatal("a bad CRL stopped the server certificate")
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	// Each bad CRL was reported once (not once per reload), then its recovery.
	if len(changes) != 6 || !strings.HasSuffix(changes[5], "<nil>") || strings.HasSuffix(changes[4], "<nil>") {
		t.Fatalf("changes reported: %q", changes)
	}
	if !p.live.IsRevoked(leaf(t, victim)) || p.live.IsRevoked(leaf(t, clientCert(t, p.ca, "M1"))) {
		t.Fatal("recovered CRL wrong")
	}
}

func TestLiveServesNewCertOverTLS(t *testing.T) {
	p := newPKI(t)
	addr, results := serve(t, p.serverConfig())
	cfg := p.clientConfig(clientCert(t, p.ca, "M1"))
	serverSerial := func() string {
		t.Helper()
		_, cs, err := dial(t, addr, cfg)
		if r := receive(t, results); err != nil || r.err != nil {
			t.Fatalf("handshake: %v / %v", err, r.err)
		}
		if cs.Version != tls.VersionTLS13 {
			t.Fatalf("negotiated %s: TLS 1.3 is preferred", tls.VersionName(cs.Version))
		}
		return cs.PeerCertificates[0].SerialNumber.String()
	}
	before := serverSerial()
	cert, key, err := p.ca.IssueServer([]string{"localhost"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.src.set(func(m *memSource) { m.cert, m.key = cert, key })
	if err := p.live.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := serverSerial(); got == before {
		t.Fatalf("server still presents serial %s", got)
	}

	// A new client CA bundle: clients of the old CA are refused at once.
	next := newCA(t, "Next CA")
	bundle, _, _ := next.PEM()
	crl, _ := NewCRL(next, time.Now())
	p.src.set(func(m *memSource) { m.bundle, m.crl = bundle, crl })
	if err := p.live.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := dial(t, addr, cfg); err == nil {
		t.Fatal("old CA's client accepted after the bundle changed")
	}
	receive(t, results)
	c2 := clientTLSConfig(pool(p.ca), clientCert(t, next, "M1"), "localhost")
	if reply, _, err := dial(t, addr, c2); err != nil || reply != "M1" {
		t.Fatalf("new CA's client: %q %v", reply, err)
	}
	receive(t, results)
}

func TestParseMaterial(t *testing.T) {
	ca := newCA(t, "CA")
	caPEM, caKey, _ := ca.PEM()
	srvCert, srvKey, _ := ca.IssueServer([]string{"x"}, time.Hour, time.Now())
	cliCert, cliKey, _ := ca.IssueClient("M1", time.Hour, time.Now())
	if _, err := ParseBundle(append(append([]byte{}, caPEM...), caPEM...)); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseServerPair(srvCert, srvKey); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"bundle: a leaf":       func() error { _, err := ParseBundle(srvCert); return err }(),
		"bundle: empty":        func() error { _, err := ParseBundle(nil); return err }(),
		"bundle: a key":        func() error { _, err := ParseBundle(caKey); return err }(),
		"pair: client cert":    func() error { _, err := ParseServerPair(cliCert, cliKey); return err }(),
		"pair: mismatched key": func() error { _, err := ParseServerPair(srvCert, cliKey); return err }(),
		"csr: not a CSR":       func() error { _, err := ParseCSR(srvCert); return err }(),
		"crl: two blocks": func() error {
			c, _ := NewCRL(ca, time.Now())
			_, err := ParseCRL(append(c, c...), []*x509.Certificate{ca.Cert})
			return err
		}(),
		"revoke: twice": func() error {
			c, _ := Revoke(ca, nil, big.NewInt(5), time.Now())
			_, err := Revoke(ca, c, big.NewInt(5), time.Now())
			return err
		}(),
		"revoke: other CA list": func() error {
			c, _ := NewCRL(newCA(t, "O"), time.Now())
			_, err := Revoke(ca, c, big.NewInt(5), time.Now())
			return err
		}(),
		"revoke: zero serial": func() error { _, err := Revoke(ca, nil, big.NewInt(0), time.Now()); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestIssueClientFromCSR(t *testing.T) {
	ca := newCA(t, "CA")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "M999"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.IssueClientFor("M100", csr.PublicKey, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := MerchantID(c); err != nil || id != "M100" {
		t.Fatalf("identity %q %v: the CSR's subject must not choose it", id, err)
	}
	if !c.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Fatal("issued for another key")
	}
	der[len(der)-1] ^= 1
	if _, err := ParseCSR(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})); err == nil {
		t.Fatal("a CSR with a bad signature was accepted")
	}
}

func BenchmarkVerifyClient(b *testing.B) {
	ca := newCA(b, "CA")
	c := leaf(b, clientCert(b, ca, "M100"))
	var crlPEM []byte
	for i := range 1000 {
		var err error
		if crlPEM, err = Revoke(ca, crlPEM, big.NewInt(int64(i+1)), time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	rl, err := ParseCRL(crlPEM, []*x509.Certificate{ca.Cert})
	if err != nil {
		b.Fatal(err)
	}
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c, ca.Cert}}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := verifyClient(cs, now, rl.IsRevoked); err != nil {
			b.Fatal(err)
		}
	}
}

// clientTLSConfig is a merchant's client configuration: it presents cert,
// trusts rootCAs for the server, and uses the server's protocol floor.
func clientTLSConfig(rootCAs *x509.CertPool, cert tls.Certificate, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: slices.Clone(tls12Suites),
		RootCAs:      rootCAs,
		Certificates: []tls.Certificate{cert},
		ServerName:   serverName,
	}
}
