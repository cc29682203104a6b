package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quillpay/quill/internal/cluster"
)

// Redis is a private redis-server without persistence: a restart comes back
// empty, as a crashed cache node without AOF would.
type Redis struct {
	Addr string

	port  int
	dir   string
	extra []string
	proc  *cluster.Proc
}

// NewRedis reserves a port and a directory for a redis-server started with
// extra arguments (e.g. "--maxmemory", "2mb") but does not start it: a test
// can start Quill against a Redis that is not there yet. The test's cleanup
// kills it.
func NewRedis(tb testing.TB, extra ...string) *Redis {
	tb.Helper()
	cluster.Need(tb, "redis-server", "redis-server")
	r := &Redis{port: cluster.FreePorts(tb, 1, false)[0], dir: tb.TempDir(), extra: extra}
	r.Addr = "127.0.0.1:" + strconv.Itoa(r.port)
	tb.Cleanup(r.Kill)
	return r
}

// StartRedis is NewRedis and Start.
func StartRedis(tb testing.TB, extra ...string) *Redis {
	tb.Helper()
	r := NewRedis(tb, extra...)
	r.Start(tb)
	return r
}

// Start starts (or restarts, after Kill) the server, empty, and waits until it
// answers PING.
func (r *Redis) Start(tb testing.TB) {
	tb.Helper()
	args := append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--save", "", "--appendonly", "no"}, r.extra...)
	r.proc = cluster.Start(tb, r.dir, "redis", nil, "redis-server", args...)
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	err := poll(time.Minute, 20*time.Millisecond, func() error {
		if r.proc.Exited() {
			b, _ := os.ReadFile(r.proc.Log)
			return fmt.Errorf("redis-server exited: %s: %w", lastLines(b, 10), errStop)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	})
	if err != nil {
		tb.Fatalf("sandbox: redis on %s not up: %v", r.Addr, err)
	}
}

// Kill SIGKILLs the server; everything it held is gone.
func (r *Redis) Kill() {
	if r.proc != nil {
		r.proc.Kill()
	}
}

// Client is a client of this server, closed when the test ends.
func (r *Redis) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: time.Second})
	tb.Cleanup(func() { c.Close() })
	return c
}

// errStop ends an Eventually poll that cannot succeed any more.
var errStop = errors.New("stop")

// Fill writes values under filler:* until the server refuses a write for
// memory (set maxmemory first): large values, then small ones, so that less
// is left than any key needs. It returns the keys written.
func (r *Redis) Fill(tb testing.TB) []string {
	tb.Helper()
	// The connection stays open until the test ends: closing it would free
	// its buffers and so room for a few more keys.
	c := r.Client(tb)
	ctx := context.Background()
	var written []string
	for _, size := range []int{64 << 10, 64} {
		v := strings.Repeat("x", size)
		for {
			if len(written) > 1_000_000 {
				tb.Fatal("sandbox: redis never refused a write for memory (is maxmemory set?)")
			}
			k := "filler:" + strconv.Itoa(len(written))
			err := c.Set(ctx, k, v, 0).Err()
			if err != nil && strings.Contains(err.Error(), "OOM") {
				break
			}
			if err != nil {
				tb.Fatal(err)
			}
			written = append(written, k)
		}
	}
	return written
}
