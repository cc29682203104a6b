package sandbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/internal/client"
	"github.com/quillpay/quill/internal/cluster"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/merchant"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
)

// TopUp is the merchant of every Material that may deposit into wallets.
const TopUp = "TOPUP"

// Material is dev material (CA, server certificate, key store, merchants'
// client certificates and signing keys) for Quill processes, in a directory
// of the test's.
type Material struct {
	Dir    string
	Payees []string // payee merchants: M100, M101, …

	profiles   []policy.Merchant
	loaded     map[string]devenv.Merchant
	roots      *x509.CertPool
	mu         sync.Mutex
	registered map[string]bool // databases the profiles were added to
}

var (
	sharedMu       sync.Mutex
	sharedMaterial = map[int]*Material{}
)

// SharedMaterial is NewMaterial made once per test process (per number of
// payees) and kept until Main returns: generating the keys is the slow part
// of a start, and Quill processes only read the material. Each database a
// process uses is still registered once (Register).
func SharedMaterial(tb testing.TB, payees int) *Material {
	tb.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if m := sharedMaterial[payees]; m != nil {
		return m
	}
	if state.dir == "" {
		tb.Fatal("sandbox: call sandbox.Main from TestMain")
	}
	dir, err := os.MkdirTemp(state.dir, "material-")
	if err != nil {
		tb.Fatal(err)
	}
	m := newMaterial(tb, dir, payees)
	sharedMaterial[payees] = m
	return m
}

// NewMaterial writes dev material with payees payee merchants (fee 0.60%)
// and the top-up client TopUp.
func NewMaterial(tb testing.TB, payees int) *Material {
	tb.Helper()
	return newMaterial(tb, tb.TempDir(), payees)
}

func newMaterial(tb testing.TB, dir string, payees int) *Material {
	tb.Helper()
	now := time.Now()
	if err := devenv.Init(dir, now.Add(-time.Hour)); err != nil {
		tb.Fatal(err)
	}
	m := &Material{Dir: dir, loaded: map[string]devenv.Merchant{}, registered: map[string]bool{}}
	m.profiles = []policy.Merchant{{ID: TopUp, Name: "top-up", CanDeposit: true}}
	for i := range payees {
		id := fmt.Sprintf("M%03d", 100+i)
		m.Payees = append(m.Payees, id)
		m.profiles = append(m.profiles, policy.Merchant{ID: id, Name: id, FeeBps: 60})
	}
	for _, p := range m.profiles {
		if _, err := devenv.AddMerchant(context.Background(), dir, nil, p, now.Add(-time.Hour)); err != nil {
			tb.Fatal(err)
		}
		mc, err := devenv.LoadMerchant(dir, p.ID)
		if err != nil {
			tb.Fatal(err)
		}
		m.loaded[p.ID] = mc
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	m.roots = x509.NewCertPool()
	m.roots.AppendCertsFromPEM(ca)
	return m
}

// Register migrates the database at dsn and adds the material's merchant
// profiles to its registry (StartQuill does it for its --pg-dsn).
func (m *Material) Register(tb testing.TB, dsn string) {
	tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.registered[dsn] {
		return
	}
	ctx := context.Background()
	reg, err := devenv.OpenRegistry(ctx, dsn)
	if err != nil {
		tb.Fatalf("sandbox: registry at %s: %v", dsn, err)
	}
	defer reg.Close()
	for _, p := range m.profiles {
		if _, err := reg.Add(ctx, p, merchant.Event{Actor: "test"}); err != nil && !errors.Is(err, merchant.ErrExists) {
			tb.Fatal(err)
		}
	}
	m.registered[dsn] = true
}

// PayerToken is a payer JWT for wallet sub from the dev login service.
func (m *Material) PayerToken(tb testing.TB, sub string) string {
	tb.Helper()
	tok, err := devenv.PayerToken(m.Dir, sub, time.Hour, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// AuditorToken is an unscoped auditor JWT from the dev identity provider.
func (m *Material) AuditorToken(tb testing.TB) string {
	tb.Helper()
	tok, err := devenv.AuditorToken(m.Dir, "fault-auditor", audit.All, time.Hour, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// QuillOptions says what a Quill process is started against.
type QuillOptions struct {
	DSN   string   // --pg-dsn (migrated and registered before the start)
	Redis string   // --redis-addr
	Args  []string // more flags, e.g. --max-batch 1
	// NotReady: wait only until the process answers /healthz, not until
	// /readyz says ready (a dependency is down at start on purpose).
	NotReady bool
	// ExitsAtStart: the process is expected to refuse to start; StartQuill
	// waits until it has exited (see Exited and LogTail) and fails the test
	// if it serves instead.
	ExitsAtStart bool
}

// Quill is one `quill serve` process with its merchant API, ops and auditor
// listeners on loopback ports of its own, and a signing client per merchant.
type Quill struct {
	Base  string // https://127.0.0.1:port, mTLS
	Ops   string // http://127.0.0.1:port
	Audit string // https://127.0.0.1:port, bearer JWT

	mat     *Material
	logDir  string
	o       QuillOptions
	args    []string
	proc    *cluster.Proc
	clients map[string]*client.Client
	auditor *http.Client
	token   string
}

// StartQuill starts quill serve on m with o and waits until it is ready
// (or, with o.NotReady, up). The test's cleanup kills it.
func StartQuill(tb testing.TB, m *Material, o QuillOptions) *Quill {
	tb.Helper()
	m.Register(tb, o.DSN)
	ports := cluster.FreePorts(tb, 3, false)
	q := &Quill{
		Base:    "https://127.0.0.1:" + strconv.Itoa(ports[0]),
		Ops:     "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		Audit:   "https://127.0.0.1:" + strconv.Itoa(ports[2]),
		mat:     m,
		o:       o,
		clients: map[string]*client.Client{},
	}
	q.args = append([]string{"serve",
		"--addr", "127.0.0.1:" + strconv.Itoa(ports[0]), "--ops-addr", "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--audit-addr", "127.0.0.1:" + strconv.Itoa(ports[2]),
		"--data-dir", m.Dir, "--pg-dsn", o.DSN, "--redis-addr", o.Redis,
		"--redis-prefix", "quillfault:", "--redis-timeout", "1s",
		"--log-level", "warn", "--shutdown-timeout", "2s", "--merchants-refresh", "1s",
		// Fault tests provoke refusals by the hundred; the per-merchant
		// failure limit is tested elsewhere.
		"--auth-fail-max", "1000000",
		"--max-conns-per-merchant", "1024", "--max-conns", "4096",
	}, o.Args...)
	for id, mc := range m.loaded {
		conf := &tls.Config{RootCAs: m.roots, Certificates: []tls.Certificate{mc.TLS}, MinVersion: tls.VersionTLS12}
		q.clients[id] = &client.Client{
			BaseURL: q.Base, Merchant: id, KeyID: mc.KeyID, Key: mc.SigningKey,
			HTTP: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
				TLSClientConfig: conf, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64}},
		}
	}
	q.auditor = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: m.roots, MinVersion: tls.VersionTLS12}}}
	q.token = m.AuditorToken(tb)
	q.Start(tb)
	return q
}

// Start starts the process (again, after Kill: same ports, same flags) and
// waits as StartQuill does.
func (q *Quill) Start(tb testing.TB) {
	tb.Helper()
	if q.logDir == "" {
		q.logDir = tb.TempDir()
	}
	q.proc = cluster.Start(tb, q.logDir, "quill", nil, QuillBinary(tb), q.args...)
	if q.o.ExitsAtStart {
		err := poll(2*time.Minute, 50*time.Millisecond, func() error {
			if q.proc.Exited() {
				return nil
			}
			if st, _, err := q.get("/healthz"); err == nil && st == http.StatusOK {
				return fmt.Errorf("quill serves: %w", errStop)
			}
			return fmt.Errorf("quill still starting")
		})
		if err != nil {
			tb.Fatalf("sandbox: quill did not refuse to start: %v", err)
		}
		return
	}
	path := "/readyz"
	if q.o.NotReady {
		path = "/healthz"
	}
	err := poll(2*time.Minute, 50*time.Millisecond, func() error {
		if q.proc.Exited() {
			return fmt.Errorf("quill exited: %s: %w", q.LogTail(20), errStop)
		}
		st, _, err := q.get(path)
		if err != nil {
			return err
		}
		if st != http.StatusOK {
			return fmt.Errorf("%s answered %d", path, st)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("sandbox: quill not up: %v", err)
	}
}

// Kill SIGKILLs the process: requests in flight get no answer.
func (q *Quill) Kill() { q.proc.Kill() }

// Exited reports whether the process has exited.
func (q *Quill) Exited() bool { return q.proc.Exited() }

// LogTail is the last n lines of the process's log.
func (q *Quill) LogTail(n int) string {
	b, _ := os.ReadFile(q.proc.Log)
	return lastLines(b, n)
}

// Get is a GET of path on the ops listener.
func (q *Quill) Get(path string) (int, []byte, error) { return q.get(path) }

func (q *Quill) get(path string) (int, []byte, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(q.Ops + path)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// Ready returns /readyz's status and its checks ("ok" or "failing: …" by
// name); status 0 when the ops listener does not answer.
func (q *Quill) Ready() (int, map[string]string) {
	st, b, err := q.get("/readyz")
	if err != nil {
		return 0, nil
	}
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	_ = json.Unmarshal(b, &body)
	return st, body.Checks
}

// WaitReady waits until /readyz says ready.
func (q *Quill) WaitReady(tb testing.TB) {
	tb.Helper()
	err := poll(2*time.Minute, 50*time.Millisecond, func() error {
		if q.proc.Exited() {
			return fmt.Errorf("quill exited: %s: %w", q.LogTail(20), errStop)
		}
		if st, checks := q.Ready(); st != http.StatusOK {
			return fmt.Errorf("readyz %d %v", st, checks)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("sandbox: quill not ready: %v", err)
	}
}

// Client is merchant's signing client.
func (q *Quill) Client(merchant string) *client.Client { return q.clients[merchant] }

// Do sends a request signed now by merchant. A transport error is a response
// of status 0 whose Verified is the error, so that load loops can count it.
func (q *Quill) Do(merchant, method, target string, body []byte) *client.Response {
	r, err := q.clients[merchant].Do(context.Background(), method, target, body)
	if err != nil {
		return &client.Response{Status: 0, Body: []byte(err.Error()), Verified: err}
	}
	return r
}

// Send sends a request already signed with auth (a captured request).
func (q *Quill) Send(merchant, method, target string, body []byte, auth string) *client.Response {
	r, err := q.clients[merchant].Send(context.Background(), method, target, body, auth)
	if err != nil {
		return &client.Response{Status: 0, Body: []byte(err.Error()), Verified: err}
	}
	return r
}

// AuditGet sends GET target to the auditor API with an unscoped auditor
// token and returns the status and body (status 0 on a transport error).
func (q *Quill) AuditGet(target string) (int, []byte) {
	req, err := http.NewRequest(http.MethodGet, q.Audit+target, nil)
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Authorization", "Bearer "+q.token)
	res, err := q.auditor.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// VerifyResponse checks r's platform signature with the platform key from
// the material's key store, for answers a client cannot verify itself (with
// the replay guard down, it cannot fetch GET /v1/certificates either).
func (m *Material) VerifyResponse(r *client.Response) error {
	ks, err := keys.OpenFileStore(filepath.Join(m.Dir, "keys"), keys.FileOptions{})
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
