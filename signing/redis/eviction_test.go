package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quillpay/quill/internal/sandbox"
	"github.com/quillpay/quill/signing"
	"github.com/quillpay/quill/signing/redis"
)

// A private redis-server (its memory settings are changed): the eviction
// check passes only when no nonce can be evicted.
func TestCheckEviction(t *testing.T) {
	srv := sandbox.StartRedis(t)
	c := srv.Client(t)
	ctx := context.Background()
	s := redis.NewNonceStore(c, "test:")
	for _, tc := range []struct {
		maxmemory, policy string
		evicting          bool
	}{
		{"0", "noeviction", false},
		{"0", "allkeys-lru", false}, // no limit: nothing is ever evicted
		{"64mb", "noeviction", false},
		{"64mb", "allkeys-lru", true},
		{"64mb", "allkeys-lfu", true},
		{"64mb", "allkeys-random", true},
		{"64mb", "volatile-lru", true}, // nonces carry a TTL: volatile-* evicts them
		{"64mb", "volatile-ttl", true},
	} {
		t.Run(tc.maxmemory+"/"+tc.policy, func(t *testing.T) {
			configure(t, c, tc.maxmemory, tc.policy)
			err := s.CheckEviction(ctx)
			if got := errors.Is(err, redis.ErrEvictingPolicy); got != tc.evicting {
				t.Fatalf("CheckEviction = %v, want evicting %v", err, tc.evicting)
			}
			if tc.evicting && (!errors.Is(err, signing.ErrUnavailable) || !strings.Contains(err.Error(), tc.policy)) {
				t.Fatalf("CheckEviction = %v: want ErrUnavailable naming %s", err, tc.policy)
			}
		})
	}
}

// With the guard, a claim fails closed on an evicting server, including one
// reconfigured while the store runs; and a server full under noeviction
// refuses the SET, which is ErrUnavailable too: a nonce is never silently
// dropped.
func TestGuardEviction(t *testing.T) {
	srv := sandbox.StartRedis(t)
	c := srv.Client(t)
	ctx := context.Background()
	const ttl = time.Minute
	// A guard that checks before every claim, so the test need not wait.
	s := redis.NewNonceStore(c, "test:").GuardEviction(time.Nanosecond)

	configure(t, c, "64mb", "noeviction")
	if err := s.Claim(ctx, "M1", "N1", ttl); err != nil {
		t.Fatalf("claim on a noeviction server: %v", err)
	}
	configure(t, c, "64mb", "allkeys-lru")
	err := s.Claim(ctx, "M1", "N2", ttl)
	if !errors.Is(err, signing.ErrUnavailable) || !errors.Is(err, redis.ErrEvictingPolicy) {
		t.Fatalf("claim after CONFIG SET allkeys-lru = %v, want ErrUnavailable, ErrEvictingPolicy", err)
	}
	if n, _ := c.Exists(ctx, s.Key("M1", "N2")).Result(); n != 0 {
		t.Fatal("a refused claim stored its nonce")
	}
	if err := s.Claim(ctx, "M1", "N1", ttl); errors.Is(err, signing.ErrReplay) {
		t.Fatal("the guard let a claim reach an evicting server")
	}

	// Full under noeviction: the SET is refused (OOM), the claim fails closed.
	configure(t, c, "4mb", "noeviction")
	srv.Fill(t)
	err = s.Claim(ctx, "M1", "N3", ttl)
	if !errors.Is(err, signing.ErrUnavailable) || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("claim on a full noeviction server = %v, want ErrUnavailable (OOM)", err)
	}
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Claim(ctx, "M1", "N3", ttl); err != nil {
		t.Fatalf("claim once memory is free again: %v", err)
	}
	// The guard is off without GuardEviction: the store trusts the server.
	configure(t, c, "64mb", "allkeys-lru")
	if err := redis.NewNonceStore(c, "test:").Claim(ctx, "M1", "N4", ttl); err != nil {
		t.Fatalf("unguarded claim: %v", err)
	}
}

func configure(tb testing.TB, c *goredis.Client, maxmemory, policy string) {
	tb.Helper()
	ctx := context.Background()
	if err := c.ConfigSet(ctx, "maxmemory-policy", policy).Err(); err != nil {
		tb.Fatal(err)
	}
	if err := c.ConfigSet(ctx, "maxmemory", maxmemory).Err(); err != nil {
		tb.Fatal(err)
	}
}

// A burst of concurrent claims is never refused for want of a recent check:
// not right after the check at start (it counts as a pass), and not after a
// quiet spell longer than twice the re-check interval, when the first claim
// re-checks and the others wait for its result instead of failing 503.
func TestGuardEvictionBursts(t *testing.T) {
	srv := sandbox.StartRedis(t)
	c := srv.Client(t)
	ctx := context.Background()
	configure(t, c, "64mb", "noeviction")
	const every = 20 * time.Millisecond
	s := redis.NewNonceStore(c, "burst:").GuardEviction(every)
	if err := s.CheckEviction(ctx); err != nil { // what cmd/quill does at start
		t.Fatal(err)
	}
	burst := func(round int) {
		t.Helper()
		errs := make(chan error, 64)
		for i := range cap(errs) {
			go func() { errs <- s.Claim(ctx, "M1", fmt.Sprintf("R%d-N%d", round, i), time.Minute) }()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: a claim in a burst was refused: %v", round, err)
			}
		}
	}
	burst(0)
	for round := 1; round <= 3; round++ {
		time.Sleep(3 * every) // older than 2×every: the next claim must re-check
		burst(round)
	}
	// The waiting claims follow the check's result: on an evicting server
	// every one of them fails closed.
	time.Sleep(3 * every)
	configure(t, c, "64mb", "allkeys-lru")
	errs := make(chan error, 32)
	for i := range cap(errs) {
		go func() { errs <- s.Claim(ctx, "M1", fmt.Sprintf("E-N%d", i), time.Minute) }()
	}
	for range cap(errs) {
		if err := <-errs; !errors.Is(err, signing.ErrUnavailable) {
			t.Fatalf("claim on an evicting server after a quiet spell = %v, want ErrUnavailable", err)
		}
	}
}
