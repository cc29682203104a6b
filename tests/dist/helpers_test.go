package dist

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/quillpay/quill/internal/client"
	"github.com/quillpay/quill/internal/cluster"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/ledger/postgres"
	"github.com/quillpay/quill/merchant"
	"github.com/quillpay/quill/policy"
)

// quillBin is the server binary TestMain builds.
var quillBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "quill-dist-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if !testing.Short() {
		quillBin = filepath.Join(dir, "quill")
		cmd := exec.Command("go", "build", "-o", quillBin, "github.com/quillpay/quill/cmd/quill")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "dist: build quill:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// topology is dev material shared by several quill nodes.
type topology struct {
	t         testing.TB
	dir       string
	merchants []string
	roots     *x509.CertPool
	loaded    map[string]devenv.Merchant
	profiles  []policy.Merchant
	nodes     []*node
	// registered holds the databases the profiles were added to: each
	// node's --pg-dsn gets them before the node starts.
	registered map[string]bool
}

const topUp = "TOPUP"

// newTopology writes dev material with n payee merchants and a top-up client.
func newTopology(t testing.TB, n int) *topology {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	if err := devenv.Init(dir, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	tp := &topology{t: t, dir: dir, loaded: map[string]devenv.Merchant{}, registered: map[string]bool{}}
	profiles := []policy.Merchant{{ID: topUp, Name: "top-up", CanDeposit: true}}
	for i := range n {
		id := fmt.Sprintf("M%03d", 100+i)
		tp.merchants = append(tp.merchants, id)
		profiles = append(profiles, policy.Merchant{ID: id, Name: id, FeeBps: 60})
	}
	tp.profiles = profiles
	for _, m := range profiles {
		if _, err := devenv.AddMerchant(context.Background(), dir, nil, m, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		mc, err := devenv.LoadMerchant(dir, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		tp.loaded[m.ID] = mc
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tp.roots = x509.NewCertPool()
	tp.roots.AppendCertsFromPEM(ca)
	return tp
}

// node is one running quill serve process.
type node struct {
	name    string
	base    string // https://127.0.0.1:port
	ops     string // http://127.0.0.1:port
	proc    *cluster.Proc
	clients map[string]*client.Client
}

// startNode runs quill serve with the shared data dir and the given flags
// (--pg-dsn, Redis flags…) and waits until it is ready.
func (tp *topology) startNode(args ...string) *node {
	tp.t.Helper()
	for i, a := range args {
		if a == "--pg-dsn" && i+1 < len(args) && !tp.registered[args[i+1]] {
			tp.register(args[i+1])
		}
	}
	ports := cluster.FreePorts(tp.t, 2, false)
	n := &node{
		name:    fmt.Sprintf("quill%d", len(tp.nodes)+1),
		base:    "https://127.0.0.1:" + strconv.Itoa(ports[0]),
		ops:     "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		clients: map[string]*client.Client{},
	}
	all := append([]string{"serve", "--addr", strings.TrimPrefix(n.base, "https://"), "--ops-addr", strings.TrimPrefix(n.ops, "http://"), "--audit-addr", "off",
		"--data-dir", tp.dir, "--log-level", "warn", "--redis-timeout", "1s", "--shutdown-timeout", "2s"}, args...)
	n.proc = cluster.Start(tp.t, tp.dir, n.name, nil, quillBin, all...)
	err := cluster.Eventually(2*time.Minute, 100*time.Millisecond, func() error {
		if n.proc.Exited() {
			b, _ := os.ReadFile(n.proc.Log)
			return fmt.Errorf("%s exited: %s: %w", n.name, b, errStop)
		}
		res, err := http.Get(n.ops + "/readyz")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", res.StatusCode)
		}
		return nil
	})
	if err != nil {
		tp.t.Fatalf("%s not ready: %v", n.name, err)
	}
	for id, mc := range tp.loaded {
		conf := &tls.Config{RootCAs: tp.roots, Certificates: []tls.Certificate{mc.TLS}, MinVersion: tls.VersionTLS12}
		n.clients[id] = &client.Client{
			BaseURL: n.base, Merchant: id, KeyID: mc.KeyID, Key: mc.SigningKey,
			HTTP: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, MaxIdleConnsPerHost: 32}},
		}
	}
	tp.nodes = append(tp.nodes, n)
	return n
}

// register adds the topology's merchant profiles to the registry in the
// database at dsn (migrating it first, as a node would).
func (tp *topology) register(dsn string) {
	tp.t.Helper()
	ctx := context.Background()
	reg, err := devenv.OpenRegistry(ctx, dsn)
	if err != nil {
		tp.t.Fatalf("registry at %s: %v", dsn, err)
	}
	defer reg.Close()
	for _, p := range tp.profiles {
		if _, err := reg.Add(ctx, p, merchant.Event{Actor: "test"}); err != nil && !errors.Is(err, merchant.ErrExists) {
			tp.t.Fatal(err)
		}
	}
	tp.registered[dsn] = true
}

var errStop = errors.New("stop")

// do sends a signed request; a transport error is returned as status 0.
func (n *node) do(merchant, method, target string, body []byte) *client.Response {
	r, err := n.clients[merchant].Do(context.Background(), method, target, body)
	if err != nil {
		return &client.Response{Status: 0, Body: []byte(err.Error()), Verified: err}
	}
	return r
}

func (tp *topology) token(sub string) string {
	tp.t.Helper()
	tok, err := devenv.PayerToken(tp.dir, sub, 30*time.Minute, time.Now())
	if err != nil {
		tp.t.Fatal(err)
	}
	return tok
}

var seq atomic.Int64

func orderID() string {
	return fmt.Sprintf("ORD%d%06d", time.Now().UnixMilli(), seq.Add(1)%1000000)
}

func paymentBody(order, amount, token string) []byte {
	return []byte(fmt.Sprintf(`{"order_id":%q,"amount":%q,"currency":"CNY","payer_token":%q}`, order, amount, token))
}

// deposit tops up user's wallet through n, failing the test if it is refused.
func (tp *topology) deposit(n *node, user, amount string) {
	tp.t.Helper()
	body := fmt.Sprintf(`{"order_id":%q,"user_id":%q,"amount":%q,"currency":"CNY"}`, orderID(), user, amount)
	r := n.do(topUp, "POST", "/v1/deposits", []byte(body))
	if r.Status != http.StatusOK || r.Verified != nil {
		tp.t.Fatalf("deposit via %s: %d %s (%v)", n.name, r.Status, r.Body, r.Verified)
	}
}

// recorded is what a 200 payment answer says.
type recorded struct {
	OrderID    string `json:"order_id"`
	MerchantID string `json:"merchant_id"`
	Amount     string `json:"amount"`
	EntryID    int64  `json:"entry_id"`
	EntryHash  string `json:"entry_hash"`
}

// decodeRecorded decodes a 200 payment answer; it reports a bad one with
// Errorf (it is called from client goroutines too).
func decodeRecorded(tb testing.TB, r *client.Response) recorded {
	tb.Helper()
	var rec recorded
	if err := json.Unmarshal(r.Body, &rec); err != nil || rec.EntryID == 0 {
		tb.Errorf("payment answer %s: %v", r.Body, err)
	}
	return rec
}

// problemCode returns the code of a problem+json answer ("" otherwise).
func problemCode(r *client.Response) string {
	var p struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(r.Body, &p) != nil {
		return ""
	}
	return p.Code
}

// audit checks the ledger at dsn with the ledger's own verifiers (the hash
// chain from the first entry to the head, every balance from the postings)
// and returns the number of entries per (merchant, order id) and the total.
func audit(tb testing.TB, dsn string) (map[[2]string]int, int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := postgres.Open(ctx, dsn, postgres.Options{Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	if err := s.VerifyChain(ctx, 1, 0); err != nil {
		tb.Errorf("chain: %v", err)
	}
	if err := s.CheckBalances(ctx); err != nil {
		tb.Errorf("balances: %v", err)
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, "SELECT merchant_id, order_id, count(*) FROM entries GROUP BY 1, 2")
	if err != nil {
		tb.Fatal(err)
	}
	out := map[[2]string]int{}
	total := 0
	for rows.Next() {
		var m, o string
		var n int
		if err := rows.Scan(&m, &o, &n); err != nil {
			tb.Fatal(err)
		}
		out[[2]string{m, o}] = n
		total += n
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out, total
}

// balance is an account's balance in minor units, normal sign, from postings.
func balance(tb testing.TB, dsn, code string) int64 {
	tb.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(context.Background())
	var b int64
	err = c.QueryRow(context.Background(), `
		SELECT COALESCE(SUM(p.amount), 0) * CASE WHEN a.type IN ('asset','expense') THEN 1 ELSE -1 END
		FROM accounts a LEFT JOIN postings p ON p.account_id = a.id
		WHERE a.code = $1 AND a.currency = 'CNY' GROUP BY a.type`, code).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
