package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quillpay/quill/signing"
)

// ErrEvictingPolicy means a Redis server has a memory limit with an eviction
// policy other than noeviction: under memory pressure it would drop nonce
// keys (they carry a TTL, so every volatile-* policy may evict them too) and
// a replayed request would pass the replay guard without any error.
var ErrEvictingPolicy = errors.New("redis nonce store: eviction policy can drop nonces")

// CheckEviction asks the server (every reachable master, on a cluster) for
// its memory limit and eviction policy with INFO memory. It returns nil when no server
// may evict a nonce (maxmemory 0, or maxmemory-policy noeviction, under which
// a full server refuses the SET and the claim fails closed); an error
// wrapping signing.ErrUnavailable and ErrEvictingPolicy naming the server and
// its policy when one may; and an error wrapping signing.ErrUnavailable when
// the question cannot be answered (unreachable, INFO refused).
//
// With GuardEviction on, a pass is remembered by the guard, so the check at
// start and /readyz's checks count as its recent passes.
func (s *NonceStore) CheckEviction(ctx context.Context) error {
	err := s.checkEviction(ctx)
	if err == nil && s.guard != nil {
		s.guard.passed.Store(time.Now().UnixNano())
	}
	return err
}

func (s *NonceStore) checkEviction(ctx context.Context) error {
	if cc, ok := s.c.(*goredis.ClusterClient); ok {
		// A master that cannot be asked is skipped: claims on its slots fail
		// anyway, and the other masters' merchants must keep working.
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			if err := checkEviction(ctx, c, c.Options().Addr); errors.Is(err, ErrEvictingPolicy) {
				return err
			}
			return nil
		})
	}
	return checkEviction(ctx, s.c, "redis")
}

func checkEviction(ctx context.Context, c goredis.Cmdable, name string) error {
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return fmt.Errorf("%w: redis: INFO memory: %w", signing.ErrUnavailable, err)
	}
	var maxmemory, policy string
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "maxmemory":
			maxmemory = v
		case "maxmemory_policy":
			policy = v
		}
	}
	limit, err := strconv.ParseInt(maxmemory, 10, 64)
	if err != nil || policy == "" {
		return fmt.Errorf("%w: redis: INFO memory of %s names no maxmemory or maxmemory_policy", signing.ErrUnavailable, name)
	}
	if limit > 0 && policy != "noeviction" {
		return fmt.Errorf("%w: %w: %s has maxmemory %d with maxmemory-policy %s; set maxmemory-policy noeviction (or maxmemory 0)",
			signing.ErrUnavailable, ErrEvictingPolicy, name, limit, policy)
	}
	return nil
}

// evictionGuard remembers when CheckEviction last passed.
type evictionGuard struct {
	every  time.Duration
	passed atomic.Int64  // time.Now().UnixNano() of the last pass; 0 none
	check  chan struct{} // a one-slot semaphore: one check at a time
}

// GuardEviction makes Claim fail closed (an error wrapping
// signing.ErrUnavailable) unless CheckEviction passed recently: when the last
// pass is older than every, the next claim runs the check first. Claims
// arriving during that check pass if the last pass is younger than 2×every;
// otherwise they wait for it (within their context) and follow its result,
// so a burst after a quiet spell is delayed by one INFO, never refused. A
// server started or reconfigured (CONFIG SET) with an evicting policy stops
// nonce claims within 2×every, and one unreachable at start is checked as
// soon as it answers. every <= 0 turns the guard off. It returns s.
func (s *NonceStore) GuardEviction(every time.Duration) *NonceStore {
	if every <= 0 {
		s.guard = nil
		return s
	}
	s.guard = &evictionGuard{every: every, check: make(chan struct{}, 1)}
	return s
}

// fresh reports whether the last pass is younger than d.
func (g *evictionGuard) fresh(d time.Duration) bool {
	last := g.passed.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < d
}

// allow runs the guard for one claim.
func (g *evictionGuard) allow(ctx context.Context, s *NonceStore) error {
	if g.fresh(g.every) {
		return nil
	}
	select {
	case g.check <- struct{}{}:
	default:
		if g.fresh(2 * g.every) {
			return nil // a check is running and the last pass is recent
		}
		select {
		case g.check <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("%w: redis: eviction policy not verified yet: %w", signing.ErrUnavailable, ctx.Err())
		}
	}
	defer func() { <-g.check }()
	if g.fresh(g.every) { // the check this claim waited for passed
		return nil
	}
	return s.CheckEviction(ctx)
}
