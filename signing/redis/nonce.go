package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quillpay/quill/signing"
)

// NonceStore is a signing.NonceStore in Redis. It is safe for concurrent use.
type NonceStore struct {
	c      goredis.UniversalClient
	prefix string

	waitReplicas int           // 0: acknowledge on the master's reply alone
	waitTimeout  time.Duration // how long WAIT may block

	guard *evictionGuard // nil: the eviction policy is not checked
}

var _ signing.NonceStore = (*NonceStore)(nil)

// NewNonceStore returns a NonceStore using c, with every key starting with
// prefix (e.g. "quill:"). c may be a single-node, sentinel or cluster client.
func NewNonceStore(c goredis.UniversalClient, prefix string) *NonceStore {
	return &NonceStore{c: c, prefix: prefix}
}

// WaitForReplicas makes every successful claim wait, with Redis WAIT on the
// connection that stored the key, until at least n replicas have acknowledged
// it, for at most timeout (which must be positive: WAIT 0 would block for
// ever) and below the client's read timeout (the pipeline's reply waits for
// WAIT). A claim that fewer replicas acknowledged in time is refused with an
// error wrapping signing.ErrUnavailable: the key exists on the master, but a
// failover could lose it. n <= 0 turns waiting off. It returns s.
//
// WAIT narrows the window in which an acknowledged nonce can be lost; it does
// not close it (a replica that acknowledged may itself be lost, and Redis does
// not make WAIT a synchronous commit). The ledger's unique constraint remains
// the durable replay stop.
func (s *NonceStore) WaitForReplicas(n int, timeout time.Duration) *NonceStore {
	s.waitReplicas, s.waitTimeout = n, max(timeout, time.Millisecond)
	return s
}

// Key returns the Redis key that records nonce for merchant:
// <prefix>nonce:{<merchant>}:<nonce>.
func (s *NonceStore) Key(merchant, nonce string) string {
	return s.prefix + "nonce:{" + merchant + "}:" + nonce
}

// Claim records nonce for merchant for ttl (rounded up to whole milliseconds)
// with SET NX PX. It returns signing.ErrReplay if the key already exists, and an
// error wrapping signing.ErrUnavailable on any Redis or context error. It
// rejects an empty merchant or nonce, a merchant containing '{' or '}' (it would
// break the hash tag and could collide with another merchant's keys), and a
// non-positive ttl. With GuardEviction, it also fails closed while the
// server's eviction policy is not known to be safe.
func (s *NonceStore) Claim(ctx context.Context, merchant, nonce string, ttl time.Duration) error {
	if merchant == "" || nonce == "" || strings.ContainsAny(merchant, "{}") {
		return fmt.Errorf("redis nonce store: unusable merchant %q or nonce", merchant)
	}
	if ttl <= 0 {
		return fmt.Errorf("redis nonce store: ttl %v must be positive", ttl)
	}
	if s.guard != nil {
		if err := s.guard.allow(ctx, s); err != nil {
			return err
		}
	}
	ms := (ttl + time.Millisecond - 1).Milliseconds()
	key := s.Key(merchant, nonce)
	cmd := goredis.NewBoolCmd(ctx, "set", key, "1", "nx", "px", ms)
	if s.waitReplicas > 0 {
		return s.claimAndWait(ctx, key, cmd)
	}
	_ = s.c.Process(ctx, cmd)
	return s.result(ctx, cmd)
}

// claimAndWait sends SET and WAIT in one pipeline to the master that owns key,
// so WAIT counts the replicas that received this very SET. (A cluster client
// would route a keyless WAIT to every shard and aggregate the replies.)
func (s *NonceStore) claimAndWait(ctx context.Context, key string, set *goredis.BoolCmd) error {
	var node goredis.Cmdable = s.c
	if cc, ok := s.c.(*goredis.ClusterClient); ok {
		m, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return s.unavailable(ctx, err)
		}
		node = m
	}
	var wait *goredis.IntCmd
	_, _ = node.Pipelined(ctx, func(p goredis.Pipeliner) error {
		_ = p.Process(ctx, set)
		wait = goredis.NewIntCmd(ctx, "wait", s.waitReplicas, s.waitTimeout.Milliseconds())
		_ = p.Process(ctx, wait)
		return nil
	})
	if err := s.result(ctx, set); err != nil {
		return err
	}
	n, err := wait.Result()
	switch {
	case err != nil:
		return s.unavailable(ctx, err)
	case n < int64(s.waitReplicas):
		return fmt.Errorf("%w: redis: nonce acknowledged by %d of %d replicas", signing.ErrUnavailable, n, s.waitReplicas)
	}
	return nil
}

// result turns the reply to SET NX into the Claim contract.
func (s *NonceStore) result(ctx context.Context, cmd *goredis.BoolCmd) error {
	ok, err := cmd.Result()
	switch {
	case errors.Is(err, goredis.Nil):
		return signing.ErrReplay
	case err != nil:
		return s.unavailable(ctx, err)
	case !ok:
		return signing.ErrReplay
	}
	return nil
}

// unavailable wraps err as signing.ErrUnavailable. On a cluster it also asks
// the client to reload the slot map, so that claims reach a promoted replica
// as soon as the cluster has one instead of after the periodic refresh.
func (s *NonceStore) unavailable(ctx context.Context, err error) error {
	if cc, ok := s.c.(*goredis.ClusterClient); ok {
		cc.ReloadState(ctx)
	}
	return fmt.Errorf("%w: redis: %w", signing.ErrUnavailable, err)
}
