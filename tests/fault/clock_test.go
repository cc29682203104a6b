package fault

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/fakeclock"
	"github.com/quillpay/quill/internal/sandbox"
	"github.com/quillpay/quill/signing"
	signingredis "github.com/quillpay/quill/signing/redis"
)

// oneKey is a key store holding one merchant key.
type oneKey struct{ pub crypto.PublicKey }

func (k oneKey) VerifyingKey(_ context.Context, merchant, id string, _ time.Time) (crypto.PublicKey, error) {
	if merchant != "M1" || id != "K1" {
		return nil, signing.ErrUnknownKey
	}
	return k.pub, nil
}

// clockRig is scheme A's verifier on an injected clock with the Redis nonce
// store on a private redis-server, as the server wires them.
type clockRig struct {
	key    *rsa.PrivateKey
	clock  *fakeclock.Clock
	v      *signing.Verifier
	nonces *signingredis.NonceStore
	redis  *sandbox.Redis
}

const window = 300 * time.Second

func newClockRig(t *testing.T) *clockRig {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rd := sandbox.StartRedis(t)
	r := &clockRig{key: key, redis: rd, clock: fakeclock.New(time.Unix(1_800_000_000, 0)),
		nonces: signingredis.NewNonceStore(rd.Client(t), "skew:").GuardEviction(5 * time.Second)}
	r.v = &signing.Verifier{Keys: oneKey{&key.PublicKey}, Nonces: r.nonces, Window: window, Now: r.clock.Now}
	return r
}

// request is a GET signed at ts with nonce.
func (r *clockRig) request(t *testing.T, ts time.Time, nonce string) signing.Request {
	t.Helper()
	auth, err := signing.SignRequest(r.key, "M1", "K1", "GET", "/v1/certificates", nil, ts, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return signing.Request{Method: "GET", Target: "/v1/certificates", Authorization: auth, Merchant: "M1"}
}

// pttl is how long Redis keeps nonce.
func (r *clockRig) pttl(t *testing.T, nonce string) time.Duration {
	t.Helper()
	d, err := r.redis.Client(t).PTTL(context.Background(), r.nonces.Key("M1", nonce)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestClockSkew: request timestamps around both edges of the ±300 s window,
// with the server clock (injected) on a whole second and just before the
// next: the window is inclusive and measured in whole seconds of the
// server's clock.
func TestClockSkew(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	r := newClockRig(t)
	base := r.clock.Now()
	n := 0
	for _, frac := range []time.Duration{0, 999 * time.Millisecond} {
		for _, tc := range []struct {
			skew  int64 // request timestamp − the server's whole second
			fresh bool
		}{
			{-301, false}, {-300, true}, {-299, true}, {-1, true}, {0, true},
			{1, true}, {299, true}, {300, true}, {301, false}, {86400, false}, {-86400, false},
		} {
			t.Run(fmt.Sprintf("clock+%s/skew%+d", frac, tc.skew), func(t *testing.T) {
				r.clock.Set(base.Add(frac))
				n++
				_, err := r.v.Verify(context.Background(), r.request(t, base.Add(time.Duration(tc.skew)*time.Second), fmt.Sprint("N", n)))
				if got := err == nil; got != tc.fresh {
					t.Fatalf("timestamp %+d s from the clock %s: err %v, want fresh %v", tc.skew, r.clock.Now().Format(time.RFC3339Nano), err, tc.fresh)
				}
				if !tc.fresh && !errors.Is(err, signing.ErrStale) {
					t.Fatalf("refused with %v, want ErrStale", err)
				}
			})
		}
	}
	t.Logf("clock skew: %d timestamps around both edges of the ±%s window, the clock on a whole second and .999 past it: accepted exactly within ±300 s (load %s)", n, window, load())
}

// TestClockJumpsBack: the server clock jumps back (an NTP step) after a
// request was accepted. The nonce is kept for its whole TTL regardless —
// Redis counts the TTL (SET PX), not Quill's clock — so the request, fresh
// again on the jumped clock, is still a replay; and a nonce claimed after
// the jump is kept for the full 2W+1 s too.
func TestClockJumpsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	r := newClockRig(t)
	ctx := context.Background()
	full := 2*window + time.Second
	// Generous: the test's own run time comes off a PTTL.
	kept := func(nonce string) {
		t.Helper()
		if d := r.pttl(t, nonce); d <= full-time.Minute || d > full {
			t.Fatalf("nonce %s kept %s more, want the full %s (less the test's own run time)", nonce, d, full)
		}
	}
	t0 := r.clock.Now()
	a := r.request(t, t0, "A")
	if _, err := r.v.Verify(ctx, a); err != nil {
		t.Fatal(err)
	}
	kept("A")
	for _, jump := range []time.Duration{-250 * time.Second, -24 * time.Hour} {
		r.clock.Set(t0.Add(jump))
		if jump > -window {
			if _, err := r.v.Verify(ctx, a); !errors.Is(err, signing.ErrReplay) {
				t.Fatalf("request replayed after the clock jumped %s: %v, want ErrReplay", jump, err)
			}
		}
		kept("A")
		nonce := fmt.Sprint("after", int64(-jump/time.Second))
		if _, err := r.v.Verify(ctx, r.request(t, r.clock.Now(), nonce)); err != nil {
			t.Fatalf("fresh request after the clock jumped %s: %v", jump, err)
		}
		kept(nonce)
	}
	r.clock.Set(t0)
	if _, err := r.v.Verify(ctx, a); !errors.Is(err, signing.ErrReplay) {
		t.Fatalf("request replayed once the clock is back: %v, want ErrReplay", err)
	}
	t.Logf("clock jumps back 250 s and 24 h: nonces kept the full %s (Redis TTL), the replay refused before and after (load %s)", full, load())
}
