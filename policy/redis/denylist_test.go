package redis

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/policy"
)

// newDenylist returns a denylist on the test Redis under a fresh prefix.
func newDenylist(tb testing.TB) (*Denylist, *redis.Client, string) {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(tb)})
	tb.Cleanup(func() { c.Close() })
	prefix := "quilltest:" + testenv.Random(6) + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return NewDenylist(c, prefix), c, prefix
}

func TestDenylist(t *testing.T) {
	ctx := context.Background()
	d, c, prefix := newDenylist(t)

	if err := d.DenyToken(ctx, "jti-bad", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := d.DenySubject(ctx, "user-bad", 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, jti, sub string
		want           bool
	}{
		{"clean", "jti-ok", "user-ok", false},
		{"denied jti", "jti-bad", "user-ok", true},
		{"denied subject", "jti-ok", "user-bad", true},
		{"both", "jti-bad", "user-bad", true},
		{"jti is not a subject", "user-bad", "jti-bad", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Denied(ctx, tt.jti, tt.sub)
			if err != nil || got != tt.want {
				t.Fatalf("Denied(%q, %q) = %v, %v; want %v", tt.jti, tt.sub, got, err, tt.want)
			}
		})
	}

	if ttl := c.TTL(ctx, prefix+"deny:jti:jti-bad").Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("jti key TTL = %v; want within (0, 1h]", ttl)
	}
	if ttl := c.TTL(ctx, prefix+"deny:sub:user-bad").Val(); ttl != -1 {
		t.Fatalf("subject key TTL = %v; want none (-1)", ttl)
	}

	if err := d.AllowSubject(ctx, "user-bad"); err != nil {
		t.Fatal(err)
	}
	if err := d.AllowToken(ctx, "jti-bad"); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Denied(ctx, "jti-bad", "user-bad"); err != nil || got {
		t.Fatalf("after Allow: Denied = %v, %v; want false", got, err)
	}
	for _, ttl := range []time.Duration{-time.Second, time.Microsecond} {
		if err := d.DenyToken(ctx, "x", ttl); err == nil {
			t.Fatalf("DenyToken accepted ttl %v", ttl)
		}
	}
	if err := d.DenySubject(ctx, "", time.Hour); err == nil {
		t.Fatal("DenySubject accepted an empty subject")
	}
}

func TestDenylistExpiry(t *testing.T) {
	ctx := context.Background()
	d, c, prefix := newDenylist(t)
	if err := d.DenyToken(ctx, "short", time.Hour); err != nil {
		t.Fatal(err)
	}
	// Expire the key server-side instead of sleeping.
	if err := c.PExpire(ctx, prefix+"deny:jti:short", time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		got, err := d.Denied(ctx, "short", "someone")
		if err != nil {
			t.Fatal(err)
		}
		if !got {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("denial did not expire with its TTL")
		}
	}
}

func TestDenylistUnavailable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	d := NewDenylist(c, "quilltest:")
	ctx := context.Background()
	if denied, err := d.Denied(ctx, "jti", "sub"); !errors.Is(err, policy.ErrUnavailable) || denied {
		t.Fatalf("Denied = %v, %v; want false, ErrUnavailable", denied, err)
	}
	if err := d.DenyToken(ctx, "jti", time.Minute); !errors.Is(err, policy.ErrUnavailable) {
		t.Fatalf("DenyToken error = %v; want ErrUnavailable", err)
	}
	if err := d.DenySubject(ctx, "sub", time.Minute); !errors.Is(err, policy.ErrUnavailable) {
		t.Fatalf("DenySubject error = %v; want ErrUnavailable", err)
	}

	// A cancelled context is also "cannot answer", never "not denied".
	live, _, _ := newDenylist(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if denied, err := live.Denied(cctx, "jti", "sub"); !errors.Is(err, policy.ErrUnavailable) || denied {
		t.Fatalf("cancelled: Denied = %v, %v; want false, ErrUnavailable", denied, err)
	}
}

// TestTokenVerifierWithRedis wires policy.TokenVerifier to the real denylist.
func TestTokenVerifierWithRedis(t *testing.T) {
	ctx := context.Background()
	d, _, _ := newDenylist(t)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	v := &policy.TokenVerifier{
		Keys: staticKey{pub}, Denylist: d, Issuer: "login", Audience: "quill", Algorithm: "EdDSA",
		Now: func() time.Time { return now },
	}
	tok, err := policy.IssuePayerToken(priv, "EdDSA", "k1", "login", "quill", "user42", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.VerifyPayer(ctx, tok)
	if err != nil || p.Subject != "user42" {
		t.Fatalf("VerifyPayer = %+v, %v", p, err)
	}
	if err := d.DenyToken(ctx, p.TokenID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyPayer(ctx, tok); !errors.Is(err, policy.ErrPayerToken) {
		t.Fatalf("after DenyToken: error = %v; want ErrPayerToken", err)
	}
	tok2, err := policy.IssuePayerToken(priv, "EdDSA", "k1", "login", "quill", "user42", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyPayer(ctx, tok2); err != nil {
		t.Fatalf("another token of the subject: %v", err)
	}
	if err := d.DenySubject(ctx, "user42", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyPayer(ctx, tok2); !errors.Is(err, policy.ErrPayerToken) {
		t.Fatalf("after DenySubject: error = %v; want ErrPayerToken", err)
	}
}

type staticKey struct{ pub ed25519.PublicKey }

func (k staticKey) TokenKey(_ context.Context, kid string) (crypto.PublicKey, error) {
	if kid != "k1" {
		return nil, errors.New("unknown key")
	}
	return k.pub, nil
}
