package quillclient_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/quillclient"
)

var (
	buildOnce sync.Once
	binDir    string
	quillBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// quillBinary builds cmd/quill once per test binary. The server's run function
// lives in package main, so the real server is started as a subprocess.
func quillBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "quillclient-test-bin-")
		if buildErr != nil {
			return
		}
		quillBin = filepath.Join(binDir, "quill")
		cmd := exec.Command("go", "build", "-o", quillBin, "github.com/quillpay/quill/cmd/quill")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/quill: %v\n%s", err, out.Bytes())
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return quillBin
}

// liveQuill is a real `quill serve` on loopback ports with fresh dev material,
// a fresh database and its own Redis key prefix.
type liveQuill struct {
	t    testing.TB
	dir  string
	base string // https://127.0.0.1:port
	dsn  string
	log  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startQuill(t *testing.T) *liveQuill {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the real server")
	}
	bin := quillBinary(t)
	dir := t.TempDir()
	now := time.Now()
	if err := devenv.Init(dir, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	q := &liveQuill{t: t, dir: dir, dsn: testenv.Postgres(t), log: &syncBuffer{}}
	reg, err := devenv.OpenRegistry(context.Background(), q.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for _, m := range []policy.Merchant{
		{ID: "M100", Name: "demo", FeeBps: 60},
		{ID: "TOPUP", Name: "top-up", CanDeposit: true},
	} {
		if _, err := devenv.AddMerchant(context.Background(), dir, reg, m, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	redis := testenv.RedisAddr(t)
	addr, ops := freeAddr(t), freeAddr(t)
	q.base = "https://" + addr
	cmd := exec.Command(bin, "serve",
		"--addr", addr, "--ops-addr", ops, "--audit-addr", "off", "--data-dir", dir,
		"--pg-dsn", q.dsn, "--redis-addr", redis,
		"--redis-prefix", "quillclient-test:"+testenv.Random(4)+":",
		"--redis-timeout", "2s", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = q.log, q.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("quill log:\n%s", q.log)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + ops + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return q
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("quill exited before ready: %v\n%s", err, q.log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("quill not ready in 30 s\n%s", q.log)
		}
	}
}

// mTLS returns a base transport presenting merchant's client certificate and
// trusting the dev CA.
func (q *liveQuill) mTLS(merchant string) *http.Transport {
	q.t.Helper()
	mc, err := devenv.LoadMerchant(q.dir, merchant)
	if err != nil {
		q.t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(q.dir, "ca.pem"))
	if err != nil {
		q.t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	return &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{mc.TLS}, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}
}

// client is the merchant's signing, verifying client through base (the
// merchant's mTLS transport when nil); extra options (e.g. a scheme's) are
// added to the merchant's identity and key.
func (q *liveQuill) client(merchant string, base http.RoundTripper, extra ...quillclient.Option) *http.Client {
	q.t.Helper()
	mc, err := devenv.LoadMerchant(q.dir, merchant)
	if err != nil {
		q.t.Fatal(err)
	}
	if base == nil {
		base = q.mTLS(merchant)
	}
	opts := append([]quillclient.Option{quillclient.WithBase(base), quillclient.WithMerchant(mc.ID),
		quillclient.WithKeyID(mc.KeyID), quillclient.WithPrivateKey(mc.SigningKey)}, extra...)
	tr, err := quillclient.NewTransport(opts...)
	if err != nil {
		q.t.Fatal(err)
	}
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	q.t.Cleanup(c.CloseIdleConnections)
	return c
}

func (q *liveQuill) deposit(user, amount string) {
	q.t.Helper()
	body := fmt.Sprintf(`{"order_id":%q,"user_id":%q,"amount":%q,"currency":"CNY"}`, orderID(), user, amount)
	res, got, err := send(q.client("TOPUP", nil), "POST", q.base+"/v1/deposits", strings.NewReader(body))
	if err != nil || res.StatusCode != http.StatusOK {
		q.t.Fatalf("deposit: %v %s", err, got)
	}
}

func (q *liveQuill) token(user string) string {
	q.t.Helper()
	tok, err := devenv.PayerToken(q.dir, user, 10*time.Minute, time.Now())
	if err != nil {
		q.t.Fatal(err)
	}
	return tok
}

var orderCounter atomic.Int64

func orderID() string {
	return fmt.Sprintf("ORD%d%04d", time.Now().UnixMicro(), orderCounter.Add(1)%10000)
}

// countingBase counts the requests for the platform key listing.
type countingBase struct {
	next     http.RoundTripper
	listings atomic.Int32
}

func (c *countingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == quillclient.CertificatesPath {
		c.listings.Add(1)
	}
	return c.next.RoundTrip(req)
}

// liveScheme is a signature scheme the live tests run against the real
// server.
type liveScheme struct {
	name string
	opts []quillclient.Option // added to the merchant's key id and key
	// responseKeyID is the platform key id a verified response names.
	responseKeyID func(*http.Response) string
	// rotate rotates this scheme's platform key under the running server
	// and returns the new key id.
	rotate func(dir string) (string, error)
}

var liveSchemes = []liveScheme{
	{
		name:          "scheme A",
		responseKeyID: func(res *http.Response) string { return res.Header.Get("Wechatpay-Serial") },
		rotate:        func(dir string) (string, error) { return devenv.RotatePlatformKey(dir, time.Hour, time.Now()) },
	},
	{
		name:          "scheme B",
		opts:          []quillclient.Option{quillclient.WithSchemeB()},
		responseKeyID: responseKeyIDB,
		rotate:        func(dir string) (string, error) { return devenv.RotatePlatformEd25519Key(dir, time.Hour, time.Now()) },
	},
}

// TestAgainstQuill pays through the real server in each scheme: the server
// accepts the transport's signatures (a body with odd spacing and UTF-8 is
// stored byte for byte), every response verifies, errors included, and a
// platform-key rotation on the running server costs exactly one refetch and
// no failure.
func TestAgainstQuill(t *testing.T) {
	q := startQuill(t)
	for _, sc := range liveSchemes {
		t.Run(sc.name, func(t *testing.T) { testAgainstQuill(t, q, sc) })
	}
}

func testAgainstQuill(t *testing.T, q *liveQuill, sc liveScheme) {
	user := "qc-" + testenv.Random(4)
	q.deposit(user, "50.00")
	counting := &countingBase{next: q.mTLS("M100")}
	c := q.client("M100", counting, sc.opts...)

	order := orderID()
	body := fmt.Sprintf("{ \"order_id\": %q,  \"amount\":\"1.23\",\n\"currency\":\"CNY\",\"payer_token\":%q,\"description\":\"咖啡 café\" }", order, q.token(user))
	res, got, err := send(c, "POST", q.base+"/v1/payments", onlyReader{strings.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.Contains(string(got), `"status":"succeeded"`) {
		t.Fatalf("payment: %d %s", res.StatusCode, got)
	}
	var stored []byte
	if err := queryRow(t, q.dsn, `SELECT evidence_body FROM entries WHERE order_id = $1`, order, &stored); err != nil {
		t.Fatal(err)
	}
	if string(stored) != body {
		t.Fatalf("stored evidence %q, sent %q", stored, body)
	}

	for _, target := range []string{"/v1/payments/" + order, "/v1/payments/" + order + "?mchid=M100&x=a%20b"} {
		res, got, err = send(c, "GET", q.base+target, nil)
		if err != nil || res.StatusCode != http.StatusOK || !strings.Contains(string(got), order) {
			t.Fatalf("GET %s: %v %d %s", target, err, res.StatusCode, got)
		}
	}
	testRefunds(t, q, c, order)
	// An error answer is a verified response, not an error.
	res, got, err = send(c, "GET", q.base+"/v1/payments/ORD999999999999", nil)
	if err != nil || res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown order: %v %v %s", err, res, got)
	}
	if n := counting.listings.Load(); n != 1 {
		t.Fatalf("%d key listings fetched, want 1", n)
	}

	// Rotate the platform key under the running server (it reloads the key
	// store within a second). Requests keep verifying throughout; the first
	// response under the new key id costs one refetch.
	serial, err := sc.rotate(q.dir)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, got, err := send(c, "GET", q.base+"/v1/payments/"+order, nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("during rotation: %v %s", err, got)
		}
		if sc.responseKeyID(res) == serial {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never signed with the new platform key")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for range 3 {
		if _, _, err := send(c, "GET", q.base+"/v1/payments/"+order, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := counting.listings.Load(); n != 2 {
		t.Fatalf("%d key listings fetched, want 2: one refetch for the new key id", n)
	}
}

func queryRow(tb testing.TB, dsn, sql string, arg any, dst any) error {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql, arg).Scan(dst)
}

// testRefunds refunds the 1.23 payment order through Client: a partial
// refund, its replay, GetRefund, the rest, and the typed refusals.
func testRefunds(t *testing.T, q *liveQuill, c *http.Client, order string) {
	t.Helper()
	ctx := context.Background()
	qc, err := quillclient.NewClient(q.base, c.Transport.(*quillclient.Transport))
	if err != nil {
		t.Fatal(err)
	}
	req := quillclient.RefundRequest{RefundID: orderID(), OrderID: order, Amount: "1.00", Currency: "CNY", Reason: "退款 partial"}
	first, err := qc.Refund(ctx, req)
	if err != nil || first.Replayed || first.Kind != "refund" || first.OrderID != order || first.Amount != "1.00" || first.Reason != req.Reason {
		t.Fatalf("Refund = %+v, %v", first, err)
	}
	again, err := qc.Refund(ctx, req)
	if err != nil || !again.Replayed || again.EntryID != first.EntryID || again.EntryHash != first.EntryHash {
		t.Fatalf("replayed Refund = %+v, %v", again, err)
	}
	got, err := qc.GetRefund(ctx, req.RefundID)
	if err != nil || got.EntryID != first.EntryID || got.Replayed {
		t.Fatalf("GetRefund = %+v, %v", got, err)
	}
	var apiErr *quillclient.APIError
	over := req
	over.RefundID, over.Amount = orderID(), "0.24"
	if _, err := qc.Refund(ctx, over); !errors.As(err, &apiErr) || apiErr.StatusCode != 422 || apiErr.Code != "refund_exceeds_payment" {
		t.Fatalf("refund over the payment: %v", err)
	}
	changed := req
	changed.Amount = "0.50"
	if _, err := qc.Refund(ctx, changed); !errors.As(err, &apiErr) || apiErr.StatusCode != 409 || apiErr.Code != "refund_conflict" {
		t.Fatalf("changed refund: %v", err)
	}
	if _, err := qc.GetRefund(ctx, "ORD000000000000"); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("unknown refund: %v", err)
	}
	rest := req
	rest.RefundID, rest.Amount = orderID(), "0.23"
	if r, err := qc.Refund(ctx, rest); err != nil || r.Replayed {
		t.Fatalf("the rest: %+v, %v", r, err)
	}
}
