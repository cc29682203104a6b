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

// RedisSentinel is a Redis master with one replica, watched by three
// Sentinels (quorum 2) under the master name MasterName.
type RedisSentinel struct {
	MasterName string
	Sentinels  []string // host:port
	Servers    []string // master first at start, then the replica
	procs      map[string]*Proc
}

// StartRedisSentinel starts the master, its replica and three Sentinels
// (down-after-milliseconds 1000, failover-timeout 5000) and waits until the
// Sentinels know the replica.
func StartRedisSentinel(tb testing.TB) *RedisSentinel {
	tb.Helper()
	Need(tb, "redis-server", "redis-server")
	dir := tb.TempDir()
	ports := FreePorts(tb, 5, false)
	rs := &RedisSentinel{MasterName: "quill", procs: map[string]*Proc{}}
	for i, port := range ports[:2] {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		nd := filepath.Join(dir, strconv.Itoa(port))
		if err := os.Mkdir(nd, 0o700); err != nil {
			tb.Fatal(err)
		}
		args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", nd,
			"--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"}
		if i == 1 {
			args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(ports[0]))
		}
		rs.procs[addr] = Start(tb, dir, "redis-"+strconv.Itoa(port), nil, "redis-server", args...)
		rs.Servers = append(rs.Servers, addr)
	}
	for _, port := range ports[2:] {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		conf := filepath.Join(dir, "sentinel-"+strconv.Itoa(port)+".conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n",
			port, dir, rs.MasterName, ports[0], rs.MasterName, rs.MasterName, rs.MasterName)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			tb.Fatal(err)
		}
		rs.procs[addr] = Start(tb, dir, "sentinel-"+strconv.Itoa(port), nil, "redis-server", conf, "--sentinel")
		rs.Sentinels = append(rs.Sentinels, addr)
	}
	for _, s := range rs.Sentinels {
		err := Eventually(time.Minute, 100*time.Millisecond, func() error {
			c := redis.NewSentinelClient(&redis.Options{Addr: s, MaxRetries: -1})
			defer c.Close()
			reps, err := c.Replicas(context.Background(), rs.MasterName).Result()
			if err != nil {
				return err
			}
			if len(reps) == 0 || !strings.Contains(fmt.Sprint(reps), "slave") {
				return fmt.Errorf("sentinel %s sees no replica yet: %w", s, errNotYet)
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return rs
}

// Master asks a live Sentinel for the current master's address.
func (rs *RedisSentinel) Master() (string, error) {
	for _, s := range rs.Sentinels {
		if rs.procs[s].Exited() {
			continue
		}
		c := redis.NewSentinelClient(&redis.Options{Addr: s, MaxRetries: -1})
		hp, err := c.GetMasterAddrByName(context.Background(), rs.MasterName).Result()
		c.Close()
		if err == nil && len(hp) == 2 {
			return hp[0] + ":" + hp[1], nil
		}
	}
	return "", fmt.Errorf("no sentinel answered")
}

// Kill SIGKILLs the server at addr.
func (rs *RedisSentinel) Kill(addr string) { rs.procs[addr].Kill() }

// Client returns a Sentinel-backed client configured like Quill's.
func (rs *RedisSentinel) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    rs.MasterName,
		SentinelAddrs: rs.Sentinels,
		DialTimeout:   time.Second,
		ReadTimeout:   3 * time.Second,
		WriteTimeout:  time.Second,
		MaxRetries:    -1,
	})
	tb.Cleanup(func() { c.Close() })
	return c
}
