package certs

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
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

// writePair writes a server pair for hosts into dir and returns the paths.
func writePair(tb testing.TB, ca *CA, dir string, hosts ...string) (certFile, keyFile string) {
	tb.Helper()
	certPEM, keyPEM, err := ca.IssueServer(hosts, time.Hour, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
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

// testPKI is a client CA, a server certificate reloader and a revocation
// list, as cmd/quill would wire them.
type testPKI struct {
	ca       *CA
	reloader *Reloader
	revoked  *RevocationList
	rlPath   string
	clock    *fakeclock.Clock
}

func newPKI(tb testing.TB) *testPKI {
	tb.Helper()
	dir := tb.TempDir()
	p := &testPKI{ca: newCA(tb, "Quill test CA"), rlPath: filepath.Join(dir, "revoked.txt"), clock: fakeclock.New(time.Now())}
	var err error
	if p.reloader, err = NewReloader(writePair(tb, p.ca, dir, "localhost", "127.0.0.1")); err != nil {
		tb.Fatal(err)
	}
	if p.revoked, err = LoadRevocationList(p.rlPath); err != nil {
		tb.Fatal(err)
	}
	p.revoked.now = p.clock.Now
	p.revoked.lastCheck.Store(p.clock.Now().UnixNano())
	return p
}

func (p *testPKI) serverConfig() *tls.Config {
	return ServerTLSConfig(ServerOptions{
		ClientCAs:   pool(p.ca),
		Certificate: p.reloader.GetCertificate,
		IsRevoked:   p.revoked.IsRevoked,
		Now:         p.clock.Now,
	})
}

func (p *testPKI) clientConfig(cert tls.Certificate) *tls.Config {
	return ClientTLSConfig(pool(p.ca), cert, "localhost")
}

func TestHandshake(t *testing.T) {
	p := newPKI(t)
	addr, results := serve(t, p.serverConfig())
	other := newCA(t, "Other CA")
	revoked := clientCert(t, p.ca, "M300")
	if err := RevokeSerial(p.rlPath, leaf(t, revoked).SerialNumber); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(time.Second) // the list is re-read on its next check

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

	if err := RevokeSerial(p.rlPath, leaf(t, cert).SerialNumber); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(time.Second)
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

func TestReloader(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "CA")
	clk := fakeclock.New(time.Now())
	r, err := NewReloader(writePair(t, ca, dir, "one.test"))
	if err != nil {
		t.Fatal(err)
	}
	r.now = clk.Now
	r.lastCheck.Store(clk.Now().UnixNano())
	served := func() string {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := r.GetClientCertificate(nil)
		if err != nil || cc != c {
			t.Fatalf("client side serves another pair: %v", err)
		}
		return leaf(t, *c).Subject.CommonName
	}
	if got := served(); got != "one.test" {
		t.Fatalf("serving %q", got)
	}

	certFile, keyFile := writePair(t, ca, dir, "two.test")
	if got := served(); got != "one.test" {
		t.Fatalf("reloaded before the check interval: %q", got)
	}
	clk.Advance(time.Second)
	if got := served(); got != "two.test" {
		t.Fatalf("after a new pair: serving %q", got)
	}

	// A certificate replaced before its key: keep the last good pair.
	threeCert, threeKey, err := ca.IssueServer([]string{"three.test"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(certFile, threeCert, 0o644); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if got := served(); got != "two.test" || r.LastError() == nil {
		t.Fatalf("half-replaced pair: serving %q, LastError %v", got, r.LastError())
	}
	if err := writeFileAtomic(keyFile, threeKey, 0o600); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if got := served(); got != "three.test" || r.LastError() != nil {
		t.Fatalf("completed pair: serving %q, LastError %v", got, r.LastError())
	}

	if _, err := NewReloader(filepath.Join(dir, "missing.crt"), keyFile); err == nil {
		t.Fatal("NewReloader accepted a missing file")
	}
}

func TestReloaderServesNewCertOverTLS(t *testing.T) {
	p := newPKI(t)
	p.reloader.now = p.clock.Now
	p.reloader.lastCheck.Store(p.clock.Now().UnixNano())
	addr, results := serve(t, p.serverConfig())
	cfg := p.clientConfig(clientCert(t, p.ca, "M1"))
	serverSerial := func() string {
		t.Helper()
		_, cs, err := dial(t, addr, cfg)
		if r := receive(t, results); err != nil || r.err != nil {
			t.Fatalf("handshake: %v / %v", err, r.err)
		}
		return cs.PeerCertificates[0].SerialNumber.String()
	}
	before := serverSerial()
	certFile, keyFile := writePair(t, p.ca, filepath.Dir(p.rlPath), "localhost")
	newPair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	want := leaf(t, newPair).SerialNumber.String()
	if before == want {
		t.Fatal("test issued the same serial twice")
	}
	p.clock.Advance(time.Second)
	if got := serverSerial(); got != want {
		t.Fatalf("server presents serial %s, want the new %s", got, want)
	}
}

func TestLoadCertPool(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "CA")
	certPEM, _, _ := ca.PEM()
	good, empty := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "empty.pem")
	os.WriteFile(good, certPEM, 0o644)
	os.WriteFile(empty, []byte("nothing"), 0o644)
	p, err := LoadCertPool(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf(t, clientCert(t, ca, "M1")).Verify(x509.VerifyOptions{Roots: p, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("pool does not hold the CA: %v", err)
	}
	for _, f := range []string{empty, filepath.Join(dir, "missing.pem")} {
		if _, err := LoadCertPool(f); err == nil {
			t.Fatalf("LoadCertPool(%s) succeeded", filepath.Base(f))
		}
	}
}

func BenchmarkVerifyClient(b *testing.B) {
	dir := b.TempDir()
	ca := newCA(b, "CA")
	c := leaf(b, clientCert(b, ca, "M100"))
	rl, err := LoadRevocationList(filepath.Join(dir, "revoked.txt"))
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if err := RevokeSerial(rl.path, big.NewInt(int64(i+1))); err != nil {
			b.Fatal(err)
		}
	}
	if err := rl.Reload(); err != nil {
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
