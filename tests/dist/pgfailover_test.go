package dist

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/internal/cluster"
	"github.com/quillpay/quill/internal/testenv"
)

// attempt is one answer to one try of an order.
type attempt struct {
	status   int
	code     string
	replayed bool
	entry    int64
	at       time.Time
}

// TestPostgresFailover runs two quill processes on a pg_auto_failover
// formation (synchronous quorum replication to the secondary), reaching the
// primary through a multi-host DSN with target_session_attrs=read-write.
// The primary is SIGKILLed while a bounded stream of signed payments runs;
// every client retries an order until it is answered with 200. Afterwards,
// on the promoted node: every 200 is there exactly once with the entry it was
// answered with, nothing acknowledged was lost, the chain verifies and the
// balances are exact; and an order refused with 503 "unavailable" (nothing
// written) is never later found to have been written by that refused try.
func TestPostgresFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a pg_auto_failover formation and two quill processes")
	}
	f := cluster.StartPGFormation(t, cluster.PGOptions{Database: "quill"})
	primary, err := f.Primary()
	if err != nil {
		t.Fatal(err)
	}
	checkSynchronous(t, f.NodeDSN(primary, "postgres"))

	tp := newTopology(t, 2)
	args := []string{"--pg-dsn", f.DSN("quill"), "--pg-read-dsn", f.StandbyDSN("quill"),
		"--redis-addr", testenv.RedisAddr(t), "--redis-prefix", "quilltest:" + testenv.Random(4) + ":"}
	tp.startNode(append(args, "--migrate=true")...)
	tp.startNode(append(args, "--migrate=false")...)
	tp.deposit(tp.nodes[0], "u1", "100000.00")
	token := tp.token("u1")

	t.Run("GET right after POST sees the write", func(t *testing.T) {
		for i := range 10 {
			n := tp.nodes[i%2]
			m := tp.merchants[i%2]
			order := orderID()
			r := n.do(m, "POST", "/v1/payments", paymentBody(order, "1.00", token))
			if r.Status != http.StatusOK {
				t.Fatalf("POST: %d %s", r.Status, r.Body)
			}
			g := n.do(m, "GET", "/v1/payments/"+order, nil)
			if g.Status != http.StatusOK || g.Verified != nil {
				t.Fatalf("GET right after POST: %d %s (%v)", g.Status, g.Body, g.Verified)
			}
			if a, b := decodeRecorded(t, r), decodeRecorded(t, g); a != b {
				t.Fatalf("GET %+v, POST %+v", b, a)
			}
		}
	})

	const workers, perWorker = 6, 25
	var (
		mu      sync.Mutex
		history = map[string][]attempt{} // order → answers, in order
		owner   = map[string]string{}    // order → merchant
		done    atomic.Int64
	)
	var wg sync.WaitGroup
	deadline := time.Now().Add(4 * time.Minute)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := tp.merchants[w%len(tp.merchants)]
			for range perWorker {
				order := orderID()
				body := paymentBody(order, "1.00", token)
				mu.Lock()
				owner[order] = m
				mu.Unlock()
				for try := 0; time.Now().Before(deadline); try++ {
					n := tp.nodes[(w+try)%2] // a retry may reach the other node
					r := n.do(m, "POST", "/v1/payments", body)
					a := attempt{status: r.Status, code: problemCode(r), replayed: r.Header.Get("Idempotent-Replayed") == "true", at: time.Now()}
					if r.Status == http.StatusOK && r.Verified == nil {
						a.entry = decodeRecorded(t, r).EntryID
					}
					mu.Lock()
					history[order] = append(history[order], a)
					mu.Unlock()
					if a.entry != 0 {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				done.Add(1)
			}
		}()
	}
	// Kill the primary once the stream is well under way.
	if err := cluster.Eventually(3*time.Minute, 20*time.Millisecond, func() error {
		if done.Load() < workers*perWorker/4 {
			return fmt.Errorf("only %d payments done", done.Load())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	f.Kill(primary)
	promoted, err := f.WaitPromoted(primary, 3*time.Minute)
	if err != nil {
		wg.Wait()
		t.Fatalf("no promotion: %v", err)
	}
	promotedAt := time.Now()
	wg.Wait()

	// Judge every answer.
	var (
		acked, retriedFromRecord, refused, unknown int
		okTimes                                    []time.Time
	)
	for order, h := range history {
		final := h[len(h)-1]
		if final.entry == 0 {
			t.Errorf("order %s never answered 200 (last %d %s)", order, final.status, final.code)
		}
		uncertain := false
		for _, a := range h[:len(h)-1] {
			switch {
			case a.status == http.StatusServiceUnavailable && a.code == "unavailable":
				refused++
			case a.status == http.StatusServiceUnavailable && a.code == "outcome_unknown":
				unknown++
				uncertain = true
			default:
				t.Errorf("order %s: an answer that is neither 200 nor a retryable 503: %d %q", order, a.status, a.code)
				uncertain = true
			}
		}
		if final.entry != 0 {
			acked++
			if final.replayed {
				retriedFromRecord++
				if len(h) > 1 && !uncertain {
					t.Errorf("order %s: refused with 503 unavailable (nothing written), yet the retry found it recorded", order)
				}
			}
			okTimes = append(okTimes, final.at)
		}
	}
	// The time without service: the longest stretch after the kill with no
	// payment acknowledged, including the last one before it.
	slices.SortFunc(okTimes, func(a, b time.Time) int { return a.Compare(b) })
	var lastOKBefore, firstOKAfter time.Time
	for i := 1; i < len(okTimes); i++ {
		if okTimes[i].Before(killedAt) {
			continue
		}
		if gap := okTimes[i].Sub(okTimes[i-1]); gap > firstOKAfter.Sub(lastOKBefore) {
			lastOKBefore, firstOKAfter = okTimes[i-1], okTimes[i]
		}
	}
	if acked != workers*perWorker {
		t.Errorf("%d orders acknowledged, want %d", acked, workers*perWorker)
	}

	// A client retry of an acknowledged order, after the failover, through
	// either node: answered from the record on the new primary, nothing new.
	retried := 0
	for order, h := range history {
		if retried == 10 {
			break
		}
		final := h[len(h)-1]
		if final.entry == 0 {
			continue
		}
		r := tp.nodes[retried%2].do(owner[order], "POST", "/v1/payments", paymentBody(order, "1.00", token))
		if r.Status != http.StatusOK || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry of %s after the failover: %d %s, want the recorded answer", order, r.Status, r.Body)
		} else if got := decodeRecorded(t, r).EntryID; got != final.entry {
			t.Errorf("retry of %s answered entry %d, first answer %d", order, got, final.entry)
		}
		retried++
	}
	// On the promoted node: exactly the acknowledged entries, once each.
	// (The retries above must not have added any.)
	newDSN := f.NodeDSN(promoted, "quill")
	entries, total := audit(t, newDSN)
	for order, h := range history {
		final := h[len(h)-1]
		if final.entry == 0 {
			continue
		}
		if n := entries[[2]string{owner[order], order}]; n != 1 {
			t.Errorf("acknowledged order %s has %d entries on the new primary", order, n)
		}
		if id := entryID(t, newDSN, owner[order], order); id != final.entry {
			t.Errorf("order %s answered with entry %d, new primary has %d", order, final.entry, id)
		}
	}
	payments := acked + 10 // and the read-your-write payments
	if total != payments+1 {
		t.Errorf("%d entries on the new primary, want %d payments + 1 deposit", total, payments)
	}
	if got, want := balance(t, newDSN, "user:u1"), int64(100000_00-100*payments); got != want {
		t.Errorf("user:u1 balance %d, want %d", got, want)
	}
	t.Logf("monitor timeline:\n%s", f.Timeline())
	t.Logf("primary %s SIGKILLed; %s promoted after %s; no payment acknowledged between %+.2fs and %+.2fs from the kill (%.1fs without service); "+
		"%d acknowledged, %d tries refused 503 unavailable, %d 503 outcome_unknown, %d retries answered from the record",
		primary.Name, promoted.Name, promotedAt.Sub(killedAt).Round(100*time.Millisecond),
		lastOKBefore.Sub(killedAt).Seconds(), firstOKAfter.Sub(killedAt).Seconds(),
		firstOKAfter.Sub(lastOKBefore).Seconds(), acked, refused, unknown, retriedFromRecord)
}

// checkSynchronous fails t unless the primary at dsn commits synchronously
// to a standby that is streaming.
func checkSynchronous(t *testing.T, dsn string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var names, commit string
	if err := c.QueryRow(context.Background(), "SELECT current_setting('synchronous_standby_names'), current_setting('synchronous_commit')").Scan(&names, &commit); err != nil {
		t.Fatal(err)
	}
	var syncStandbys int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync','quorum') AND state = 'streaming'").Scan(&syncStandbys); err != nil {
		t.Fatal(err)
	}
	if names == "" || commit == "off" || commit == "local" || syncStandbys < 1 {
		t.Fatalf("replication is not synchronous: synchronous_standby_names=%q synchronous_commit=%q, %d sync standbys", names, commit, syncStandbys)
	}
	t.Logf("synchronous_standby_names=%q synchronous_commit=%s", names, commit)
}

func entryID(tb testing.TB, dsn, merchant, order string) int64 {
	tb.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(context.Background())
	var id int64
	if err := c.QueryRow(context.Background(), "SELECT id FROM entries WHERE merchant_id = $1 AND order_id = $2", merchant, order).Scan(&id); err != nil {
		tb.Fatal(err)
	}
	return id
}
