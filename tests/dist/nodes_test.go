package dist

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/client"
	"github.com/quillpay/quill/internal/cluster"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/signing"
)

// TestNodesOnRedisCluster runs three quill processes on one PostgreSQL and a
// six-node Redis Cluster. Payments go to all nodes at once, the same orders
// to several nodes; a replay whose nonce Redis lost is answered from the
// record; a Redis master killed under traffic refuses its merchants with 503
// (writing nothing) until its replica is promoted, then they are served again
// by the same processes.
func TestNodesOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster and three quill processes")
	}
	rc := cluster.StartRedisCluster(t, cluster.RedisOptions{NodeTimeout: 1500 * time.Millisecond})
	dsn := testenv.Postgres(t)
	tp := newTopology(t, 6)
	prefix := "quilltest:" + testenv.Random(4) + ":"
	redisArgs := []string{"--redis-mode", "cluster", "--redis-addrs", strings.Join(rc.Addrs, ","), "--redis-prefix", prefix}
	n1 := tp.startNode(append([]string{"--pg-dsn", dsn, "--migrate=true"}, redisArgs...)...)
	tp.startNode(append([]string{"--pg-dsn", dsn, "--migrate=false"}, redisArgs...)...)
	tp.startNode(append([]string{"--pg-dsn", dsn, "--migrate=false"}, redisArgs...)...)

	users := []string{"u1", "u2", "u3"}
	for i, u := range users {
		tp.deposit(tp.nodes[i], u, "100000.00")
	}
	tokens := map[string]string{}
	for _, u := range users {
		tokens[u] = tp.token(u)
	}
	paid := map[string]int{} // user → payments of 1.00 that got a 200
	var mu sync.Mutex

	t.Run("payments across nodes", func(t *testing.T) {
		// The merchants' nonces must live on every master, or the test
		// would not exercise the whole cluster.
		cc := rc.Client(t)
		masters := map[string]bool{}
		for _, m := range tp.merchants {
			slot, err := cc.ClusterKeySlot(context.Background(), prefix+"nonce:{"+m+"}:x").Result()
			if err != nil {
				t.Fatal(err)
			}
			owner, err := rc.MasterOf(int(slot))
			if err != nil {
				t.Fatal(err)
			}
			masters[owner] = true
		}
		if len(masters) != 3 {
			t.Fatalf("the merchants' nonces live on %d masters, want 3", len(masters))
		}
		const perMerchant = 12
		type result struct {
			order string
			entry int64
			code  int
			body  string
		}
		var wg sync.WaitGroup
		results := make(chan result, 4096)
		for mi, m := range tp.merchants {
			for k := range perMerchant {
				wg.Add(1)
				go func() {
					defer wg.Done()
					u := users[(mi+k)%len(users)]
					order := orderID()
					body := paymentBody(order, "1.00", tokens[u])
					// Every third order is sent to all three nodes at once.
					targets := []*node{tp.nodes[(mi+k)%3]}
					if k%3 == 0 {
						targets = tp.nodes
					}
					var inner sync.WaitGroup
					entries := make([]int64, len(targets))
					for i, n := range targets {
						inner.Add(1)
						go func() {
							defer inner.Done()
							r := n.do(m, "POST", "/v1/payments", body)
							if r.Status != http.StatusOK || r.Verified != nil {
								results <- result{order: order, code: r.Status, body: string(r.Body)}
								return
							}
							entries[i] = decodeRecorded(t, r).EntryID
						}()
					}
					inner.Wait()
					for _, e := range entries[1:] {
						if e != 0 && entries[0] != 0 && e != entries[0] {
							results <- result{order: order, code: -1, body: fmt.Sprintf("one order answered with entries %v", entries)}
						}
					}
					if entries[0] != 0 {
						mu.Lock()
						paid[u]++
						mu.Unlock()
					}
					results <- result{order: order, entry: entries[0], code: 200}
				}()
			}
		}
		wg.Wait()
		close(results)
		orders := 0
		for r := range results {
			if r.code != 200 {
				t.Errorf("order %s: %d %s", r.order, r.code, r.body)
				continue
			}
			orders++
		}
		if orders != len(tp.merchants)*perMerchant {
			t.Errorf("%d orders paid, want %d", orders, len(tp.merchants)*perMerchant)
		}
	})

	t.Run("replay after the nonce is lost", func(t *testing.T) {
		m := tp.merchants[0]
		order := orderID()
		body := paymentBody(order, "1.00", tokens["u1"])
		c := n1.clients[m]
		auth, err := c.Authorization("POST", "/v1/payments", body)
		if err != nil {
			t.Fatal(err)
		}
		send := func(n *node) *client.Response {
			t.Helper()
			r, err := n.clients[m].Send(context.Background(), "POST", "/v1/payments", body, auth)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		first := send(tp.nodes[0])
		if first.Status != http.StatusOK {
			t.Fatalf("first: %d %s", first.Status, first.Body)
		}
		mu.Lock()
		paid["u1"]++
		mu.Unlock()
		// While Redis holds the nonce, a replay to any node is refused.
		if r := send(tp.nodes[1]); r.Status != http.StatusUnauthorized {
			t.Fatalf("replay with the nonce in Redis: %d %s, want 401", r.Status, r.Body)
		}
		// Lose the nonce the way a failover before replication would.
		cred, err := signing.ParseAuthorization(auth)
		if err != nil {
			t.Fatal(err)
		}
		key := prefix + "nonce:{" + m + "}:" + cred.Nonce
		cc := rc.Client(t)
		if n, err := cc.Del(context.Background(), key).Result(); err != nil || n != 1 {
			t.Fatalf("DEL %s: %d, %v", key, n, err)
		}
		again := send(tp.nodes[2])
		if again.Status != http.StatusOK || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay after the nonce was lost: %d %s (Idempotent-Replayed %q), want the recorded answer",
				again.Status, again.Body, again.Header.Get("Idempotent-Replayed"))
		}
		if a, b := decodeRecorded(t, first), decodeRecorded(t, again); a != b {
			t.Errorf("replay answered %+v, first answer %+v", b, a)
		}
		entries, _ := audit(t, dsn)
		if got := entries[[2]string{m, order}]; got != 1 {
			t.Errorf("order %s has %d entries, want 1", order, got)
		}
	})

	t.Run("redis master killed under traffic", func(t *testing.T) {
		cc := rc.Client(t)
		victim := ""
		var victimMaster string
		for _, m := range tp.merchants {
			slot, err := cc.ClusterKeySlot(context.Background(), prefix+"nonce:{"+m+"}:x").Result()
			if err != nil {
				t.Fatal(err)
			}
			if victimMaster, err = rc.MasterOf(int(slot)); err != nil {
				t.Fatal(err)
			}
			victim = m
			break
		}
		var (
			wg                sync.WaitGroup
			stop              = make(chan struct{})
			ok, refused       int
			refusedOrders     []string
			wrong             []string
			firstBad, lastBad time.Time
		)
		killed := time.Now()
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := tp.nodes[w]
				for {
					select {
					case <-stop:
						return
					default:
					}
					order := orderID()
					r := n.do(victim, "POST", "/v1/payments", paymentBody(order, "1.00", tokens["u2"]))
					now := time.Now()
					mu.Lock()
					switch {
					case r.Status == http.StatusOK && r.Verified == nil:
						ok++
						paid["u2"]++
					case r.Status == http.StatusServiceUnavailable && problemCode(r) == "unavailable":
						refused++
						refusedOrders = append(refusedOrders, order)
						if firstBad.IsZero() {
							firstBad = now
						}
						lastBad = now
					default:
						wrong = append(wrong, fmt.Sprintf("%d %s", r.Status, r.Body))
					}
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		time.Sleep(time.Second)
		killed = time.Now()
		rc.Kill(victimMaster)
		if err := rc.WaitFailover(victimMaster, 2*time.Minute); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
		mu.Lock()
		okAt := ok
		mu.Unlock()
		err := cluster.Eventually(time.Minute, 100*time.Millisecond, func() error {
			mu.Lock()
			defer mu.Unlock()
			if ok < okAt+3 {
				return fmt.Errorf("victim merchant not served again")
			}
			return nil
		})
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if refused == 0 {
			t.Error("no payment was refused while the master was down")
		}
		for _, w := range wrong {
			t.Errorf("answer neither 200 nor 503 unavailable: %s", w)
		}
		entries, _ := audit(t, dsn)
		for _, o := range refusedOrders {
			if n := entries[[2]string{victim, o}]; n != 0 {
				t.Errorf("order %s was refused with 503 but has %d entries", o, n)
			}
		}
		t.Logf("redis master %s killed: %d payments refused with 503 from +%s to +%s, %d succeeded; served again by the same processes",
			victimMaster, refused, firstBad.Sub(killed).Round(time.Millisecond), lastBad.Sub(killed).Round(time.Millisecond), ok)
	})

	// Exactly one entry per order, no fork or gap, balances exact.
	entries, total := audit(t, dsn)
	for k, n := range entries {
		if n != 1 {
			t.Errorf("order %v has %d entries", k, n)
		}
	}
	payments := 0
	for _, u := range users {
		payments += paid[u]
		want := int64(100000_00 - 100*paid[u])
		if got := balance(t, dsn, "user:"+u); got != want {
			t.Errorf("user:%s balance %d, want %d (%d payments of 1.00)", u, got, want, paid[u])
		}
	}
	if total != payments+len(users) {
		t.Errorf("%d entries, want %d payments + %d deposits", total, payments, len(users))
	}
	var credited int64
	for _, m := range tp.merchants {
		credited += balance(t, dsn, "merchant:"+m)
	}
	credited += balance(t, dsn, "platform:fees")
	if credited != int64(100*payments) {
		t.Errorf("merchants and fees credited %d, want %d", credited, 100*payments)
	}
}
