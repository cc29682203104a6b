package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/cluster"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/policy"
)

// TestDenylistOnCluster checks the denylist on a real six-node Redis Cluster
// with the token-id and subject keys on different masters (the pipeline is
// split per node), and that it fails closed while one of those masters is
// down and answers again once its replica took over.
func TestDenylistOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	rc := cluster.StartRedisCluster(t, cluster.RedisOptions{})
	c := rc.Client(t)
	ctx := context.Background()
	d := NewDenylist(c, "quilltest:"+testenv.Random(4)+":")

	master := func(key string) string {
		t.Helper()
		slot, err := c.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		m, err := rc.MasterOf(int(slot))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// A token id and a subject whose keys live on different masters.
	jti, sub := "jti-0", ""
	for i := range 1000 {
		s := fmt.Sprintf("sub-%d", i)
		if master(d.subKey(s)) != master(d.jtiKey(jti)) {
			sub = s
			break
		}
	}
	if sub == "" {
		t.Fatal("no subject on another master")
	}
	tests := []struct {
		name     string
		jti, sub string
		deny     func() error
		want     bool
	}{
		{"nothing denied", jti, sub, func() error { return nil }, false},
		{"token id denied", jti, sub, func() error { return d.DenyToken(ctx, jti, time.Hour) }, true},
		{"subject denied too", jti, sub, func() error { return d.DenySubject(ctx, sub, time.Hour) }, true},
		{"token allowed, subject still denied", jti, sub, func() error { return d.AllowToken(ctx, jti) }, true},
		{"both allowed", jti, sub, func() error { return d.AllowSubject(ctx, sub) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.deny(); err != nil {
				t.Fatal(err)
			}
			got, err := d.Denied(ctx, tt.jti, tt.sub)
			if err != nil || got != tt.want {
				t.Fatalf("Denied = %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	if err := d.DenySubject(ctx, sub, time.Hour); err != nil {
		t.Fatal(err)
	}
	victim := master(d.subKey(sub))
	if err := rc.WaitReplicated(victim, time.Minute); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	rc.Kill(victim)
	// Until the replica is promoted, a check touching the dead master is
	// never "not denied".
	sawDown := false
	err := cluster.Eventually(2*time.Minute, 50*time.Millisecond, func() error {
		denied, err := d.Denied(ctx, jti, sub)
		switch {
		case errors.Is(err, policy.ErrUnavailable):
			sawDown = true
			return err
		case err != nil:
			t.Fatalf("Denied: %v, want an error wrapping policy.ErrUnavailable", err)
		case !denied:
			t.Fatal("Denied = false for a denied subject during a failover")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("master killed; denylist answered again after %s (refusals seen: %v)", time.Since(killed).Round(time.Millisecond), sawDown)
	// The denial was replicated before the kill (WaitReplicated), so it
	// survived. One written just before a failover could be lost: see
	// SECURITY.md, "Lost nonces" (the same holds for revocations).
}
