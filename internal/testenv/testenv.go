// Package testenv gives integration tests real PostgreSQL and Redis servers.
//
// Addresses come from QUILL_TEST_PG_DSN (an admin DSN, default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) and
// QUILL_TEST_REDIS_ADDR (default 127.0.0.1:6379); scripts/test.sh sets them,
// starting private servers when none is reachable. Each call to Postgres creates
// a fresh database that is dropped when the test ends, so tests never see each
// other's rows. Tests fail, never skip, when a server is missing.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// AdminDSN returns the DSN of the test PostgreSQL server's admin database.
func AdminDSN() string {
	if v := os.Getenv("QUILL_TEST_PG_DSN"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisAddr returns host:port of the test Redis server and fails tb if it does
// not accept connections.
func RedisAddr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv("QUILL_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		tb.Fatalf("testenv: redis at %s unreachable (run scripts/test.sh): %v", addr, err)
	}
	c.Close()
	return addr
}

// Postgres creates a fresh, empty database and returns its DSN. The database is
// dropped when tb ends.
func Postgres(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminDSN())
	if err != nil {
		tb.Fatalf("testenv: postgres unreachable (run scripts/test.sh): %v", err)
	}
	defer admin.Close(context.Background())
	name := "quill_test_" + Random(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("testenv: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, AdminDSN())
		if err != nil {
			tb.Logf("testenv: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("testenv: drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(AdminDSN())
	if err != nil {
		tb.Fatalf("testenv: admin DSN: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Random returns n random bytes hex-encoded, for unique names in tests.
func Random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("testenv: random: %v", err))
	}
	return hex.EncodeToString(b)
}
