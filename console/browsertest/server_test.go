package browsertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/ledger/postgres"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/quillclient"
)

// repoRoot is the main module's directory (this module lives in console/browsertest).
func repoRoot(tb testing.TB) string {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// buildQuill builds cmd/quill from the main module, with the main module's own
// go.mod (not this module's dependency versions). The binary lives in the
// user's cache directory so that an unchanged tree is not linked again.
func buildQuill(tb testing.TB) string {
	tb.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "quill-console-test", "quill")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/quill")
	cmd.Dir = repoRoot(tb)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./cmd/quill: %v\n%s", err, out)
	}
	return bin
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

// liveQuill is a real `quill serve` with its auditor listener, on fresh dev
// material and a fresh database.
type liveQuill struct {
	t         testing.TB
	dir       string
	dsn       string
	base      string // merchant API
	auditBase string // auditor listener (API and console)
	roots     *x509.CertPool
	audit     *http.Client
	log       *syncBuffer
}

func startQuill(t *testing.T, bin string) *liveQuill {
	t.Helper()
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
		{ID: "M200", Name: "other", FeeBps: 100},
		{ID: "TOPUP", Name: "top-up", CanDeposit: true},
	} {
		if _, err := devenv.AddMerchant(context.Background(), dir, reg, m, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	addr, ops, auditAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	q.base, q.auditBase = "https://"+addr, "https://"+auditAddr
	cmd := exec.Command(bin, "serve",
		"--addr", addr, "--ops-addr", ops, "--audit-addr", auditAddr, "--data-dir", dir,
		"--pg-dsn", q.dsn, "--redis-addr", testenv.RedisAddr(t),
		"--redis-prefix", "console-test:"+testenv.Random(4)+":",
		"--redis-timeout", "2s", "--checkpoint-interval", "0", "--log-level", "info")
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
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	q.roots = x509.NewCertPool()
	q.roots.AppendCertsFromPEM(caPEM)
	q.audit = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: q.roots, MinVersion: tls.VersionTLS12}}}
	t.Cleanup(q.audit.CloseIdleConnections)
	deadline := time.Now().Add(60 * time.Second)
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
			t.Fatalf("quill not ready in 60 s\n%s", q.log)
		}
	}
}

// serverSPKI is the base64 SHA-256 of the auditor listener's public key, for
// Chromium's --ignore-certificate-errors-spki-list: the browser then trusts
// exactly this server's key and nothing else it has not been told to.
func (q *liveQuill) serverSPKI() string {
	q.t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(q.auditBase, "https://"), &tls.Config{RootCAs: q.roots, ServerName: "127.0.0.1"})
	if err != nil {
		q.t.Fatal(err)
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (q *liveQuill) merchantClient(id string) *http.Client {
	q.t.Helper()
	mc, err := devenv.LoadMerchant(q.dir, id)
	if err != nil {
		q.t.Fatal(err)
	}
	base := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: q.roots, Certificates: []tls.Certificate{mc.TLS}, MinVersion: tls.VersionTLS12}}
	tr, err := quillclient.NewTransport(quillclient.WithBase(base), quillclient.WithMerchant(mc.ID),
		quillclient.WithKeyID(mc.KeyID), quillclient.WithPrivateKey(mc.SigningKey))
	if err != nil {
		q.t.Fatal(err)
	}
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	q.t.Cleanup(c.CloseIdleConnections)
	return c
}

var orderCounter atomic.Int64

func orderID() string {
	return fmt.Sprintf("ORD%d%04d", time.Now().UnixMicro(), orderCounter.Add(1)%10000)
}

func (q *liveQuill) post(c *http.Client, path, body string) {
	q.t.Helper()
	res, err := c.Post(q.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		q.t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		q.t.Fatalf("POST %s: %d %s", path, res.StatusCode, b)
	}
}

func (q *liveQuill) deposit(c *http.Client, user, amount string) {
	q.post(c, "/v1/deposits", fmt.Sprintf(`{"order_id":%q,"user_id":%q,"amount":%q,"currency":"CNY"}`, orderID(), user, amount))
}

func (q *liveQuill) pay(c *http.Client, user, amount string) {
	q.t.Helper()
	tok, err := devenv.PayerToken(q.dir, user, 10*time.Minute, time.Now())
	if err != nil {
		q.t.Fatal(err)
	}
	q.post(c, "/v1/payments", fmt.Sprintf(`{"order_id":%q,"amount":%q,"currency":"CNY","payer_token":%q}`, orderID(), amount, tok))
}

func (q *liveQuill) token(sub string, scope audit.Scope) string {
	q.t.Helper()
	tok, err := devenv.AuditorToken(q.dir, sub, scope, 10*time.Minute, time.Now())
	if err != nil {
		q.t.Fatal(err)
	}
	return tok
}

// get calls the auditor API directly, as the reference the page is compared with.
func (q *liveQuill) get(token, target string) (int, []byte) {
	q.t.Helper()
	req, _ := http.NewRequest("GET", q.auditBase+target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := q.audit.Do(req)
	if err != nil {
		q.t.Fatalf("GET %s: %v", target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		q.t.Fatalf("GET %s: %v", target, err)
	}
	return res.StatusCode, b
}

func (q *liveQuill) getJSON(token, target string, v any) {
	q.t.Helper()
	status, b := q.get(token, target)
	if status != http.StatusOK {
		q.t.Fatalf("GET %s: %d %s", target, status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		q.t.Fatalf("GET %s: %v", target, err)
	}
}

// checkpoint signs the chain head now, as the operator's quillctl audit checkpoint does.
func (q *liveQuill) checkpoint() {
	q.t.Helper()
	ctx := context.Background()
	ks, err := keys.OpenFileStore(filepath.Join(q.dir, "keys"), keys.FileOptions{})
	if err != nil {
		q.t.Fatal(err)
	}
	pk, err := ks.PlatformKey(ctx)
	if err != nil {
		q.t.Fatal(err)
	}
	store, err := postgres.Open(ctx, q.dsn, postgres.Options{})
	if err != nil {
		q.t.Fatal(err)
	}
	defer store.Close()
	if _, _, err := store.CreateCheckpoint(ctx, time.Now(), pk.ID(), pk.Signer(), false); err != nil {
		q.t.Fatal(err)
	}
}
