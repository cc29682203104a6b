package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/quillpay/quill/internal/client"
	"github.com/quillpay/quill/internal/sandbox"
	"github.com/quillpay/quill/ledger/postgres"
	"github.com/quillpay/quill/policy"
)

func TestMain(m *testing.M) { os.Exit(sandbox.Main(m)) }

// long says whether QUILL_FAULT_LONG asks for the longer loads.
func long() bool { return os.Getenv("QUILL_FAULT_LONG") != "" }

// scale is n, or n×10 with QUILL_FAULT_LONG.
func scale(n int) int {
	if long() {
		return 10 * n
	}
	return n
}

// env is one private stack: PostgreSQL, Redis and a quill process.
type env struct {
	pg    *sandbox.Postgres
	redis *sandbox.Redis
	mat   *sandbox.Material
	q     *sandbox.Quill
	proxy *sandbox.Proxy // between quill and PostgreSQL, with envOptions.proxy
	dsn   string         // the ledger database, direct (never through the proxy)
}

// envOptions vary newEnv's stack.
type envOptions struct {
	payees int      // payee merchants; default 3
	proxy  bool     // quill reaches PostgreSQL through a sandbox.Proxy
	args   []string // extra quill flags
}

// newEnv starts a private PostgreSQL and Redis and a quill process on them.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL, Redis and quill processes")
	}
	if o.payees == 0 {
		o.payees = 3 // one shared material for every test
	}
	e := &env{pg: sandbox.StartPostgres(t), redis: sandbox.StartRedis(t), mat: sandbox.SharedMaterial(t, o.payees)}
	e.dsn = e.pg.CreateDatabase(t, "quill")
	qdsn := e.dsn
	if o.proxy {
		e.proxy = sandbox.NewProxy(t, e.pg.Addr())
		qdsn = "postgres://postgres@" + e.proxy.Addr + "/quill?sslmode=disable&connect_timeout=5"
	}
	e.q = sandbox.StartQuill(t, e.mat, sandbox.QuillOptions{DSN: qdsn, Redis: e.redis.Addr, Args: o.args})
	// Each client fetches the platform keys once, now, rather than hundreds
	// of concurrent first answers each fetching them.
	for _, m := range append([]string{sandbox.TopUp}, e.mat.Payees...) {
		if r := do(e.q, m, "GET", "/v1/certificates", nil); r.Status != http.StatusOK || r.Verified != nil {
			t.Fatalf("GET /v1/certificates as %s: %d %s (%v)", m, r.Status, r.Body, r.Verified)
		}
	}
	return e
}

var orderSeq atomic.Int64

// orderID is a fresh order id of the default pattern ^ORD[0-9]{12,29}$.
func orderID() string {
	return fmt.Sprintf("ORD%d%06d", time.Now().UnixMilli(), orderSeq.Add(1)%1000000)
}

func paymentBody(order, amount, token string) []byte {
	return []byte(fmt.Sprintf(`{"order_id":%q,"amount":%q,"currency":"CNY","payer_token":%q}`, order, amount, token))
}

func depositBody(order, user, amount string) []byte {
	return []byte(fmt.Sprintf(`{"order_id":%q,"user_id":%q,"amount":%q,"currency":"CNY"}`, order, user, amount))
}

// deposit tops up wallet user:<user> with amount (minor units) and fails
// the test if it is refused.
func (e *env) deposit(t testing.TB, user string, minor int64) {
	t.Helper()
	r := e.q.Do(sandbox.TopUp, "POST", "/v1/deposits", depositBody(orderID(), user, policy.FormatAmount(minor, "CNY")))
	if r.Status != http.StatusOK || r.Verified != nil {
		t.Fatalf("deposit: %d %s (%v)", r.Status, r.Body, r.Verified)
	}
}

// problemCode returns a problem answer's code ("" for any other body).
func problemCode(r *client.Response) string {
	var p struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(r.Body, &p) != nil {
		return ""
	}
	return p.Code
}

// recorded is what a 200 payment or deposit answer says.
type recorded struct {
	OrderID string `json:"order_id"`
	Amount  string `json:"amount"`
	EntryID int64  `json:"entry_id"`
}

func decodeRecorded(t testing.TB, r *client.Response) recorded {
	t.Helper()
	var rec recorded
	if err := json.Unmarshal(r.Body, &rec); err != nil || rec.EntryID == 0 {
		t.Errorf("answer %s: %v", r.Body, err)
	}
	return rec
}

func replayed(r *client.Response) bool { return r.Header.Get("Idempotent-Replayed") == "true" }

// connect opens a connection to dsn, closed when the test ends.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// ledgerCheck runs the ledger's own verifiers over the database at dsn (the
// hash chain from entry 1 to the head, every stored balance against the
// postings), checks that no entry is partial or unbalanced, and returns the
// number of entries per order id and their entry ids.
func ledgerCheck(t testing.TB, dsn string) (count map[string]int, ids map[string]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := postgres.Open(ctx, dsn, postgres.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.VerifyChain(ctx, 1, 0); err != nil {
		t.Errorf("chain: %v", err)
	}
	if err := s.CheckBalances(ctx); err != nil {
		t.Errorf("balances: %v", err)
	}
	c := connect(t, dsn)
	var partial int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM entries e
		LEFT JOIN (SELECT entry_id, count(*) AS n, SUM(amount) AS s FROM postings GROUP BY entry_id) p ON p.entry_id = e.id
		WHERE p.n IS NULL OR p.n < 2 OR p.n <> e.posting_count OR p.s <> 0`).Scan(&partial); err != nil {
		t.Fatal(err)
	}
	if partial != 0 {
		t.Errorf("%d entries partial or unbalanced", partial)
	}
	rows, err := c.Query(ctx, "SELECT order_id, id FROM entries")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	count, ids = map[string]int{}, map[string]int64{}
	for rows.Next() {
		var o string
		var id int64
		if err := rows.Scan(&o, &id); err != nil {
			t.Fatal(err)
		}
		count[o]++
		ids[o] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return count, ids
}

// balance is an account's balance in minor units, normal sign, from the
// postings.
func balance(t testing.TB, c *pgx.Conn, code string) int64 {
	t.Helper()
	var b int64
	err := c.QueryRow(context.Background(), `
		SELECT COALESCE(SUM(p.amount), 0) * CASE WHEN a.type IN ('asset','expense') THEN 1 ELSE -1 END
		FROM accounts a LEFT JOIN postings p ON p.account_id = a.id
		WHERE a.code = $1 AND a.currency = 'CNY' GROUP BY a.type`, code).Scan(&b)
	if err == pgx.ErrNoRows {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entries counts the entries of order.
func entries(t testing.TB, c *pgx.Conn, order string) int {
	t.Helper()
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM entries WHERE order_id = $1", order).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// load reports the machine's load average, logged next to every figure.
func load() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	var one, five, fifteen string
	fmt.Sscan(string(b), &one, &five, &fifteen)
	return one + " " + five + " " + fifteen
}

// try is one answer to one try of an order.
type try struct {
	status   int
	code     string
	replayed bool
	entry    int64
	at       time.Time
}

// orderRun is a set of orders each retried, freshly signed, until answered
// 200: what every try was answered, by order.
type orderRun struct {
	mu      sync.Mutex
	history map[string][]try
	settled atomic.Int64 // orders answered 200
}

// retryOrders sends workers×perWorker payments of amount from the wallet of
// token to payee through q(), retrying each order (a fresh signature and
// nonce each time) after a transport error or a 503 until it is answered
// 200, for at most three minutes. Any other answer fails the test. It
// returns at once; wait for the result with the returned function.
func retryOrders(t *testing.T, q func() *sandbox.Quill, payee, token, amount string, workers, perWorker int) (*orderRun, func()) {
	run := &orderRun{history: map[string][]try{}}
	deadline := time.Now().Add(3 * time.Minute)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				order := orderID()
				body := paymentBody(order, amount, token)
				for time.Now().Before(deadline) {
					r := q().Do(payee, "POST", "/v1/payments", body)
					tr := try{status: r.Status, code: problemCode(r), replayed: replayed(r), at: time.Now()}
					if r.Status == http.StatusOK && r.Verified == nil {
						tr.entry = decodeRecorded(t, r).EntryID
					}
					run.mu.Lock()
					run.history[order] = append(run.history[order], tr)
					run.mu.Unlock()
					if tr.entry != 0 {
						run.settled.Add(1)
						break
					}
					if r.Status != 0 && r.Status != http.StatusServiceUnavailable {
						t.Errorf("order %s: %d %s (%v)", order, r.Status, r.Body, r.Verified)
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	return run, wg.Wait
}

// check verifies the run against the ledger at dsn: every order was
// answered 200 and has exactly the one entry it was answered with (so no
// acknowledged payment was lost and none was written twice), and an order
// answered from the record (Idempotent-Replayed) had an earlier try whose
// outcome was not known to its client — a transport error or 503
// outcome_unknown — never only tries answered "503 unavailable, nothing was
// done". It returns the counts of tries by kind.
func (run *orderRun) check(t *testing.T, dsn string) (transport, unavailable, unknown, fromRecord int) {
	t.Helper()
	count, ids := ledgerCheck(t, dsn)
	run.mu.Lock()
	defer run.mu.Unlock()
	for order, h := range run.history {
		last := h[len(h)-1]
		if last.entry == 0 {
			t.Errorf("order %s never answered 200: %+v", order, h)
			continue
		}
		if count[order] != 1 || ids[order] != last.entry {
			t.Errorf("order %s answered with entry %d has %d entries (id %d)", order, last.entry, count[order], ids[order])
		}
		uncertain := false
		for _, tr := range h[:len(h)-1] {
			switch {
			case tr.status == 0:
				transport++
				uncertain = true
			case tr.code == "outcome_unknown":
				unknown++
				uncertain = true
			case tr.code == "unavailable":
				unavailable++
			}
		}
		if last.replayed {
			fromRecord++
			if !uncertain {
				t.Errorf("order %s was written by a try its client was told did nothing: %+v", order, h)
			}
		}
	}
	return
}

// do sends a signed request like q.Do and, as a client would, sends it again
// (freshly signed: the order id makes it idempotent) when the connection
// failed without an answer, a few times. It counts the resends in resent.
func do(q *sandbox.Quill, merchant, method, target string, body []byte) *client.Response {
	r := q.Do(merchant, method, target, body)
	for i := 0; r.Status == 0 && i < 5; i++ {
		resent.Add(1)
		time.Sleep(100 * time.Millisecond)
		r = q.Do(merchant, method, target, body)
	}
	return r
}

// resent counts the requests do sent again.
var resent atomic.Int64
