package fault

import (
	"testing"
	"time"

	"github.com/quillpay/quill/internal/sandbox"
)

// TestQuillKilled: the quill process is SIGKILLed twice while payments are
// in flight and started again on the same ports. Clients retry every order
// they got no answer for (a fresh signature and nonce each time) until it is
// answered 200. No payment is lost and none is written twice: every order
// has exactly the entry it was finally answered with, and one that had been
// committed before the kill is answered from the record.
func TestQuillKilled(t *testing.T) {
	e := newEnv(t, envOptions{})
	payee := e.mat.Payees[0]
	workers, perWorker := 8, scale(15)
	total := workers * perWorker
	e.deposit(t, "qkill", int64(total)*100)
	token := e.mat.PayerToken(t, "qkill")

	run, wait := retryOrders(t, func() *sandbox.Quill { return e.q }, payee, token, "1.00", workers, perWorker)
	var down time.Duration
	for _, at := range []int{total / 3, 2 * total / 3} {
		waitFor(t, func() bool { return run.settled.Load() >= int64(at) })
		e.q.Kill()
		killed := time.Now()
		e.q.Start(t)
		down += time.Since(killed)
	}
	wait()

	transport, unavailable, unknown, fromRecord := run.check(t, e.dsn)
	if b := balance(t, connect(t, e.dsn), "user:qkill"); b != 0 {
		t.Errorf("wallet at %d after %d payments of its whole deposit, want 0", b, total)
	}
	if transport == 0 {
		t.Error("no try was cut by the kills: nothing was in flight")
	}
	t.Logf("quill SIGKILLed twice with requests in flight: %d payments acknowledged, each exactly once, none lost; %d tries cut in flight or refused while down, %d answered 503 unavailable, %d 503 outcome_unknown, %d retries answered from the record; %.1fs down in all (load %s)",
		run.settled.Load(), transport, unavailable, unknown, fromRecord, down.Seconds(), load())
}
