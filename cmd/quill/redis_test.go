package main

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestValidateRedis(t *testing.T) {
	base := config{RedisTimeout: 250 * time.Millisecond, RedisWaitTimeout: 100 * time.Millisecond}
	tests := []struct {
		name string
		edit func(*config)
		ok   bool
	}{
		{"default single", func(c *config) {}, true},
		{"explicit single", func(c *config) { c.RedisMode = "single" }, true},
		{"single with two addresses", func(c *config) { c.RedisMode = "single"; c.RedisAddrs = []string{"a:1", "b:2"} }, false},
		{"cluster seeds", func(c *config) { c.RedisMode = "cluster"; c.RedisAddrs = []string{"a:1", "b:2", "c:3"} }, true},
		{"sentinel without master", func(c *config) { c.RedisMode = "sentinel"; c.RedisAddrs = []string{"a:26379"} }, false},
		{"sentinel", func(c *config) { c.RedisMode = "sentinel"; c.RedisMaster = "quill"; c.RedisAddrs = []string{"a:26379"} }, true},
		{"unknown mode", func(c *config) { c.RedisMode = "ring" }, false},
		{"negative wait", func(c *config) { c.RedisWaitReplicas = -1 }, false},
		{"wait 1", func(c *config) { c.RedisWaitReplicas = 1 }, true},
		{"wait longer than the command timeout", func(c *config) { c.RedisWaitReplicas = 1; c.RedisWaitTimeout = time.Second }, false},
		{"wait without timeout", func(c *config) { c.RedisWaitReplicas = 1; c.RedisWaitTimeout = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.edit(&c)
			if err := c.validateRedis(); (err == nil) != tt.ok {
				t.Errorf("validateRedis() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestNewRedisMode(t *testing.T) {
	c := config{RedisAddr: "127.0.0.1:1", RedisTimeout: time.Second}
	for _, tt := range []struct {
		mode  string
		check func(redis.UniversalClient) bool
	}{
		{"", func(r redis.UniversalClient) bool { _, ok := r.(*redis.Client); return ok }},
		{"single", func(r redis.UniversalClient) bool { _, ok := r.(*redis.Client); return ok }},
		{"cluster", func(r redis.UniversalClient) bool { _, ok := r.(*redis.ClusterClient); return ok }},
		{"sentinel", func(r redis.UniversalClient) bool { _, ok := r.(*redis.Client); return ok }},
	} {
		c.RedisMode, c.RedisMaster = tt.mode, "quill"
		r := newRedis(c)
		if !tt.check(r) {
			t.Errorf("mode %q: client %T", tt.mode, r)
		}
		r.Close()
	}
}
