package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a running Redis Cluster of three masters, each with one
// replica, on loopback.
type RedisCluster struct {
	Addrs []string // every node, host:port
	procs map[string]*Proc
	dir   string
}

// RedisOptions tunes StartRedisCluster. The zero value is usable.
type RedisOptions struct {
	// NodeTimeout is cluster-node-timeout: how long a master may be silent
	// before its replica is promoted. Default 1500ms.
	NodeTimeout time.Duration
}

// StartRedisCluster starts six redis-server processes with
// --cluster-enabled yes, creates the cluster with redis-cli --cluster create
// --cluster-replicas 1 and waits until every node reports cluster_state:ok.
// cluster-require-full-coverage is off, so while one master is down the
// slots of the others keep serving.
func StartRedisCluster(tb testing.TB, o RedisOptions) *RedisCluster {
	tb.Helper()
	Need(tb, "redis-server redis-tools", "redis-server", "redis-cli")
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = 1500 * time.Millisecond
	}
	dir := tb.TempDir()
	rc := &RedisCluster{procs: map[string]*Proc{}, dir: dir}
	for _, port := range FreePorts(tb, 6, true) {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		nd := filepath.Join(dir, strconv.Itoa(port))
		if err := os.Mkdir(nd, 0o700); err != nil {
			tb.Fatal(err)
		}
		rc.procs[addr] = Start(tb, dir, "redis-"+strconv.Itoa(port), nil, "redis-server",
			"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", nd,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
			"--cluster-require-full-coverage", "no",
			"--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction")
		rc.Addrs = append(rc.Addrs, addr)
	}
	for _, a := range rc.Addrs {
		if err := Eventually(30*time.Second, 50*time.Millisecond, func() error { return ping(a) }); err != nil {
			tb.Fatalf("redis %s: %v", a, err)
		}
	}
	args := append([]string{"--cluster", "create"}, rc.Addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := Run(2*time.Minute, nil, "redis-cli", args...); err != nil {
		tb.Fatalf("redis cluster create: %v\n%s", err, out)
	}
	if err := rc.WaitHealthy(2 * time.Minute); err != nil {
		tb.Fatal(err)
	}
	// Replicas must have finished their first sync, or WAIT counts none.
	for _, a := range rc.Addrs {
		err := Eventually(2*time.Minute, 100*time.Millisecond, func() error {
			c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
			defer c.Close()
			s, err := c.Info(context.Background(), "replication").Result()
			if err != nil {
				return err
			}
			if strings.Contains(s, "role:slave") && !strings.Contains(s, "master_link_status:up") {
				return fmt.Errorf("replica %s not in sync: %w", a, errNotYet)
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return rc
}

func ping(addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// info returns CLUSTER INFO of one node as a map.
func info(addr string) (map[string]string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// WaitHealthy waits until every live node reports cluster_state:ok with all
// 16384 slots served by a live master.
func (rc *RedisCluster) WaitHealthy(timeout time.Duration) error {
	return Eventually(timeout, 100*time.Millisecond, func() error {
		for _, a := range rc.Live() {
			m, err := info(a)
			if err != nil {
				return err
			}
			if m["cluster_state"] != "ok" || m["cluster_slots_ok"] != "16384" {
				return fmt.Errorf("%s: state %s, slots ok %s: %w", a, m["cluster_state"], m["cluster_slots_ok"], errNotYet)
			}
		}
		return nil
	})
}

// Live returns the addresses of the nodes not killed.
func (rc *RedisCluster) Live() []string {
	var out []string
	for _, a := range rc.Addrs {
		if !rc.procs[a].Exited() {
			out = append(out, a)
		}
	}
	return out
}

// Node is one line of CLUSTER NODES.
type Node struct {
	ID, Addr string
	Master   bool
	Failed   bool
	Slots    [][2]int // inclusive ranges
}

// Nodes returns the cluster's view of its nodes, asked of a live node.
func (rc *RedisCluster) Nodes() ([]Node, error) {
	live := rc.Live()
	if len(live) == 0 {
		return nil, fmt.Errorf("no live node")
	}
	c := redis.NewClient(&redis.Options{Addr: live[0], MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	var out []Node
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		n := Node{ID: f[0], Addr: addr, Master: strings.Contains(f[2], "master"), Failed: strings.Contains(f[2], "fail")}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot in migration
			}
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, _ := strconv.Atoi(lo)
			b, _ := strconv.Atoi(hi)
			n.Slots = append(n.Slots, [2]int{a, b})
		}
		out = append(out, n)
	}
	return out, nil
}

// MasterOf returns the address of the live master serving slot.
func (rc *RedisCluster) MasterOf(slot int) (string, error) {
	nodes, err := rc.Nodes()
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		if !n.Master || n.Failed {
			continue
		}
		for _, r := range n.Slots {
			if slot >= r[0] && slot <= r[1] {
				return n.Addr, nil
			}
		}
	}
	return "", fmt.Errorf("slot %d has no live master: %w", slot, errNotYet)
}

// WaitFailover waits until the cluster no longer counts the node at addr
// as the master of any slot and every slot is served again.
func (rc *RedisCluster) WaitFailover(addr string, timeout time.Duration) error {
	err := Eventually(timeout, 100*time.Millisecond, func() error {
		nodes, err := rc.Nodes()
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.Addr == addr && n.Master && len(n.Slots) > 0 {
				return fmt.Errorf("%s still owns %d slot ranges: %w", addr, len(n.Slots), errNotYet)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return rc.WaitHealthy(timeout)
}

// WaitReplicated waits until every replica of the master at addr has
// acknowledged the master's whole replication stream, so a write made before
// the call survives the master's failover.
func (rc *RedisCluster) WaitReplicated(addr string, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	return Eventually(timeout, 50*time.Millisecond, func() error {
		s, err := c.Info(context.Background(), "replication").Result()
		if err != nil {
			return err
		}
		var master int64 = -1
		replicas := 0
		for _, line := range strings.Split(s, "\n") {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
				master, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		for _, line := range strings.Split(s, "\n") {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "slave") || !strings.Contains(line, "offset=") {
				continue
			}
			replicas++
			for _, f := range strings.Split(line, ",") {
				if v, ok := strings.CutPrefix(f, "offset="); ok {
					if off, _ := strconv.ParseInt(v, 10, 64); off < master {
						return fmt.Errorf("replica at offset %d of %d: %w", off, master, errNotYet)
					}
				}
			}
		}
		if replicas == 0 {
			return fmt.Errorf("%s has no replica: %w", addr, errNotYet)
		}
		return nil
	})
}

// Kill SIGKILLs the node at addr.
func (rc *RedisCluster) Kill(addr string) { rc.procs[addr].Kill() }

// Client returns a cluster client seeded with every node, configured like
// Quill's (no retries, no redirects within a command, short timeouts).
func (rc *RedisCluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:        rc.Addrs,
		DialTimeout:  time.Second,
		ReadTimeout:  3 * time.Second, // above any WAIT timeout a test uses
		WriteTimeout: time.Second,
		MaxRetries:   -1,
		MaxRedirects: -1,

		ClusterStateReloadInterval: 5 * time.Second,
	})
	tb.Cleanup(func() { c.Close() })
	return c
}
