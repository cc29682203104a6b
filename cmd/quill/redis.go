package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"
)

// Redis modes for --redis-mode.
const (
	redisSingle   = "single"   // one server (or a proxy in front of one)
	redisSentinel = "sentinel" // --redis-addrs are Sentinels watching --redis-master
	redisCluster  = "cluster"  // --redis-addrs are seed nodes of a Redis Cluster
)

// bindRedis registers the Redis topology flags (the address and prefix flags
// are in bindServe).
func bindRedis(fs *pflag.FlagSet, c *config) {
	fs.StringVar(&c.RedisMode, "redis-mode", envString("QUILL_REDIS_MODE", redisSingle), "single, sentinel or cluster (env QUILL_REDIS_MODE)")
	fs.StringSliceVar(&c.RedisAddrs, "redis-addrs", envList("QUILL_REDIS_ADDRS"), "comma-separated Sentinel addresses or cluster seed nodes; default --redis-addr (env QUILL_REDIS_ADDRS)")
	fs.StringVar(&c.RedisMaster, "redis-master", envString("QUILL_REDIS_MASTER", ""), "master name the Sentinels watch, sentinel mode only (env QUILL_REDIS_MASTER)")
	fs.IntVar(&c.RedisWaitReplicas, "redis-wait-replicas", int(envInt("QUILL_REDIS_WAIT_REPLICAS", 0)), "refuse a nonce claim (503) unless this many replicas acknowledged it (Redis WAIT); 0 off (env QUILL_REDIS_WAIT_REPLICAS)")
	fs.DurationVar(&c.RedisWaitTimeout, "redis-wait-timeout", envDuration("QUILL_REDIS_WAIT_TIMEOUT", 100*time.Millisecond), "how long a claim waits for replica acknowledgement; below --redis-timeout (env QUILL_REDIS_WAIT_TIMEOUT)")
}

func envList(name string) []string {
	v := envString(name, "")
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// validateRedis rejects a Redis topology the server cannot use safely.
func (c *config) validateRedis() error {
	switch c.RedisMode {
	case "", redisSingle, redisCluster:
	case redisSentinel:
		if c.RedisMaster == "" {
			return fmt.Errorf("redis sentinel mode needs --redis-master")
		}
	default:
		return fmt.Errorf("redis mode %q: want single, sentinel or cluster", c.RedisMode)
	}
	if (c.RedisMode == "" || c.RedisMode == redisSingle) && len(c.RedisAddrs) > 1 {
		return fmt.Errorf("redis single mode takes one address, got %d", len(c.RedisAddrs))
	}
	if c.RedisWaitReplicas < 0 {
		return fmt.Errorf("redis wait replicas %d is negative", c.RedisWaitReplicas)
	}
	if c.RedisWaitReplicas > 0 && (c.RedisWaitTimeout <= 0 || c.RedisWaitTimeout >= c.RedisTimeout) {
		return fmt.Errorf("redis wait timeout %s must be positive and below the redis timeout %s", c.RedisWaitTimeout, c.RedisTimeout)
	}
	return nil
}

// newRedis returns the client for the configured topology. Every mode fails
// fast and never retries a command: a retried SET NX whose first reply was
// lost would report our own claim as a replay, so an uncertain claim is a 503
// instead. On a cluster that also means a MOVED reply is not followed within
// the request (the client reloads its slot map and the next request goes to
// the new owner); reads of the denylist go to masters only.
func newRedis(c config) redis.UniversalClient {
	addrs := c.RedisAddrs
	if len(addrs) == 0 {
		addrs = []string{c.RedisAddr}
	}
	o := &redis.UniversalOptions{
		Addrs:        addrs,
		MasterName:   c.RedisMaster,
		DialTimeout:  c.RedisTimeout,
		ReadTimeout:  c.RedisTimeout,
		WriteTimeout: c.RedisTimeout,
		PoolSize:     64,
		MaxRetries:   -1,
		MaxRedirects: -1,
	}
	switch c.RedisMode {
	case redisCluster:
		co := o.Cluster()
		// The adapters reload the slot map on every failed command; this is
		// the backstop for a node that changed role without failing one.
		co.ClusterStateReloadInterval = 5 * time.Second
		return redis.NewClusterClient(co)
	case redisSentinel:
		return redis.NewFailoverClient(o.Failover())
	default:
		return redis.NewClient(o.Simple())
	}
}
