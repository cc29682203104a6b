package redis_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/signing"
	"github.com/quillpay/quill/signing/redis"
)

// newStore returns a store on the test Redis with a random prefix, and its client.
func newStore(tb testing.TB) (*redis.NonceStore, *goredis.Client) {
	tb.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: testenv.RedisAddr(tb)})
	tb.Cleanup(func() { c.Close() })
	return redis.NewNonceStore(c, "test:"+testenv.Random(8)+":"), c
}

func TestClaim(t *testing.T) {
	s, c := newStore(t)
	ctx := context.Background()
	const ttl = 601 * time.Second

	if err := s.Claim(ctx, "1900000001", "N1", ttl); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := s.Claim(ctx, "1900000001", "N1", ttl); !errors.Is(err, signing.ErrReplay) {
		t.Fatalf("second claim: %v, want ErrReplay", err)
	}
	if err := s.Claim(ctx, "1900000002", "N1", ttl); err != nil {
		t.Fatalf("same nonce, other merchant: %v", err)
	}
	if err := s.Claim(ctx, "1900000001", "N2", ttl); err != nil {
		t.Fatalf("other nonce, same merchant: %v", err)
	}

	key := s.Key("1900000001", "N1")
	pttl, err := c.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= 0 || pttl > ttl {
		t.Errorf("PTTL(%s) = %v, want in (0, %v]", key, pttl, ttl)
	}
}

func TestClaimSubSecondTTL(t *testing.T) {
	s, c := newStore(t)
	ctx := context.Background()
	if err := s.Claim(ctx, "M1", "N1", 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	pttl, err := c.PTTL(ctx, s.Key("M1", "N1")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= time.Second || pttl > 1500*time.Millisecond {
		t.Errorf("PTTL = %v, want in (1s, 1.5s]", pttl)
	}
}

func TestKeyLayout(t *testing.T) {
	s := redis.NewNonceStore(nil, "quill:")
	// The merchant is the Redis Cluster hash tag.
	if got, want := s.Key("1900000001", "593BEC0C"), "quill:nonce:{1900000001}:593BEC0C"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
}

func TestClaimRejectsBadInput(t *testing.T) {
	s, _ := newStore(t)
	tests := []struct {
		name, merchant, nonce string
		ttl                   time.Duration
	}{
		{"empty merchant", "", "N", time.Minute},
		{"empty nonce", "M", "", time.Minute},
		{"brace in merchant", "M}:x", "N", time.Minute},
		{"zero ttl", "M", "N", 0},
		{"negative ttl", "M", "N", -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Claim(context.Background(), tt.merchant, tt.nonce, tt.ttl)
			if err == nil || errors.Is(err, signing.ErrReplay) {
				t.Errorf("Claim: %v, want an input error", err)
			}
		})
	}
}

func TestClaimUnavailable(t *testing.T) {
	closed := func(tb testing.TB) string {
		tb.Helper()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	// silent accepts connections and never answers: the uncertain case.
	silent := func(tb testing.TB) string {
		tb.Helper()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		var conns []net.Conn
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				conns = append(conns, c)
			}
		}()
		tb.Cleanup(func() {
			l.Close()
			<-done
			for _, c := range conns {
				c.Close()
			}
		})
		return l.Addr().String()
	}
	tests := []struct {
		name string
		addr func(testing.TB) string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"closed port", closed, nil},
		{"server never answers", silent, nil},
		{"context deadline passed", func(tb testing.TB) string { return testenv.RedisAddr(tb) },
			func() (context.Context, context.CancelFunc) {
				return context.WithDeadline(context.Background(), time.Unix(1, 0))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := goredis.NewClient(&goredis.Options{
				Addr:         tt.addr(t),
				DialTimeout:  200 * time.Millisecond,
				ReadTimeout:  200 * time.Millisecond,
				WriteTimeout: 200 * time.Millisecond,
				MaxRetries:   -1,
			})
			defer c.Close()
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			err := redis.NewNonceStore(c, "test:"+testenv.Random(8)+":").Claim(ctx, "M1", "N1", time.Minute)
			if !errors.Is(err, signing.ErrUnavailable) {
				t.Fatalf("Claim: %v, want ErrUnavailable", err)
			}
			if errors.Is(err, signing.ErrReplay) || errors.Is(err, signing.ErrUnauthorized) {
				t.Errorf("Claim: %v must be neither a replay nor a 401", err)
			}
		})
	}
}

// TestClaimConcurrent checks that of many simultaneous claims of one nonce
// exactly one wins.
func TestClaimConcurrent(t *testing.T) {
	s, _ := newStore(t)
	const n = 50
	errs := make(chan error, n)
	for range n {
		go func() { errs <- s.Claim(context.Background(), "M1", "N-race", time.Minute) }()
	}
	won := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			won++
		case !errors.Is(err, signing.ErrReplay):
			t.Errorf("Claim: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d claims won, want exactly 1", won)
	}
}
