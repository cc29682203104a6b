package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/policy"
)

// TestBankInvariant: concurrent random payments and refunds between many wallets and
// three merchants while readers take snapshot sums (one REPEATABLE READ
// transaction each) and trial balances from the auditor API. Every read must
// find the seeded total, no wallet below zero and every entry balanced; the
// number of reads that did not is the violations figure, which must be 0.
// Money only moves by the API: deposits seed the wallets, payments move it
// to the merchants (less the fee, to platform:fees), and partial refunds of a
// third of the payments move some of it back.
func TestBankInvariant(t *testing.T) {
	e := newEnv(t, envOptions{payees: 3})
	const wallets = 24
	rng := rand.New(rand.NewPCG(1, 2))
	var seeded int64
	tokens := make([]string, wallets)
	for i := range wallets {
		amount := 20000 + rng.Int64N(30000) // 200.00 … 499.99
		if i%3 == 0 {
			amount = 100 + rng.Int64N(3000) // 1.00 … 30.99: these run dry
		}
		e.deposit(t, fmt.Sprint("w", i), amount)
		seeded += amount
		tokens[i] = e.mat.PayerToken(t, fmt.Sprint("w", i))
	}

	workers, perWorker := 6, scale(40)
	var (
		ok, poor, refunds, violations, snapshots, trials atomic.Int64
		done                                             = make(chan struct{})
		writers, readers                                 sync.WaitGroup
	)
	violate := func(format string, args ...any) {
		if violations.Add(1) <= 5 {
			t.Errorf(format, args...)
		}
	}
	start := time.Now()
	for w := range workers {
		writers.Add(1)
		go func() {
			defer writers.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range perWorker {
				wallet := r.IntN(wallets)
				payee := e.mat.Payees[r.IntN(len(e.mat.Payees))]
				paid := 1 + r.Int64N(2000) // 0.01 … 20.00
				amount := policy.FormatAmount(paid, "CNY")
				order := orderID()
				res := do(e.q, payee, "POST", "/v1/payments", paymentBody(order, amount, tokens[wallet]))
				switch {
				case res.Status == http.StatusOK && res.Verified == nil:
					ok.Add(1)
				case res.Status == http.StatusUnprocessableEntity && problemCode(res) == "insufficient_funds":
					poor.Add(1)
					continue
				default:
					t.Errorf("payment of %s from w%d: %d %s (%v)", amount, wallet, res.Status, res.Body, res.Verified)
					continue
				}
				if r.IntN(3) != 0 {
					continue
				}
				// A third of the payments are partly refunded: money flows
				// back from the merchant (and the fee's share from
				// platform:fees) to the wallet.
				back := policy.FormatAmount(1+r.Int64N(paid), "CNY")
				res = do(e.q, payee, "POST", "/v1/refunds", []byte(fmt.Sprintf(
					`{"refund_id":%q,"order_id":%q,"amount":%q,"currency":"CNY","reason":"fault test"}`, orderID(), order, back)))
				switch {
				case res.Status == http.StatusOK && res.Verified == nil:
					refunds.Add(1)
				case res.Status == http.StatusUnprocessableEntity && problemCode(res) == "insufficient_funds":
				default:
					t.Errorf("refund of %s of %s: %d %s (%v)", back, order, res.Status, res.Body, res.Verified)
				}
			}
		}()
	}
	readers.Add(2)
	go func() { // snapshot sums straight from the database
		defer readers.Done()
		c := connect(t, e.dsn)
		for {
			if err := snapshot(c, seeded); err != nil {
				violate("snapshot %d: %v", snapshots.Load(), err)
			}
			snapshots.Add(1)
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	go func() { // trial balances from the auditor API
		defer readers.Done()
		for {
			if err := trialBalance(e, seeded); err != nil {
				violate("trial balance %d: %v", trials.Load(), err)
			}
			trials.Add(1)
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	writers.Wait()
	elapsed := time.Since(start)
	close(done)
	readers.Wait()

	// Afterwards: the chain and every balance verify, nothing is partial, and
	// the money is all there.
	ledgerCheck(t, e.dsn)
	if err := snapshot(connect(t, e.dsn), seeded); err != nil {
		t.Errorf("final snapshot: %v", err)
	}
	if ok.Load() == 0 || poor.Load() == 0 || refunds.Load() == 0 {
		t.Errorf("%d payments accepted, %d refused for funds, %d refunds: the load must do all three", ok.Load(), poor.Load(), refunds.Load())
	}
	t.Logf("bank invariant: %d payments accepted (%.0f transfers/s), %d refused insufficient_funds, %d refunds, %d snapshot sums and %d trial balances read during the load, %d violations (load %s)",
		ok.Load(), float64(ok.Load()+refunds.Load())/elapsed.Seconds(), poor.Load(), refunds.Load(), snapshots.Load(), trials.Load(), violations.Load(), load())
}

// snapshot checks, in one REPEATABLE READ snapshot, that the debit-normal
// and the credit-normal accounts each sum to seeded, that no wallet is below
// zero (by its postings and by its stored balance) and that every entry's
// postings sum to zero.
func snapshot(c *pgx.Conn, seeded int64) error {
	ctx := context.Background()
	tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	var debits, credits, negative, negativeStored, unbalanced int64
	err = tx.QueryRow(ctx, `SELECT
		(SELECT COALESCE(SUM(p.amount), 0) FROM postings p JOIN accounts a ON a.id = p.account_id WHERE a.type IN ('asset','expense')),
		(SELECT COALESCE(-SUM(p.amount), 0) FROM postings p JOIN accounts a ON a.id = p.account_id WHERE a.type NOT IN ('asset','expense')),
		(SELECT count(*) FROM (SELECT a.id FROM accounts a JOIN postings p ON p.account_id = a.id
			WHERE a.code LIKE 'user:%' OR a.code LIKE 'merchant:%' GROUP BY a.id HAVING -SUM(p.amount) < 0) x),
		(SELECT count(*) FROM balances b JOIN accounts a ON a.id = b.account_id WHERE (a.code LIKE 'user:%' OR a.code LIKE 'merchant:%') AND b.balance < 0),
		(SELECT count(*) FROM (SELECT entry_id FROM postings GROUP BY entry_id HAVING SUM(amount) <> 0) x)`).
		Scan(&debits, &credits, &negative, &negativeStored, &unbalanced)
	if err != nil {
		return err
	}
	if debits != seeded || credits != seeded || negative != 0 || negativeStored != 0 || unbalanced != 0 {
		return fmt.Errorf("debit-normal accounts sum to %d and credit-normal ones to %d (seeded %d); %d wallets or merchants below zero by postings, %d by stored balance; %d entries unbalanced",
			debits, credits, seeded, negative, negativeStored, unbalanced)
	}
	return nil
}

// trialBalance asks the auditor API for a trial balance of the head and
// checks it balances, was compared with the stored balances, holds the
// seeded total on both sides and shows no wallet below zero.
func trialBalance(e *env, seeded int64) error {
	st, body := e.q.AuditGet("/v1/audit/trial-balance")
	if st != http.StatusOK {
		return fmt.Errorf("status %d: %s", st, body)
	}
	var tb struct {
		Accounts []struct {
			Account, Currency, Balance string
		} `json:"accounts"`
		Totals []struct {
			Currency       string `json:"currency"`
			DebitBalances  string `json:"debit_balances"`
			CreditBalances string `json:"credit_balances"`
			Balanced       bool   `json:"balanced"`
		} `json:"totals"`
		Checked bool `json:"checked_against_balances"`
	}
	if err := json.Unmarshal(body, &tb); err != nil {
		return err
	}
	if !tb.Checked || len(tb.Totals) != 1 || !tb.Totals[0].Balanced {
		return fmt.Errorf("not balanced or not checked against the balances: %s", body)
	}
	d, err1 := minor(tb.Totals[0].DebitBalances)
	c, err2 := minor(tb.Totals[0].CreditBalances)
	if err1 != nil || err2 != nil || d != seeded || c != seeded {
		return fmt.Errorf("debit balances %s, credit balances %s; seeded %s", tb.Totals[0].DebitBalances, tb.Totals[0].CreditBalances, policy.FormatAmount(seeded, "CNY"))
	}
	for _, a := range tb.Accounts {
		b, err := minor(a.Balance)
		if err != nil {
			return err
		}
		if (strings.HasPrefix(a.Account, "user:") || strings.HasPrefix(a.Account, "merchant:")) && b < 0 {
			return fmt.Errorf("wallet %s at %s", a.Account, a.Balance)
		}
	}
	return nil
}

// minor parses a two-decimal amount string, possibly negative or zero, into
// minor units.
func minor(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	whole, frac, ok := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	if !ok || len(frac) != 2 {
		return 0, fmt.Errorf("amount %q", s)
	}
	v, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	if neg {
		v = -v
	}
	return v, nil
}
