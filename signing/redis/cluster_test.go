package redis_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quillpay/quill/internal/cluster"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/signing"
	"github.com/quillpay/quill/signing/redis"
)

// oneKey resolves every merchant's key id "k1" to the same RSA key.
type oneKey struct{ pub crypto.PublicKey }

func (k oneKey) VerifyingKey(_ context.Context, _, id string, _ time.Time) (crypto.PublicKey, error) {
	if id != "k1" {
		return nil, signing.ErrUnknownKey
	}
	return k.pub, nil
}

// signedVerifier returns a verifier over store and a function making a fresh
// correctly signed request from merchant.
func signedVerifier(tb testing.TB, store signing.NonceStore) (*signing.Verifier, func(merchant string) signing.Request) {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	v := &signing.Verifier{Keys: oneKey{&key.PublicKey}, Nonces: store}
	body := []byte(`{"order_id":"ORD000000000001"}`)
	return v, func(merchant string) signing.Request {
		nonce, err := signing.NewNonce(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		auth, err := signing.SignRequest(key, merchant, "k1", "POST", "/v1/payments", body, time.Now(), nonce)
		if err != nil {
			tb.Fatal(err)
		}
		return signing.Request{Method: "POST", Target: "/v1/payments", Authorization: auth, Body: body, Merchant: merchant}
	}
}

func slotOf(tb testing.TB, c *goredis.ClusterClient, key string) int {
	tb.Helper()
	s, err := c.ClusterKeySlot(context.Background(), key).Result()
	if err != nil {
		tb.Fatal(err)
	}
	return int(s)
}

// TestClusterSpreadsMerchants claims nonces of many merchants through the
// real verifier on a real six-node cluster: each merchant's nonces share one
// slot (the hash tag), merchants spread over every master, and a replay is
// refused on whichever node owns the merchant.
func TestClusterSpreadsMerchants(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	rc := cluster.StartRedisCluster(t, cluster.RedisOptions{})
	c := rc.Client(t)
	store := redis.NewNonceStore(c, "test:"+testenv.Random(4)+":")
	v, request := signedVerifier(t, store)
	ctx := context.Background()

	perMaster := map[string]int{}
	slots := map[int]bool{}
	const merchants = 120
	for i := range merchants {
		m := fmt.Sprintf("19%08d", i)
		r := request(m)
		if _, err := v.Verify(ctx, r); err != nil {
			t.Fatalf("merchant %s: %v", m, err)
		}
		if _, err := v.Verify(ctx, r); !errors.Is(err, signing.ErrReplay) {
			t.Fatalf("merchant %s replay: %v, want ErrReplay", m, err)
		}
		s := slotOf(t, c, store.Key(m, "a"))
		if s2 := slotOf(t, c, store.Key(m, "another-nonce")); s2 != s {
			t.Fatalf("merchant %s: nonces in slots %d and %d; the hash tag must pin a merchant to one slot", m, s, s2)
		}
		master, err := rc.MasterOf(s)
		if err != nil {
			t.Fatal(err)
		}
		slots[s] = true
		perMaster[master]++
	}
	if len(perMaster) != 3 {
		t.Errorf("merchants landed on %d masters (%v), want all 3", len(perMaster), perMaster)
	}
	if len(slots) < merchants/2 {
		t.Errorf("%d merchants used only %d slots", merchants, len(slots))
	}
	t.Logf("%d merchants over %d slots: %v", merchants, len(slots), perMaster)
}

// TestClusterFailover kills a master during traffic: claims of the merchants
// on its slots fail closed (ErrUnavailable, never a success that was not
// stored, never a false replay) until its replica is promoted, then succeed
// again on the same client; the other masters' merchants keep being served.
// Nonces acknowledged with WAIT by the replica before the kill are still
// refused as replays after it.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	rc := cluster.StartRedisCluster(t, cluster.RedisOptions{NodeTimeout: 1500 * time.Millisecond})
	c := rc.Client(t)
	prefix := "test:" + testenv.Random(4) + ":"
	store := redis.NewNonceStore(c, prefix)
	waited := redis.NewNonceStore(c, prefix).WaitForReplicas(1, 2*time.Second)
	ctx := context.Background()

	// Pick the victim master and merchants on it and elsewhere.
	victimAddr, err := rc.MasterOf(slotOf(t, c, store.Key("19000000", "x")))
	if err != nil {
		t.Fatal(err)
	}
	var victims, others []string
	for i := 0; len(victims) < 4 || len(others) < 4; i++ {
		m := fmt.Sprintf("19%06d", i)
		owner, err := rc.MasterOf(slotOf(t, c, store.Key(m, "x")))
		if err != nil {
			t.Fatal(err)
		}
		if owner == victimAddr {
			victims = append(victims, m)
		} else {
			others = append(others, m)
		}
	}
	// Nonces acknowledged by a replica before the failover.
	for _, m := range victims {
		if err := waited.Claim(ctx, m, "before-kill", time.Minute); err != nil {
			t.Fatalf("WAIT claim %s: %v", m, err)
		}
	}

	var (
		seq                      atomic.Int64
		mu                       sync.Mutex
		victimOK, victimDown     int
		othersOK, othersDown     int
		firstDown, lastDown      time.Time
		falseReplays, otherError []error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	worker := func(ms []string, victim bool) {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m := ms[i%len(ms)]
			err := store.Claim(ctx, m, fmt.Sprintf("n%d", seq.Add(1)), time.Minute)
			now := time.Now()
			mu.Lock()
			switch {
			case err == nil && victim:
				victimOK++
			case err == nil:
				othersOK++
			case errors.Is(err, signing.ErrReplay):
				falseReplays = append(falseReplays, err)
			case errors.Is(err, signing.ErrUnavailable) && victim:
				victimDown++
				if firstDown.IsZero() {
					firstDown = now
				}
				lastDown = now
			case errors.Is(err, signing.ErrUnavailable):
				othersDown++
			default:
				otherError = append(otherError, err)
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}
	wg.Add(4)
	go worker(victims, true)
	go worker(victims, true)
	go worker(others, false)
	go worker(others, false)

	time.Sleep(500 * time.Millisecond)
	killedAt := time.Now()
	rc.Kill(victimAddr)
	if err := rc.WaitFailover(victimAddr, 2*time.Minute); err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("no replica took over: %v", err)
	}
	promoted := time.Now()
	// Claims on the victim's slots succeed again, same client, no restart.
	mu.Lock()
	okAtPromotion := victimOK
	mu.Unlock()
	err = cluster.Eventually(time.Minute, 50*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if victimOK <= okAtPromotion {
			return errors.New("no claim on the failed-over slots succeeded yet")
		}
		return nil
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}

	if victimDown == 0 {
		t.Error("no claim on the killed master's slots failed: the kill was not observed")
	}
	if len(falseReplays) > 0 {
		t.Errorf("%d fresh nonces reported as replays, first: %v", len(falseReplays), falseReplays[0])
	}
	if len(otherError) > 0 {
		t.Errorf("%d errors that are neither replay nor unavailable, first: %v", len(otherError), otherError[0])
	}
	if othersOK == 0 {
		t.Error("the other masters' merchants were not served")
	}
	for _, m := range victims {
		if err := store.Claim(ctx, m, "before-kill", time.Minute); !errors.Is(err, signing.ErrReplay) {
			t.Errorf("nonce of %s acknowledged with WAIT before the failover: %v, want ErrReplay", m, err)
		}
	}
	t.Logf("master %s killed; replica promoted (cluster ok) after %s; victim claims: %d ok, %d refused with 503 between +%s and +%s; others: %d ok, %d refused",
		victimAddr, promoted.Sub(killedAt).Round(time.Millisecond), victimOK, victimDown,
		firstDown.Sub(killedAt).Round(time.Millisecond), lastDown.Sub(killedAt).Round(time.Millisecond), othersOK, othersDown)
}

// TestClusterWaitReplicas: a claim needing more replicas than exist is
// refused as unavailable (fail closed) though the master stored it.
func TestClusterWaitReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	rc := cluster.StartRedisCluster(t, cluster.RedisOptions{})
	c := rc.Client(t)
	prefix := "test:" + testenv.Random(4) + ":"
	ctx := context.Background()
	one := redis.NewNonceStore(c, prefix).WaitForReplicas(1, 2*time.Second)
	two := redis.NewNonceStore(c, prefix).WaitForReplicas(2, 200*time.Millisecond)
	for i := range 20 {
		m := fmt.Sprintf("M%d", i)
		if err := one.Claim(ctx, m, "N", time.Minute); err != nil {
			t.Fatalf("%s: WAIT 1: %v", m, err)
		}
		if err := one.Claim(ctx, m, "N", time.Minute); !errors.Is(err, signing.ErrReplay) {
			t.Fatalf("%s: replay with WAIT: %v", m, err)
		}
		if err := two.Claim(ctx, m, "N2", time.Minute); !errors.Is(err, signing.ErrUnavailable) {
			t.Fatalf("%s: WAIT 2 with one replica: %v, want ErrUnavailable", m, err)
		}
	}
}

// BenchmarkClusterClaim measures the cost of WAIT 1 on a local cluster
// (sequential claims: latency, not throughput).
func BenchmarkClusterClaim(b *testing.B) {
	rc := cluster.StartRedisCluster(b, cluster.RedisOptions{})
	c := rc.Client(b)
	prefix := "bench:" + testenv.Random(4) + ":"
	for _, bc := range []struct {
		name string
		s    *redis.NonceStore
	}{
		{"no-wait", redis.NewNonceStore(c, prefix)},
		{"wait-1-replica", redis.NewNonceStore(c, prefix).WaitForReplicas(1, 2*time.Second)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				if err := bc.s.Claim(ctx, fmt.Sprintf("M%d", i%64), bc.name+fmt.Sprint(i), time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
