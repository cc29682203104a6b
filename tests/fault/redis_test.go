package fault

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/sandbox"
)

// TestRedisDownAtStart: Quill starts while its Redis is not there. It is up
// but not ready; every signed request is refused 503 unavailable (the replay
// guard cannot answer) and writes nothing; the auditor API, which takes no
// nonce, keeps reading. When Redis comes up the service recovers by itself.
func TestRedisDownAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, Redis and quill processes")
	}
	pg := sandbox.StartPostgres(t)
	rd := sandbox.NewRedis(t) // not started
	mat := sandbox.SharedMaterial(t, 3)
	dsn := pg.CreateDatabase(t, "quill")
	q := sandbox.StartQuill(t, mat, sandbox.QuillOptions{DSN: dsn, Redis: rd.Addr, NotReady: true})
	e := &env{pg: pg, redis: rd, mat: mat, q: q, dsn: dsn}
	payee := mat.Payees[0]

	if st, checks := q.Ready(); st != http.StatusServiceUnavailable || !strings.HasPrefix(checks["redis"], "failing") {
		t.Fatalf("/readyz with Redis down at start: %d %v, want 503 with redis failing", st, checks)
	}
	order := orderID()
	for _, req := range []struct {
		merchant, method, target string
		body                     []byte
	}{
		{sandbox.TopUp, "POST", "/v1/deposits", depositBody(orderID(), "early", "10.00")},
		{payee, "POST", "/v1/payments", paymentBody(order, "1.00", mat.PayerToken(t, "early"))},
		{payee, "GET", "/v1/payments/" + order, nil},
	} {
		r := q.Do(req.merchant, req.method, req.target, req.body)
		// The client cannot fetch the platform keys (that request is
		// refused too): check the signature with the key store's.
		if err := mat.VerifyResponse(r); r.Status != http.StatusServiceUnavailable || problemCode(r) != "unavailable" || err != nil {
			t.Errorf("%s %s with Redis down: %d %s (%v), want a signed 503 unavailable", req.method, req.target, r.Status, r.Body, err)
		}
	}
	if n := entries(t, connect(t, dsn), order); n != 0 {
		t.Fatalf("%d entries written with Redis down", n)
	}
	for _, target := range []string{"/v1/audit/trial-balance", "/v1/audit/chain/verify"} {
		if st, body := q.AuditGet(target); st != http.StatusOK {
			t.Errorf("auditor %s with Redis down: %d %s", target, st, body)
		}
	}

	rd.Start(t)
	came := time.Now()
	q.WaitReady(t)
	e.deposit(t, "early", 1000)
	r := q.Do(payee, "POST", "/v1/payments", paymentBody(order, "1.00", mat.PayerToken(t, "early")))
	if r.Status != http.StatusOK || r.Verified != nil {
		t.Fatalf("payment once Redis is up: %d %s", r.Status, r.Body)
	}
	t.Logf("redis down at start: signed requests 503 unavailable, auditor reads 200, nothing written; ready %.2fs after Redis came up, no restart (load %s)",
		time.Since(came).Seconds(), load())
}

// TestRedisKilledUnderLoad: Redis is SIGKILLed while payments run and
// restarted (empty) a moment later. Payments are refused 503 unavailable
// while it is down, and nothing a refused try did is later found written;
// auditor reads keep working; once Redis is back every order is
// acknowledged exactly once, without restarting Quill.
func TestRedisKilledUnderLoad(t *testing.T) {
	e := newEnv(t, envOptions{})
	payee := e.mat.Payees[0]
	workers, perWorker := 6, scale(20)
	e.deposit(t, "rkill", int64(workers*perWorker)*100)
	token := e.mat.PayerToken(t, "rkill")

	run, wait := retryOrders(t, func() *sandbox.Quill { return e.q }, payee, token, "1.00", workers, perWorker)
	waitFor(t, func() bool { return run.settled.Load() >= int64(workers*perWorker/3) })
	e.redis.Kill()
	killed := time.Now()
	refused := func() bool {
		run.mu.Lock()
		defer run.mu.Unlock()
		for _, h := range run.history {
			for _, tr := range h {
				if tr.at.After(killed) && tr.status == http.StatusServiceUnavailable {
					return true
				}
			}
		}
		return false
	}
	waitFor(t, refused)
	if st, body := e.q.AuditGet("/v1/audit/trial-balance"); st != http.StatusOK {
		t.Errorf("auditor trial balance with Redis down: %d %s", st, body)
	}
	e.redis.Start(t)
	back := time.Now()
	wait()

	transport, unavailable, unknown, fromRecord := run.check(t, e.dsn)
	if transport != 0 || unknown != 0 || fromRecord != 0 {
		t.Errorf("%d transport errors, %d outcome_unknown, %d answers from the record: a Redis outage must refuse before the ledger", transport, unknown, fromRecord)
	}
	first := time.Time{}
	for _, h := range run.history {
		for _, tr := range h {
			if tr.entry != 0 && tr.at.After(back) && (first.IsZero() || tr.at.Before(first)) {
				first = tr.at
			}
		}
	}
	if b := balance(t, connect(t, e.dsn), "user:rkill"); b != 0 {
		t.Errorf("wallet at %d, want 0", b)
	}
	t.Logf("redis SIGKILLed under load: %d payments acknowledged exactly once, %d tries refused 503 unavailable while it was down (none of them wrote); first acknowledged %.2fs after Redis was back, no restart (load %s)",
		run.settled.Load(), unavailable, first.Sub(back).Seconds(), load())
}

// TestReplayAfterRedisRestart: a signed payment and a signed deposit are
// captured (their exact bytes) and replayed. While Redis holds their nonces
// the replay is refused 401 nonce_replayed; after Redis restarts empty the
// nonces are forgotten and the replay, still inside the window, passes the
// replay guard — and has no second effect: the ledger answers it from the
// record (same body, Idempotent-Replayed) and the balances move once.
func TestReplayAfterRedisRestart(t *testing.T) {
	e := newEnv(t, envOptions{})
	payee := e.mat.Payees[0]
	db := connect(t, e.dsn)
	deposit := depositBody(orderID(), "replayed", "50.00")
	payment := paymentBody(orderID(), "12.34", e.mat.PayerToken(t, "replayed"))
	captured := []struct {
		merchant, target string
		body             []byte
		auth             string
		first            []byte
	}{{merchant: sandbox.TopUp, target: "/v1/deposits", body: deposit}, {merchant: payee, target: "/v1/payments", body: payment}}
	for i := range captured {
		c := &captured[i]
		auth, err := e.q.Client(c.merchant).Authorization("POST", c.target, c.body)
		if err != nil {
			t.Fatal(err)
		}
		c.auth = auth
		r := e.q.Send(c.merchant, "POST", c.target, c.body, auth)
		if r.Status != http.StatusOK || r.Verified != nil {
			t.Fatalf("%s: %d %s", c.target, r.Status, r.Body)
		}
		c.first = r.Body
		if r := e.q.Send(c.merchant, "POST", c.target, c.body, auth); r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "nonce_replayed") {
			t.Fatalf("replay while Redis holds the nonce: %d %s, want 401 nonce_replayed", r.Status, r.Body)
		}
	}

	e.redis.Kill()
	e.redis.Start(t) // empty
	e.q.WaitReady(t)
	for _, c := range captured {
		r := e.q.Send(c.merchant, "POST", c.target, c.body, c.auth)
		if r.Status != http.StatusOK || r.Verified != nil || !replayed(r) || !bytes.Equal(r.Body, c.first) {
			t.Fatalf("replay of %s after Redis restarted empty: %d replayed=%v %s, want the first answer from the record:\n%s", c.target, r.Status, replayed(r), r.Body, c.first)
		}
	}
	if b := balance(t, db, "user:replayed"); b != 5000-1234 {
		t.Fatalf("wallet at %d, want %d: a replay took effect", b, 5000-1234)
	}
	count, _ := ledgerCheck(t, e.dsn)
	total := 0
	for _, n := range count {
		total += n
	}
	if total != 2 {
		t.Fatalf("%d entries, want 2", total)
	}
	t.Logf("replay after Redis restarted empty: the captured deposit and payment passed the replay guard and were answered from the record, no second effect (load %s)", load())
}
