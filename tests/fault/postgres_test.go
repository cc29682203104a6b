package fault

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/sandbox"
)

// TestPostgresKilled: PostgreSQL is SIGKILLed (postmaster and every
// backend) while a stream of payments runs, and restarted a second later on
// the same data directory. Clients retry each order until it is answered
// 200. Afterwards every acknowledged payment is there exactly once with the
// entry it was answered with, no entry is partial or unbalanced, the chain
// and the balances verify, and the service recovered by itself: the figure
// is the time from PostgreSQL accepting connections again to the first
// payment acknowledged after it, and to /readyz saying ready.
func TestPostgresKilled(t *testing.T) {
	e := newEnv(t, envOptions{})
	payee := e.mat.Payees[0]
	workers, perWorker := 6, scale(20)
	e.deposit(t, "pgkill", int64(workers*perWorker)*100)
	token := e.mat.PayerToken(t, "pgkill")

	run, wait := retryOrders(t, func() *sandbox.Quill { return e.q }, payee, token, "1.00", workers, perWorker)
	waitFor(t, func() bool { return run.settled.Load() >= int64(workers*perWorker/3) })
	killed := time.Now()
	e.pg.Kill()
	time.Sleep(time.Second) // down for a moment, under load
	e.pg.Start(t)
	up := time.Now()
	e.q.WaitReady(t)
	ready := time.Since(up)
	wait()

	transport, unavailable, unknown, fromRecord := run.check(t, e.dsn)
	first := time.Time{}
	for _, h := range run.history {
		for _, tr := range h {
			if tr.entry != 0 && tr.at.After(up) && (first.IsZero() || tr.at.Before(first)) {
				first = tr.at
			}
		}
	}
	if first.IsZero() {
		t.Fatal("no payment acknowledged after PostgreSQL came back")
	}
	db := connect(t, e.dsn)
	if b := balance(t, db, "user:pgkill"); b != 0 {
		t.Errorf("wallet at %d after %d payments of its whole deposit, want 0", b, workers*perWorker)
	}
	t.Logf("postgres SIGKILLed under load: %d payments acknowledged, each exactly once; first acknowledged %.2fs after PostgreSQL accepted connections again (%.2fs after the kill), /readyz ready after %.2fs; %d tries cut (transport), %d answered 503 unavailable, %d 503 outcome_unknown, %d retries answered from the record (load %s)",
		run.settled.Load(), first.Sub(up).Seconds(), first.Sub(killed).Seconds(), ready.Seconds(), transport, unavailable, unknown, fromRecord, load())
}

// TestCommitCut: the connection between Quill and PostgreSQL is cut at
// COMMIT by a proxy, after the server received it (the entry is committed)
// or instead of sending it (it is not). The commit outcome is unknown to
// Quill. With PostgreSQL still reachable, Quill resolves it by order id at
// once and answers 200 (writing nothing twice). With PostgreSQL then out of
// reach, the answer is 503 outcome_unknown — never a failure that says
// nothing was done — and the client's retry with the same order id, once
// PostgreSQL is back, is answered 200 from the record or by the one write.
func TestCommitCut(t *testing.T) {
	e := newEnv(t, envOptions{proxy: true})
	payee := e.mat.Payees[0]
	db := connect(t, e.dsn)
	for _, tc := range []struct {
		name       string
		where      sandbox.CommitCut
		thenRefuse bool
	}{
		{"after COMMIT reached the server, server still reachable", sandbox.AfterCommit, false},
		{"before COMMIT reached the server, server still reachable", sandbox.BeforeCommit, false},
		{"after COMMIT reached the server, then unreachable", sandbox.AfterCommit, true},
		{"before COMMIT reached the server, then unreachable", sandbox.BeforeCommit, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := "cut" + testName(t)
			e.deposit(t, user, 1000)
			token := e.mat.PayerToken(t, user)
			order := orderID()
			body := paymentBody(order, "2.50", token)
			cut := e.proxy.CutAtCommit(tc.where, tc.thenRefuse)
			r := e.q.Do(payee, "POST", "/v1/payments", body)
			select {
			case <-cut:
			case <-time.After(time.Minute):
				t.Fatal("no COMMIT was cut")
			}
			if r.Verified != nil {
				t.Fatalf("answer: %d %s (%v)", r.Status, r.Body, r.Verified)
			}
			if tc.thenRefuse {
				// Quill could not look: the cut alone decided.
				committed := entries(t, db, order)
				if want := map[bool]int{true: 1, false: 0}[tc.where == sandbox.AfterCommit]; committed != want {
					t.Fatalf("%d entries after the cut, want %d", committed, want)
				}
				if r.Status != http.StatusServiceUnavailable || problemCode(r) != "outcome_unknown" {
					t.Fatalf("answer with the outcome unknown and PostgreSQL out of reach: %d %s, want 503 outcome_unknown", r.Status, r.Body)
				}
				e.proxy.Relay()
				e.q.WaitReady(t)
				r = e.q.Do(payee, "POST", "/v1/payments", body) // the client's retry, freshly signed
			}
			if r.Status != http.StatusOK || r.Verified != nil {
				t.Fatalf("answer: %d %s (%v), want 200", r.Status, r.Body, r.Verified)
			}
			if n := entries(t, db, order); n != 1 {
				t.Fatalf("%d entries, want 1", n)
			}
			if b := balance(t, db, "user:"+user); b != 750 {
				t.Fatalf("wallet at %d, want 750: the payment took effect other than once", b)
			}
			t.Logf("commit cut %s: answered %d%s, replayed %v; 1 entry (load %s)", tc.name, r.Status,
				map[bool]string{true: " after a 503 outcome_unknown", false: ""}[tc.thenRefuse], replayed(r), load())
		})
	}
	ledgerCheck(t, e.dsn)
}

// waitFor polls cond until it holds (for at most three minutes).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 3 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var nameSeq int

// testName is a short unique name for per-subtest wallets.
func testName(t *testing.T) string {
	nameSeq++
	return fmt.Sprint(nameSeq)
}
