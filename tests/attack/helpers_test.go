package attack

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/quillpay/quill/certs"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/internal/tlsadmin"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/ledger/postgres"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
)

var quillBin string

// Servers and cleanups that outlive the test that started them; TestMain
// stops the servers, checks their logs, then runs the cleanups.
var (
	startedMu sync.Mutex
	started   []*server
	cleanups  []func()
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "quill-attack-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if env := os.Getenv(sharedEnv); env != "" {
		// A fuzzing worker: attack the server its coordinator started.
		defaultSrv = attach(env)
		os.Exit(m.Run())
	}
	quillBin = filepath.Join(dir, "quill")
	cmd := exec.Command("go", "build", "-o", quillBin, "github.com/quillpay/quill/cmd/quill")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "attack: build quill:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		// Fuzzing: start the shared server once, here, and let every
		// worker process (started by m.Run, inheriting the environment)
		// attach to it rather than start its own.
		defaultSrv = start(mainTB{}, "shared", sharedFlags...)
		b, _ := json.Marshal(defaultSrv.shareable())
		os.Setenv(sharedEnv, string(b))
	}
	code := m.Run()
	startedMu.Lock()
	for _, s := range started {
		s.stop()
	}
	// Log hygiene (issue 11 item 17) over everything the servers wrote
	// while attacked; a fuzz worker's logs are checked the same way.
	for _, s := range started {
		for _, problem := range checkLog(s.logPath, sent.snapshot()) {
			fmt.Fprintf(os.Stderr, "attack: log hygiene: %s: %s\n", s.name, problem)
			code = 1
		}
	}
	startedMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// processTB gives a shared server's set-up (testenv's database, temporary
// directories) the process's lifetime instead of the first test's.
type processTB struct{ testing.TB }

func (p processTB) Cleanup(f func()) { cleanups = append(cleanups, f) }

func (p processTB) TempDir() string {
	d, err := os.MkdirTemp("", "quill-attack-")
	if err != nil {
		p.TB.Fatal(err)
	}
	p.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// Merchants of every attack server.
const (
	honest   = "M100" // the merchant whose requests are attacked
	other    = "M200" // another onboarded merchant
	topUp    = "TOPUP"
	flooding = "M300" // the throttle test's flooder
)

// server is one running `quill serve`.
type server struct {
	name      string
	dir       string
	dsn       string    // the test's own connection: the superuser
	roleDSN   [3]string // the server's: owner (migrations), service, reader (auditors)
	roles     postgres.Roles
	base      string // https://127.0.0.1:port
	ops       string // http://127.0.0.1:port
	audit     string // https://127.0.0.1:port, the auditor listener
	prefix    string // Redis key prefix
	logPath   string
	cmd       *exec.Cmd
	exited    chan struct{}
	roots     *x509.CertPool
	merchants map[string]devenv.Merchant
	revoked   tls.Certificate // a client certificate of honest, on the CRL
	platform  *keys.FileStore
	db        *pgx.Conn
	rdb       *goredis.Client
	stopOnce  sync.Once
}

var (
	defaultOnce sync.Once
	defaultSrv  *server
)

// sharedFlags: every test's refusals share one failure window.
var sharedFlags = []string{"--auth-fail-max", "1000000"}

// shared is the server most tests attack: the default configuration but a
// failure limit out of reach (every test's refusals share its window).
func shared(t *testing.T) *server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the real server")
	}
	if defaultSrv == nil {
		defaultOnce.Do(func() { defaultSrv = start(t, "shared", sharedFlags...) })
	}
	if defaultSrv == nil {
		t.Fatal("the shared server did not start")
	}
	return defaultSrv
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start writes fresh dev material and a fresh database, starts quill serve
// with the default configuration plus flags and waits until it is ready.
func start(t testing.TB, name string, flags ...string) *server {
	t.Helper()
	tb := processTB{t}
	ctx := context.Background()
	s := &server{name: name, dir: tb.TempDir(), merchants: map[string]devenv.Merchant{}, exited: make(chan struct{})}
	now := time.Now()
	if err := devenv.Init(s.dir, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.dsn = testenv.Postgres(tb)
	s.leastPrivilege(t)
	reg, err := devenv.OpenRegistry(ctx, s.roleDSN[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []policy.Merchant{
		{ID: honest, Name: "honest", FeeBps: 60},
		{ID: other, Name: "other", FeeBps: 100},
		{ID: flooding, Name: "flooder", FeeBps: 60},
		{ID: topUp, Name: "top-up", CanDeposit: true},
	} {
		if _, err := devenv.AddMerchant(ctx, s.dir, reg, m, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if s.merchants[m.ID], err = devenv.LoadMerchant(s.dir, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	reg.Close()
	if s.platform, err = keys.OpenFileStore(filepath.Join(s.dir, "keys"), keys.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	s.revoked = s.issue(t, honest, time.Hour, now.Add(-time.Minute))
	if err := tlsadmin.Revoke(ctx, s.platform, s.revoked.Leaf.SerialNumber, now); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(s.dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s.roots = x509.NewCertPool()
	s.roots.AppendCertsFromPEM(ca)

	addr, ops, audit := freeAddr(t), freeAddr(t), freeAddr(t)
	s.base, s.ops, s.audit = "https://"+addr, "http://"+ops, "https://"+audit
	s.prefix = "quill-attack:" + testenv.Random(4) + ":"
	args := append([]string{"serve",
		"--addr", addr, "--ops-addr", ops, "--audit-addr", audit, "--data-dir", s.dir,
		"--pg-migrate-dsn", s.roleDSN[0], "--pg-dsn", s.roleDSN[1], "--pg-audit-dsn", s.roleDSN[2],
		"--redis-addr", testenv.RedisAddr(t), "--redis-prefix", s.prefix,
		"--redis-timeout", "2s", "--shutdown-timeout", "5s", "--conn-log-interval", "1s",
	}, flags...)
	s.logPath = filepath.Join(s.dir, "quill.log")
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	s.cmd = exec.Command(quillBin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	startedMu.Lock()
	started = append(started, s)
	startedMu.Unlock()
	deadline := time.Now().Add(90 * time.Second)
	for {
		res, err := http.Get(s.ops + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-s.exited:
			b, _ := os.ReadFile(s.logPath)
			t.Fatalf("%s exited before ready:\n%s", name, b)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready in 90 s", name)
		}
	}
	if s.db, err = pgx.Connect(ctx, s.dsn); err != nil {
		t.Fatal(err)
	}
	s.rdb = goredis.NewClient(&goredis.Options{Addr: testenv.RedisAddr(t)})
	cleanups = append(cleanups, func() { s.db.Close(context.Background()); s.rdb.Close() })
	return s
}

// leastPrivilege gives the server's database its three roles, as the dev
// stack and production do (docs/OPERATIONS.md "Database roles"): the
// attacked server runs as the service role, which cannot rewrite history.
// The database and roles are dropped once the servers have stopped.
func (s *server) leastPrivilege(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	u, err := url.Parse(s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	s.roles, err = postgres.SetupRoles(ctx, testenv.AdminDSN(), db)
	cleanups = append(cleanups, func() {
		a, err := pgx.Connect(ctx, testenv.AdminDSN())
		if err != nil {
			return
		}
		defer a.Close(ctx)
		for _, q := range []string{"DROP DATABASE IF EXISTS " + db + " WITH (FORCE)", "DROP ROLE IF EXISTS " + s.roles.Service,
			"DROP ROLE IF EXISTS " + s.roles.Reader, "DROP ROLE IF EXISTS " + s.roles.Owner} {
			a.Exec(ctx, q)
		}
	})
	if err != nil {
		t.Fatalf("SetupRoles: %v", err)
	}
	for i, role := range []string{s.roles.Owner, s.roles.Service, s.roles.Reader} {
		if s.roleDSN[i], err = postgres.DSN(testenv.AdminDSN(), role, db); err != nil {
			t.Fatal(err)
		}
	}
}

// sharedEnv carries the fuzzing coordinator's shared server to its workers.
const sharedEnv = "QUILL_ATTACK_SHARED_SERVER"

// sharedServer is what a fuzzing worker needs to attack a server it did not
// start.
type sharedServer struct {
	Dir, DSN, Base, Ops, Audit, Prefix string
	RoleDSN                            [3]string
	Roles                              postgres.Roles
}

func (s *server) shareable() sharedServer {
	return sharedServer{s.dir, s.dsn, s.base, s.ops, s.audit, s.prefix, s.roleDSN, s.roles}
}

// attach connects to the server described by env (a sharedServer).
func attach(env string) *server {
	var sh sharedServer
	if err := json.Unmarshal([]byte(env), &sh); err != nil {
		panic(err)
	}
	s := &server{name: "shared", dir: sh.Dir, dsn: sh.DSN, base: sh.Base, ops: sh.Ops, audit: sh.Audit,
		prefix: sh.Prefix, roleDSN: sh.RoleDSN, roles: sh.Roles, merchants: map[string]devenv.Merchant{}}
	var err error
	if err = s.load(); err == nil {
		s.db, err = pgx.Connect(context.Background(), s.dsn)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "attack: attach to the shared server:", err)
		os.Exit(1)
	}
	s.rdb = goredis.NewClient(&goredis.Options{Addr: testenv.RedisAddr(mainTB{})})
	return s
}

// load reads the dev material: merchants, the CA, the key store.
func (s *server) load() error {
	for _, id := range []string{honest, other, flooding, topUp} {
		m, err := devenv.LoadMerchant(s.dir, id)
		if err != nil {
			return err
		}
		s.merchants[id] = m
	}
	ca, err := os.ReadFile(filepath.Join(s.dir, "ca.pem"))
	if err != nil {
		return err
	}
	s.roots = x509.NewCertPool()
	s.roots.AppendCertsFromPEM(ca)
	s.platform, err = keys.OpenFileStore(filepath.Join(s.dir, "keys"), keys.FileOptions{})
	return err
}

// mainTB lets TestMain set up a server with the helpers tests use: a
// failure ends the process.
type mainTB struct{ testing.TB }

func (mainTB) Helper()                             {}
func (mainTB) Name() string                        { return "TestMain" }
func (mainTB) Cleanup(f func())                    { cleanups = append(cleanups, f) }
func (mainTB) Logf(format string, args ...any)     { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (m mainTB) Errorf(format string, args ...any) { m.Fatalf(format, args...) }
func (m mainTB) Fatal(args ...any)                 { m.Fatalf("%s", fmt.Sprint(args...)) }
func (mainTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "attack: "+format+"\n", args...)
	os.Exit(1)
}
func (m mainTB) TempDir() string        { return processTB{m}.TempDir() }
func (mainTB) Context() context.Context { return context.Background() }
func (mainTB) Setenv(string, string)    {}
func (mainTB) Skip(...any)              {}
func (mainTB) Failed() bool             { return false }

// stop sends SIGTERM and waits for the drain (SIGKILL past 20 s).
func (s *server) stop() {
	s.stopOnce.Do(func() {
		syscall.Kill(s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	})
}

// issue makes a client certificate for merchant from the dev CA.
func (s *server) issue(t testing.TB, merchant string, validity time.Duration, notBefore time.Time) tls.Certificate {
	t.Helper()
	ca := s.ca(t)
	certPEM, keyPEM, err := ca.IssueClient(merchant, validity, notBefore)
	if err != nil {
		t.Fatal(err)
	}
	return pair(t, certPEM, keyPEM)
}

func (s *server) ca(t testing.TB) *certs.CA {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(s.dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(s.dir, "ca.key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.LoadCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func pair(t testing.TB, certPEM, keyPEM []byte) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *server) cert(merchant string) *tls.Certificate {
	c := s.merchants[merchant].TLS
	return &c
}

// dial opens an mTLS connection to addr (host:port) presenting cert (none
// when nil) with conf's defaults.
func (s *server) dial(addr string, cert *tls.Certificate, adjust func(*tls.Config)) (*tls.Conn, error) {
	conf := &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12, ServerName: "127.0.0.1"}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	if adjust != nil {
		adjust(conf)
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, conf)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	return conn, nil
}

func hostPort(base string) string {
	_, hp, _ := strings.Cut(base, "://")
	return hp
}

// response is an answer read off the wire.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	// Signed: the Wechatpay-* signature verifies with the platform key it
	// names, over the exact body received.
	Signed bool
}

// problem decodes a problem+json body.
func (r *response) problem(t testing.TB) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, status %d, body %s", ct, r.Status, r.Body)
	}
	var p map[string]any
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// exchange writes raw on a new mTLS connection as cert and reads one
// response.
func (s *server) exchange(t testing.TB, cert *tls.Certificate, raw string) *response {
	t.Helper()
	conn, err := s.dial(hostPort(s.base), cert, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	r, err := s.roundTrip(bufio.NewReader(conn), conn, raw)
	if err != nil {
		t.Fatalf("%q: %v", firstLine(raw), err)
	}
	return r
}

func (s *server) roundTrip(br *bufio.Reader, w io.Writer, raw string) (*response, error) {
	sent.addRequest(raw)
	if _, err := io.WriteString(w, raw); err != nil {
		return nil, err
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	r := &response{Status: res.StatusCode, Header: res.Header, Body: b}
	r.Signed = s.verify(r) == nil
	return r, nil
}

// verify checks the platform signature with the key named by the response.
func (s *server) verify(r *response) error {
	serial := r.Header.Get("Wechatpay-Serial")
	if serial == "" || r.Header.Get("Wechatpay-Signature") == "" {
		return fmt.Errorf("not signed")
	}
	k, err := s.platform.PublicKey(context.Background(), keys.PlatformOwner, serial)
	if err != nil {
		return err
	}
	sent.add(r.Header.Get("Wechatpay-Signature"))
	return signing.VerifyResponse(k.Public, signing.ResponseSignature{
		Timestamp: r.Header.Get("Wechatpay-Timestamp"),
		Nonce:     r.Header.Get("Wechatpay-Nonce"),
		Serial:    serial,
		Signature: r.Header.Get("Wechatpay-Signature"),
	}, r.Body)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// rawRequest renders an HTTP/1.1 request with headers in the order given.
func rawRequest(method, target string, headers []string, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.String()
}

// signed is a scheme A request as merchant signs it.
type signed struct {
	method, target string
	body           []byte
	nonce          string
	auth           string // the Authorization value; none is sent when empty
	emptyAuth      bool   // send an Authorization header with an empty value
}

// sign signs method target body as merchant with its own key and key id,
// at now.
func (s *server) sign(t testing.TB, merchant, method, target string, body []byte) signed {
	t.Helper()
	m := s.merchants[merchant]
	return signWith(t, m.SigningKey, merchant, m.KeyID, method, target, body, time.Now())
}

func signWith(t testing.TB, key crypto.Signer, merchant, keyID, method, target string, body []byte, at time.Time) signed {
	t.Helper()
	nonce, err := signing.NewNonce(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := signing.SignRequest(key, merchant, keyID, method, target, body, at, nonce)
	if err != nil {
		t.Fatal(err)
	}
	sent.add(signatureOf(auth))
	sent.addBody(body)
	return signed{method: method, target: target, body: body, nonce: nonce, auth: auth}
}

// signatureOf is the signature="…" value of a scheme A header.
func signatureOf(auth string) string {
	_, v, ok := strings.Cut(auth, `signature="`)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, `"`)
	return v
}

// raw renders the signed request as sent, with a JSON Content-Type when it
// has a body.
func (r signed) raw(extra ...string) string {
	var h []string
	switch {
	case r.emptyAuth:
		h = append(h, "Authorization:")
	case r.auth != "":
		h = append(h, "Authorization: "+r.auth)
	}
	if r.body != nil {
		h = append(h, "Content-Type: application/json")
	}
	return rawRequest(r.method, r.target, append(h, extra...), r.body)
}

// send signs and sends a request as merchant.
func (s *server) send(t testing.TB, merchant, method, target string, body []byte) *response {
	t.Helper()
	return s.exchange(t, s.cert(merchant), s.sign(t, merchant, method, target, body).raw())
}

var orderSeq atomic.Int64

// newOrderID is unique across the processes of a fuzzing run too (the pid).
func newOrderID() string {
	return fmt.Sprintf("ORD%d%05d%06d", time.Now().UnixMilli(), os.Getpid()%100000, orderSeq.Add(1)%1000000)
}

// wallet funds a fresh wallet with amount and returns its user id and a
// payer token for it.
func (s *server) wallet(t testing.TB, amount string) (user, token string) {
	t.Helper()
	user = fmt.Sprintf("u%d-%d", os.Getpid(), time.Now().UnixNano())
	body := fmt.Sprintf(`{"order_id":%q,"user_id":%q,"amount":%q,"currency":"CNY"}`, newOrderID(), user, amount)
	if r := s.send(t, topUp, "POST", "/v1/deposits", []byte(body)); r.Status != http.StatusOK || !r.Signed {
		t.Fatalf("deposit: %d signed=%v %s", r.Status, r.Signed, r.Body)
	}
	return user, s.token(t, user, 10*time.Minute, time.Now())
}

func (s *server) token(t testing.TB, user string, ttl time.Duration, now time.Time) string {
	t.Helper()
	tok, err := devenv.PayerToken(s.dir, user, ttl, now)
	if err != nil {
		t.Fatal(err)
	}
	sent.add(tok)
	return tok
}

func paymentBody(order, amount, token string) []byte {
	return []byte(fmt.Sprintf(`{"order_id":%q,"amount":%q,"currency":"CNY","payer_token":%q,"description":"attack"}`, order, amount, token))
}

// ledgerState is everything a request could change in the ledger: entry
// and posting counts, the chain head and every balance.
type ledgerState struct {
	entries, postings, head int64
	balances                string
}

func (s *server) state(t testing.TB) ledgerState {
	t.Helper()
	var st ledgerState
	err := s.db.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM entries), (SELECT count(*) FROM postings),
		(SELECT seq FROM ledger_head),
		(SELECT coalesce(string_agg(account_id || ':' || balance, ',' ORDER BY account_id), '') FROM balances)`).
		Scan(&st.entries, &st.postings, &st.head, &st.balances)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// unchanged fails t if the ledger moved since before.
func (s *server) unchanged(t testing.TB, before ledgerState) {
	t.Helper()
	if after := s.state(t); after != before {
		t.Fatalf("the ledger changed: %+v → %+v", before, after)
	}
}

// nonceClaimed reports whether merchant's nonce is in the nonce store.
func (s *server) nonceClaimed(t testing.TB, merchant, nonce string) bool {
	t.Helper()
	n, err := s.rdb.Exists(context.Background(), s.prefix+"nonce:{"+merchant+"}:"+nonce).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// refused fails t unless r is a signed problem with status and code (and
// reason, if not empty).
func refused(t testing.TB, r *response, status int, code, reason string) {
	t.Helper()
	if !r.Signed {
		t.Fatalf("answer not signed: %d %s", r.Status, r.Body)
	}
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	p := r.problem(t)
	if p["code"] != code {
		t.Fatalf("code %v, want %s: %s", p["code"], code, r.Body)
	}
	if reason != "" && p["reason"] != reason {
		t.Fatalf("reason %v, want %s: %s", p["reason"], reason, r.Body)
	}
}

// fieldErrors returns the (field, code) pairs of a 422.
func fieldErrors(t testing.TB, r *response) map[string]string {
	t.Helper()
	out := map[string]string{}
	errs, _ := r.problem(t)["errors"].([]any)
	for _, e := range errs {
		m := e.(map[string]any)
		out[fmt.Sprint(m["field"])] = fmt.Sprint(m["code"])
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }
