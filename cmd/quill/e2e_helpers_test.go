package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/quillpay/quill/internal/client"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/internal/fakeclock"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/keys"
	merchantpg "github.com/quillpay/quill/merchant/postgres"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
)

// redisProxy relays TCP to the real Redis so a test can take Redis away
// ("stopped": connections refused and cut) or make it hang (a timeout) without
// touching the shared server.
type redisProxy struct {
	t      testing.TB
	target string
	ln     net.Listener
	addr   string
	mode   atomic.Int32 // 0 relay, 1 stopped, 2 hang
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

const (
	proxyRelay = iota
	proxyStopped
	proxyHang
)

func newRedisProxy(t testing.TB, target string) *redisProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &redisProxy{t: t, target: target, ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.cutAll() })
	return p
}

func (p *redisProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.mode.Load() == proxyStopped {
			c.Close()
			continue
		}
		go p.relay(c)
	}
}

func (p *redisProxy) relay(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				for p.mode.Load() == proxyHang {
					time.Sleep(5 * time.Millisecond)
				}
				if p.mode.Load() == proxyStopped {
					break
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		c.Close()
		up.Close()
	}
	go pipe(up, c)
	pipe(c, up)
}

func (p *redisProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// set switches the proxy; stopped also cuts every open connection.
func (p *redisProxy) set(mode int32) {
	p.mode.Store(mode)
	if mode == proxyStopped {
		p.cutAll()
	}
}

// harness is a running quill server with its dev material, database and clock.
type harness struct {
	t    testing.TB
	dir  string
	dsn  string
	base string
	ops  string
	// auditBase is the auditor listener's URL when serverOptions.audit.
	auditBase string
	clock     *fakeclock.Clock
	proxy     *redisProxy
	roots     *x509.CertPool
	clients   map[string]*client.Client
	certs     map[string]tls.Certificate
	db        *pgx.Conn
	stop      func() error // cancel the server and wait until it has drained
	noWait    bool         // a tweak may start a server that is not ready
	log       io.Writer    // a tweak may capture the server's log

	reg *merchantpg.Store // the merchant registry in dsn
}

const (
	demoMerchant = "M100"
	topUp        = "TOPUP"
	otherMerch   = "M200"
)

// serverOptions vary one test's server from the shared defaults.
type serverOptions struct {
	config func(*config) // adjusts the configuration before it is validated
	logs   io.Writer     // receives the server's log; nil discards it
	// tweaks may change the configuration and reach the harness too (the
	// Vault tests put their store in front of the server this way).
	tweaks []func(h *harness, c *config)
	// audit also serves the auditor API on a listener of its own (its
	// address is then in harness.auditBase).
	audit bool
}

// startServer starts a server on fresh dev material; each tweak may change
// its configuration first.
func startServer(t testing.TB, tweaks ...func(h *harness, c *config)) *harness {
	t.Helper()
	return startServerWith(t, serverOptions{tweaks: tweaks})
}

func startServerWith(t testing.TB, o serverOptions) *harness {
	t.Helper()
	dir := t.TempDir()
	now := time.Now().Truncate(time.Second)
	if err := devenv.Init(dir, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	dsn := testenv.Postgres(t)
	reg := openRegistry(t, dsn)
	for _, m := range []policy.Merchant{
		{ID: demoMerchant, Name: "demo", FeeBps: 60},
		{ID: topUp, Name: "top-up", CanDeposit: true},
		{ID: otherMerch, Name: "other", FeeBps: 100},
	} {
		if _, err := devenv.AddMerchant(context.Background(), dir, reg, m, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	h := &harness{
		t:       t,
		dir:     dir,
		dsn:     dsn,
		reg:     reg,
		clock:   fakeclock.New(now),
		proxy:   newRedisProxy(t, testenv.RedisAddr(t)),
		clients: map[string]*client.Client{},
		certs:   map[string]tls.Certificate{},
	}
	c := testConfig(dir, h.dsn, h.proxy.addr)
	if o.config != nil {
		o.config(&c)
	}
	for _, tweak := range o.tweaks {
		tweak(h, &c)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.base, h.ops = "https://"+apiLn.Addr().String(), "http://"+opsLn.Addr().String()
	ro := runOptions{api: apiLn, ops: opsLn, now: h.clock.Now}
	if o.audit {
		if ro.audit, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		h.auditBase = "https://" + ro.audit.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logger := zerolog.New(io.Discard)
	switch {
	case o.logs != nil:
		logger = zerolog.New(o.logs)
	case os.Getenv("QUILL_TEST_LOG") != "":
		logger = zerolog.New(os.Stderr)
	}
	if h.log != nil {
		logger = zerolog.New(h.log)
	}
	go func() { done <- run(ctx, c, logger, ro) }()
	var stopOnce sync.Once
	var runErr error
	h.stop = func() error {
		stopOnce.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("server: %v", err)
		}
	})
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	h.roots = x509.NewCertPool()
	h.roots.AppendCertsFromPEM(caPEM)
	for _, id := range []string{demoMerchant, topUp, otherMerch} {
		mc, err := devenv.LoadMerchant(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		h.certs[id] = mc.TLS
		h.clients[id] = &client.Client{
			BaseURL: h.base, Merchant: id, KeyID: mc.KeyID, Key: mc.SigningKey,
			HTTP: h.httpClient(&mc.TLS), Now: h.clock.Now,
		}
	}
	if !h.noWait {
		h.waitReady()
	}
	h.db, err = pgx.Connect(context.Background(), h.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.db.Close(context.Background()) })
	return h
}

// openRegistry migrates the database at dsn and opens its merchant registry.
func openRegistry(t testing.TB, dsn string) *merchantpg.Store {
	t.Helper()
	reg, err := devenv.OpenRegistry(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return reg
}

func (h *harness) httpClient(cert *tls.Certificate) *http.Client {
	conf := &tls.Config{RootCAs: h.roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64}}
}

func (h *harness) waitReady() {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(h.ops + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatal("server not ready in 20s")
}

// do sends a correctly signed request as merchant.
func (h *harness) do(merchant, method, target string, body []byte) *client.Response {
	h.t.Helper()
	r, err := h.clients[merchant].Do(context.Background(), method, target, body)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, target, err)
	}
	if r.Verified != nil {
		h.t.Fatalf("%s %s: response signature: %v (status %d, body %s)", method, target, r.Verified, r.Status, r.Body)
	}
	return r
}

// raw sends exactly what it is given: a forged or tampered request.
func (h *harness) raw(cert *tls.Certificate, method, target string, body []byte, auth string) *client.Response {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+target, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := h.httpClient(cert)
	defer hc.CloseIdleConnections() // one client per call: leave no idle connection behind
	res, err := hc.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := &client.Response{Status: res.StatusCode, Header: res.Header, Body: b}
	out.Verified = h.verifyResponse(out)
	if out.Verified != nil {
		h.t.Fatalf("%s %s: every response must be signed: %v", method, target, out.Verified)
	}
	return out
}

// verifyResponse checks the platform signature with the key from the store.
func (h *harness) verifyResponse(r *client.Response) error {
	ks, err := keys.OpenFileStore(filepath.Join(h.dir, "keys"), keys.FileOptions{})
	if err != nil {
		return err
	}
	serial := r.Header.Get("Wechatpay-Serial")
	k, err := ks.PublicKey(context.Background(), keys.PlatformOwner, serial)
	if err != nil {
		return fmt.Errorf("serial %q: %w", serial, err)
	}
	return signing.VerifyResponse(k.Public, signing.ResponseSignature{
		Timestamp: r.Header.Get("Wechatpay-Timestamp"),
		Nonce:     r.Header.Get("Wechatpay-Nonce"),
		Serial:    serial,
		Signature: r.Header.Get("Wechatpay-Signature"),
	}, r.Body)
}

// sign makes an Authorization header for merchant over the given request,
// signed by key (the merchant's own when nil), with timestamp ts.
func (h *harness) sign(merchant string, key crypto.Signer, keyID, method, target string, body []byte, ts time.Time) string {
	h.t.Helper()
	c := h.clients[merchant]
	if key == nil {
		key = c.Key
	}
	if keyID == "" {
		keyID = c.KeyID
	}
	nonce, err := signing.NewNonce(rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	auth, err := signing.SignRequest(key, merchant, keyID, method, target, body, ts, nonce)
	if err != nil {
		h.t.Fatal(err)
	}
	return auth
}

func (h *harness) token(sub string) string {
	h.t.Helper()
	tok, err := devenv.PayerToken(h.dir, sub, 10*time.Minute, h.clock.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

var orderSeq atomic.Int64

func newOrderID() string {
	return fmt.Sprintf("ORD%d%06d", time.Now().UnixMilli(), orderSeq.Add(1)%1000000)
}

func (h *harness) deposit(user, amount string) {
	h.t.Helper()
	body := fmt.Sprintf(`{"order_id":%q,"user_id":%q,"amount":%q,"currency":"CNY"}`, newOrderID(), user, amount)
	r := h.do(topUp, "POST", "/v1/deposits", []byte(body))
	if r.Status != http.StatusOK {
		h.t.Fatalf("deposit: %d %s", r.Status, r.Body)
	}
}

func paymentBody(orderID, amount, token string) []byte {
	return []byte(fmt.Sprintf(`{"order_id":%q,"amount":%q,"currency":"CNY","payer_token":%q,"description":"test"}`, orderID, amount, token))
}

// entries counts ledger entries, optionally of one order id.
func (h *harness) entries(orderID string) int {
	h.t.Helper()
	var n int
	q, args := "SELECT count(*) FROM entries", []any{}
	if orderID != "" {
		q, args = q+" WHERE order_id = $1", []any{orderID}
	}
	if err := h.db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// balance is an account's balance in its normal sign, from the postings.
func (h *harness) balance(code string) int64 {
	h.t.Helper()
	var b int64
	err := h.db.QueryRow(context.Background(), `
		SELECT COALESCE(SUM(p.amount), 0) * CASE WHEN a.type IN ('asset','expense') THEN 1 ELSE -1 END
		FROM accounts a LEFT JOIN postings p ON p.account_id = a.id
		WHERE a.code = $1 AND a.currency = 'CNY' GROUP BY a.type`, code).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// problem decodes a problem+json body.
func problem(t testing.TB, r *client.Response) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, body %s", ct, r.Body)
	}
	var p map[string]any
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testConfig is the configuration every test server starts from: valid, with
// generous limits, on dev material in dir.
func testConfig(dir, dsn, redisAddr string) config {
	return config{
		DataDir:         dir,
		PostgresDSN:     dsn,
		RedisAddr:       redisAddr,
		RedisPrefix:     "quilltest:" + testenv.Random(4) + ":",
		RedisTimeout:    time.Second, // generous: -race on 2 cores is slow
		Window:          300 * time.Second,
		MaxBody:         64 << 10,
		MaxBatch:        256,
		PayerIssuer:     devenv.PayerIssuer,
		PayerAudience:   devenv.PayerAudience,
		PayerAlgorithm:  devenv.PayerAlgorithm,
		Migrate:         true,
		ShutdownTimeout: 5 * time.Second,
		ReadTimeout:     15 * time.Second,
		// The limits are generous: the shared server's clock does not move,
		// so refusals from every test add up in one window.
		MaxConns:            1024,
		MaxConnsPerMerchant: 512,
		MaxHandshakes:       64,
		HandshakeTimeout:    5 * time.Second,
		AuthFailMax:         100000,
		AuthFailWindow:      10 * time.Second,
		AuthFailDelay:       10 * time.Millisecond,
		ConnLogInterval:     time.Minute,
		MerchantsRefresh:    200 * time.Millisecond,
	}
}
