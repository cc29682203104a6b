package netlimit

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/quillpay/quill/certs"
)

// pki is a CA with a server certificate and client certificates by merchant.
type pki struct {
	server  tls.Config
	roots   *x509.CertPool
	clients map[string]tls.Certificate
}

func newPKI(t *testing.T, merchants ...string) *pki {
	t.Helper()
	now := time.Now().Add(-time.Minute)
	ca, err := certs.NewCA("test CA", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _, err := ca.PEM()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	sc, sk, err := ca.IssueServer([]string{"127.0.0.1"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{roots: pool, clients: map[string]tls.Certificate{}}
	p.server = tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	for _, m := range merchants {
		cc, ck, err := ca.IssueClient(m, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		if p.clients[m], err = tls.X509KeyPair(cc, ck); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func merchantKey(cs tls.ConnectionState) string {
	m, _ := certs.PeerMerchant(&cs)
	return m
}

// serve runs l with a handler that echoes one byte per connection, so a
// client can tell a served connection from one closed by a cap.
func serve(t *testing.T, p *pki, o Options) *Listener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Key = merchantKey
	l := Listen(inner, &p.server, o)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if _, ok := c.(*tls.Conn); !ok {
				t.Errorf("Accept returned %T, want *tls.Conn", c)
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
					c.Write(b)
				}
			}()
		}
	}()
	return l
}

func options() Options {
	return Options{MaxConns: 100, MaxHandshakes: 10, MaxConnsPerKey: 100, HandshakeTimeout: 5 * time.Second}
}

// dial connects as merchant ("" presents no certificate) and reports whether
// the connection is served (a byte echoed back).
func dial(t *testing.T, p *pki, l *Listener, merchant string) (*tls.Conn, bool) {
	t.Helper()
	conf := &tls.Config{RootCAs: p.roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if merchant != "" {
		conf.Certificates = []tls.Certificate{p.clients[merchant]}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr().String(), conf)
	if err != nil {
		return nil, false
	}
	t.Cleanup(func() { c.Close() })
	return c, served(c)
}

func served(c *tls.Conn) bool {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{'x'}); err != nil {
		return false
	}
	b := make([]byte, 1)
	_, err := io.ReadFull(c, b)
	return err == nil && b[0] == 'x'
}

// eventually polls cond for up to 5 s (only to wait for another goroutine's
// bookkeeping, never to measure time).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestPerKeyCap(t *testing.T) {
	p := newPKI(t, "M1", "M2")
	o := options()
	o.MaxConnsPerKey = 3
	l := serve(t, p, o)
	var m1 []*tls.Conn
	for i := 0; i < 3; i++ {
		c, ok := dial(t, p, l, "M1")
		if !ok {
			t.Fatalf("connection %d of M1 refused under the cap", i+1)
		}
		m1 = append(m1, c)
	}
	if _, ok := dial(t, p, l, "M1"); ok {
		t.Fatal("a fourth connection of M1 was served")
	}
	if _, ok := dial(t, p, l, "M2"); !ok {
		t.Fatal("M2 refused: the cap is per merchant")
	}
	// Closing one of M1's connections frees its slot.
	m1[0].Close()
	eventually(t, "the slot to be freed", func() bool { return l.TakeStats().Conns == 3 })
	if _, ok := dial(t, p, l, "M1"); !ok {
		t.Fatal("M1 refused after one of its connections closed")
	}
	if s := l.TakeStats(); s.Conns != 4 {
		t.Fatalf("stats %+v, want 4 open connections", s)
	}
}

func TestGlobalCap(t *testing.T) {
	p := newPKI(t, "M1", "M2")
	o := options()
	o.MaxConns = 2
	l := serve(t, p, o)
	a, ok := dial(t, p, l, "M1")
	if !ok {
		t.Fatal("first connection refused")
	}
	if _, ok := dial(t, p, l, "M2"); !ok {
		t.Fatal("second connection refused")
	}
	if _, ok := dial(t, p, l, "M2"); ok {
		t.Fatal("a third connection was served over MaxConns 2")
	}
	a.Close()
	eventually(t, "the slot to be freed", func() bool { return l.TakeStats().Conns < 2 })
	if _, ok := dial(t, p, l, "M2"); !ok {
		t.Fatal("refused after a connection closed")
	}
	if s := l.TakeStats(); s.RefusedConns != 0 {
		t.Fatalf("counters not reset by the earlier TakeStats: %+v", s)
	}
}

// TestHandshakeCap holds MaxHandshakes handshakes open (their clients stall
// when asked for a certificate) and checks that the next handshake waits for
// a slot, then completes when one is released; and that a client that sends
// nothing never takes a slot.
func TestHandshakeCap(t *testing.T) {
	p := newPKI(t, "M1")
	o := options()
	o.MaxHandshakes = 2
	l := serve(t, p, o)

	// Two idle TCP connections: they hold connection slots, not handshake slots.
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	release := make(chan struct{})
	stalled := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			conf := &tls.Config{RootCAs: p.roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					<-release
					c := p.clients["M1"]
					return &c, nil
				}}
			c, err := tls.Dial("tcp", l.Addr().String(), conf)
			if err == nil {
				defer c.Close()
				if !served(c) {
					err = errors.New("not served")
				}
			}
			stalled <- err
		}()
	}
	eventually(t, "two handshakes to hold slots", func() bool { return len(l.slots) == 2 })

	third := make(chan bool, 1)
	go func() { _, ok := dial(t, p, l, "M1"); third <- ok }()
	// The third handshake has connected (3 handshaking, 2 idle) but holds no slot.
	eventually(t, "the third connection", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.conns == 5
	})
	select {
	case <-third:
		t.Fatal("a third handshake completed while both slots were held")
	default:
	}
	if n := len(l.slots); n != 2 {
		t.Fatalf("%d slots held, cap 2", n)
	}
	close(release)
	if !<-third {
		t.Fatal("third handshake failed after the slots were released")
	}
	for i := 0; i < 2; i++ {
		if err := <-stalled; err != nil {
			t.Fatalf("stalled handshake: %v", err)
		}
	}
}

// TestHandshakeFailuresCounted: failed handshakes are counted with a sample
// error, and a client that never finishes is cut at the handshake timeout.
func TestHandshakeFailuresCounted(t *testing.T) {
	p := newPKI(t, "M1")
	o := options()
	o.HandshakeTimeout = 300 * time.Millisecond
	l := serve(t, p, o)
	for i := 0; i < 3; i++ {
		if _, ok := dial(t, p, l, ""); ok { // no client certificate
			t.Fatal("served without a client certificate")
		}
	}
	idle, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle connection not cut by the handshake timeout: %v", err)
	}
	var total int64
	var last string
	eventually(t, "4 failures counted", func() bool {
		s := l.TakeStats()
		total += s.HandshakeFailures
		if s.LastFailure != "" {
			last = s.LastFailure
		}
		return total == 4
	})
	if last == "" {
		t.Fatal("no sample error")
	}
	if _, ok := dial(t, p, l, "M1"); !ok {
		t.Fatal("a good client refused")
	}
}
