package fault

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/sandbox"
	"github.com/quillpay/quill/signing"
	signingredis "github.com/quillpay/quill/signing/redis"
)

// TestRedisEvictionRefused: Quill refuses to start on a Redis with a memory
// limit and a policy that may evict keys (nonces carry a TTL, so volatile-*
// policies evict them as well as allkeys-*): a nonce is never dropped
// silently.
func TestRedisEvictionRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, Redis and quill processes")
	}
	pg := sandbox.StartPostgres(t)
	mat := sandbox.SharedMaterial(t, 3)
	dsn := pg.CreateDatabase(t, "quill")
	for _, policy := range []string{"allkeys-lru", "volatile-ttl"} {
		t.Run(policy, func(t *testing.T) {
			rd := sandbox.StartRedis(t, "--maxmemory", "64mb", "--maxmemory-policy", policy)
			q := sandbox.StartQuill(t, mat, sandbox.QuillOptions{DSN: dsn, Redis: rd.Addr, ExitsAtStart: true})
			if log := q.LogTail(5); !strings.Contains(log, policy) || !strings.Contains(log, "noeviction") {
				t.Fatalf("quill exited without naming the policy and the fix:\n%s", log)
			}
			t.Logf("redis with maxmemory 64mb and maxmemory-policy %s: quill refused to start (load %s)", policy, load())
		})
	}
}

// TestRedisFullOrEvicting: with Redis at its memory limit under noeviction,
// a nonce claim is refused by Redis and the payment fails closed (503
// unavailable, nothing written) until memory is freed; and when the policy
// is switched to an evicting one while Quill runs (CONFIG SET), payments are
// refused 503 and /readyz names the policy, until it is switched back.
func TestRedisFullOrEvicting(t *testing.T) {
	e := newEnv(t, envOptions{})
	payee := e.mat.Payees[0]
	db := connect(t, e.dsn)
	rc := e.redis.Client(t)
	ctx := context.Background()
	e.deposit(t, "full", 100000000)
	token := e.mat.PayerToken(t, "full")
	pay := func() (string, int, string) {
		order := orderID()
		r := e.q.Do(payee, "POST", "/v1/payments", paymentBody(order, "1.00", token))
		return order, r.Status, problemCode(r)
	}
	set := func(k, v string) {
		t.Helper()
		if err := rc.ConfigSet(ctx, k, v).Err(); err != nil {
			t.Fatal(err)
		}
	}

	// Full under noeviction.
	used, err := rc.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	var usedBytes int64
	for _, line := range strings.Split(used, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			fmt.Sscan(v, &usedBytes)
		}
	}
	set("maxmemory", fmt.Sprint(usedBytes+4<<20))
	fillers := e.redis.Fill(t)
	// Redis frees a few bytes now and then (client buffers), so a claim may
	// still fit: each payment is either refused with nothing written, or
	// accepted with its nonce stored — never accepted with its nonce lost.
	nonces := signingredis.NewNonceStore(nil, "quillfault:")
	refused := 0
	for i := range 10 {
		order := orderID()
		body := paymentBody(order, "1.00", token)
		auth, err := e.q.Client(payee).Authorization("POST", "/v1/payments", body)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := signing.ParseAuthorization(auth)
		if err != nil {
			t.Fatal(err)
		}
		r := e.q.Send(payee, "POST", "/v1/payments", body, auth)
		stored, err := rc.Exists(ctx, nonces.Key(payee, cred.Nonce)).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case r.Status == http.StatusServiceUnavailable && problemCode(r) == "unavailable":
			refused++
			if n := entries(t, db, order); n != 0 {
				t.Fatalf("%d entries for a payment refused with Redis full", n)
			}
		case r.Status == http.StatusOK && stored == 1:
		default:
			t.Fatalf("payment %d with Redis full: %d %s, nonce stored %v; want 503 unavailable, or 200 with its nonce in Redis", i, r.Status, r.Body, stored == 1)
		}
	}
	if refused == 0 {
		t.Fatal("Redis full: no payment was refused")
	}
	if err := rc.Del(ctx, fillers...).Err(); err != nil {
		t.Fatal(err)
	}
	if _, st, code := pay(); st != http.StatusOK {
		t.Fatalf("payment once memory is free: %d %s", st, code)
	}

	// Switched to an evicting policy while serving.
	set("maxmemory", "64mb")
	set("maxmemory-policy", "allkeys-lru")
	switched := time.Now()
	var order string
	waitFor(t, func() bool {
		var st int
		order, st, _ = pay()
		time.Sleep(20 * time.Millisecond)
		return st == http.StatusServiceUnavailable
	})
	stopped := time.Since(switched)
	if n := entries(t, db, order); n != 0 {
		t.Fatalf("%d entries for a payment refused on an evicting Redis", n)
	}
	if st, checks := e.q.Ready(); st != http.StatusServiceUnavailable || !strings.Contains(checks["redis"], "allkeys-lru") {
		t.Fatalf("/readyz on an evicting Redis: %d %v, want 503 naming allkeys-lru", st, checks)
	}
	set("maxmemory-policy", "noeviction")
	e.q.WaitReady(t)
	waitFor(t, func() bool { _, st, _ := pay(); return st == http.StatusOK })
	ledgerCheck(t, e.dsn)
	t.Logf("redis full under noeviction: %d of 10 payments refused 503 unavailable with nothing written, the others' nonces stored, until memory was freed; CONFIG SET allkeys-lru while serving: payments refused %.1fs later (bound: 2×5s), /readyz named the policy (load %s)",
		refused, stopped.Seconds(), load())
}
