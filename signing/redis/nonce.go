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
}

var _ signing.NonceStore = (*NonceStore)(nil)

// NewNonceStore returns a NonceStore using c, with every key starting with
// prefix (e.g. "quill:"). c may be a single-node, sentinel or cluster client.
func NewNonceStore(c goredis.UniversalClient, prefix string) *NonceStore {
	return &NonceStore{c: c, prefix: prefix}
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
// non-positive ttl.
func (s *NonceStore) Claim(ctx context.Context, merchant, nonce string, ttl time.Duration) error {
	if merchant == "" || nonce == "" || strings.ContainsAny(merchant, "{}") {
		return fmt.Errorf("redis nonce store: unusable merchant %q or nonce", merchant)
	}
	if ttl <= 0 {
		return fmt.Errorf("redis nonce store: ttl %v must be positive", ttl)
	}
	ms := (ttl + time.Millisecond - 1).Milliseconds()
	cmd := goredis.NewBoolCmd(ctx, "set", s.Key(merchant, nonce), "1", "nx", "px", ms)
	_ = s.c.Process(ctx, cmd)
	ok, err := cmd.Result()
	switch {
	case errors.Is(err, goredis.Nil):
		return signing.ErrReplay
	case err != nil:
		return fmt.Errorf("%w: redis: %w", signing.ErrUnavailable, err)
	case !ok:
		return signing.ErrReplay
	}
	return nil
}
