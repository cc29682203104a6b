package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quillpay/quill/policy"
)

// Denylist implements policy.Denylist on Redis. It is safe for concurrent use.
type Denylist struct {
	c      redis.UniversalClient
	prefix string
}

// NewDenylist returns a denylist storing its keys in c under prefix (for
// example "quill:").
func NewDenylist(c redis.UniversalClient, prefix string) *Denylist {
	return &Denylist{c: c, prefix: prefix}
}

var _ policy.Denylist = (*Denylist)(nil)

func (d *Denylist) jtiKey(jti string) string { return d.prefix + "deny:jti:" + jti }
func (d *Denylist) subKey(sub string) string { return d.prefix + "deny:sub:" + sub }

// Denied reports whether the token id jti or the subject is denied, in one
// round trip. Errors wrap policy.ErrUnavailable.
func (d *Denylist) Denied(ctx context.Context, jti, subject string) (bool, error) {
	var byJTI, bySub *redis.IntCmd
	_, err := d.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		byJTI = p.Exists(ctx, d.jtiKey(jti))
		bySub = p.Exists(ctx, d.subKey(subject))
		return nil
	})
	if err != nil {
		return false, d.unavailable(ctx, err)
	}
	return byJTI.Val() > 0 || bySub.Val() > 0, nil
}

// DenyToken denies the token id jti for ttl (zero: until AllowToken). Give it
// at least the token's remaining lifetime. Errors wrap policy.ErrUnavailable.
func (d *Denylist) DenyToken(ctx context.Context, jti string, ttl time.Duration) error {
	return d.set(ctx, d.jtiKey(jti), jti, ttl)
}

// DenySubject denies every token of subject for ttl (zero: until
// AllowSubject). Errors wrap policy.ErrUnavailable.
func (d *Denylist) DenySubject(ctx context.Context, subject string, ttl time.Duration) error {
	return d.set(ctx, d.subKey(subject), subject, ttl)
}

// AllowToken removes a denial of the token id jti. Errors wrap
// policy.ErrUnavailable.
func (d *Denylist) AllowToken(ctx context.Context, jti string) error {
	return d.del(ctx, d.jtiKey(jti))
}

// AllowSubject removes a denial of subject. Errors wrap policy.ErrUnavailable.
func (d *Denylist) AllowSubject(ctx context.Context, subject string) error {
	return d.del(ctx, d.subKey(subject))
}

func (d *Denylist) set(ctx context.Context, key, id string, ttl time.Duration) error {
	if id == "" {
		return errors.New("policy/redis: empty id")
	}
	if ttl < 0 || (ttl > 0 && ttl < time.Millisecond) {
		return fmt.Errorf("policy/redis: ttl %v must be zero or at least 1ms", ttl)
	}
	if err := d.c.Set(ctx, key, "1", ttl).Err(); err != nil {
		return d.unavailable(ctx, err)
	}
	return nil
}

func (d *Denylist) del(ctx context.Context, key string) error {
	if err := d.c.Del(ctx, key).Err(); err != nil {
		return d.unavailable(ctx, err)
	}
	return nil
}

// unavailable wraps err as policy.ErrUnavailable. On a cluster it also asks
// the client to reload its slot map, so that checks reach a promoted replica
// as soon as there is one rather than at the next periodic refresh.
func (d *Denylist) unavailable(ctx context.Context, err error) error {
	if cc, ok := d.c.(*redis.ClusterClient); ok {
		cc.ReloadState(ctx)
	}
	return fmt.Errorf("%w: redis denylist: %w", policy.ErrUnavailable, err)
}
