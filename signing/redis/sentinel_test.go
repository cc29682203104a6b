package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/cluster"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/signing"
	"github.com/quillpay/quill/signing/redis"
)

// TestSentinelFailover claims nonces through a real Sentinel set: WAIT 1
// works on the master, claims fail closed while the master is gone, and
// succeed again on the promoted replica with the same client; a nonce
// acknowledged by the replica before the kill is still a replay after it.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis with Sentinels")
	}
	rs := cluster.StartRedisSentinel(t)
	c := rs.Client(t)
	prefix := "test:" + testenv.Random(4) + ":"
	store := redis.NewNonceStore(c, prefix)
	waited := redis.NewNonceStore(c, prefix).WaitForReplicas(1, 2*time.Second)
	ctx := context.Background()
	// WAIT counts a replica only once it is online: it may still be syncing.
	if err := cluster.Eventually(30*time.Second, 50*time.Millisecond, func() error {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && !strings.Contains(info, "state=online") {
			err = errors.New("replica not online yet")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	if err := waited.Claim(ctx, "M1", "before-kill", time.Minute); err != nil {
		t.Fatalf("WAIT claim: %v", err)
	}
	old, err := rs.Master()
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	rs.Kill(old)

	refused, i := 0, 0
	err = cluster.Eventually(2*time.Minute, 50*time.Millisecond, func() error {
		i++
		err := store.Claim(ctx, "M1", fmt.Sprintf("n%d", i), time.Minute)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, signing.ErrUnavailable):
			refused++
			return err
		default:
			t.Fatalf("claim during failover: %v, want nil or ErrUnavailable", err)
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// The client may follow the new master before the sentinel asked here
	// has heard of it: sentinels converge, so wait for this one too.
	var now string
	err = cluster.Eventually(30*time.Second, 50*time.Millisecond, func() error {
		m, err := rs.Master()
		if err == nil && m == old {
			err = fmt.Errorf("sentinel still names %s", old)
		}
		now = m
		return err
	})
	if err != nil {
		t.Fatalf("master after failover: %s (%v), was %s", now, err, old)
	}
	if refused == 0 {
		t.Error("no claim was refused while the master was down")
	}
	if err := store.Claim(ctx, "M1", "before-kill", time.Minute); !errors.Is(err, signing.ErrReplay) {
		t.Errorf("nonce acknowledged with WAIT before the failover: %v, want ErrReplay", err)
	}
	t.Logf("master %s killed; claims refused with 503 %d times, served by %s after %s", old, refused, now, time.Since(killed).Round(time.Millisecond))
}
