package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/quillpay/quill/merchant"
)

// config is every setting of the server. Each has a flag and a QUILL_ env var
// (the flag wins); this file is the one place they are listed. Secrets are never
// flags: keys and TLS material come from the key store.
type config struct {
	Addr            string        // --addr QUILL_ADDR: merchant API (mTLS)
	OpsAddr         string        // --ops-addr QUILL_OPS_ADDR: plain-HTTP health, loopback only
	DataDir         string        // --data-dir QUILL_DATA_DIR: dev material (keys/, TLS files)
	PostgresDSN     string        // QUILL_PG_DSN, --pg-dsn-file QUILL_PG_DSN_FILE, or --pg-dsn without a password
	MigrateDSN      string        // --pg-migrate-dsn QUILL_PG_MIGRATE_DSN: the owner role, for migrations; "" = --pg-dsn
	AuditDSN        string        // --pg-audit-dsn QUILL_PG_AUDIT_DSN: the reader role, for auditors' reads; "" = --pg-dsn
	RedisAddr       string        // --redis-addr QUILL_REDIS_ADDR
	RedisPrefix     string        // --redis-prefix QUILL_REDIS_PREFIX
	RedisTimeout    time.Duration // --redis-timeout QUILL_REDIS_TIMEOUT: past it a nonce check is "uncertain" → 503
	Window          time.Duration // --replay-window QUILL_REPLAY_WINDOW: accepted timestamp skew
	MaxBody         int64         // --max-body QUILL_MAX_BODY: bytes
	MaxBatch        int           // --max-batch QUILL_MAX_BATCH: ledger entries per commit
	PayerIssuer     string        // --payer-issuer QUILL_PAYER_ISSUER: iss of payer JWTs
	PayerAudience   string        // --payer-audience QUILL_PAYER_AUDIENCE: aud of payer JWTs
	PayerAlgorithm  string        // --payer-alg QUILL_PAYER_ALG: the pinned JWT alg
	Migrate         bool          // --migrate QUILL_MIGRATE: apply migrations at start (dev)
	ShutdownTimeout time.Duration // --shutdown-timeout QUILL_SHUTDOWN_TIMEOUT: drain budget
	ReadTimeout     time.Duration // --read-timeout QUILL_READ_TIMEOUT: a request's headers and body; past it 408

	// Limits on what one client can make the server do (issue 5).
	MaxConns            int           // --max-conns QUILL_MAX_CONNS: concurrent connections, all clients
	MaxConnsPerMerchant int           // --max-conns-per-merchant QUILL_MAX_CONNS_PER_MERCHANT
	MaxHandshakes       int           // --max-handshakes QUILL_MAX_HANDSHAKES: concurrent TLS handshakes
	HandshakeTimeout    time.Duration // --handshake-timeout QUILL_HANDSHAKE_TIMEOUT
	AuthFailMax         int           // --auth-fail-max QUILL_AUTH_FAIL_MAX: refusals per merchant per window before 429
	AuthFailWindow      time.Duration // --auth-fail-window QUILL_AUTH_FAIL_WINDOW
	AuthFailDelay       time.Duration // --auth-fail-delay QUILL_AUTH_FAIL_DELAY: how long a throttled 429 is held
	ConnLogInterval     time.Duration // --conn-log-interval QUILL_CONN_LOG_INTERVAL: handshake-failure summary period
	LogLevel            string        // --log-level QUILL_LOG_LEVEL
	Pprof               bool          // --pprof QUILL_PPROF: /debug/pprof on the ops listener
	Keys                keysConfig    // --vault-* and --keys-* (keystore.go): where keys come from
	Crypto              string        // --crypto QUILL_CRYPTO: signature backend, auto|go|openssl
	Audit               auditConfig   // --audit-* and --checkpoint-interval: see audit.go

	// Beyond one machine (redis.go, replica.go).
	RedisMode         string        // --redis-mode QUILL_REDIS_MODE: single, sentinel or cluster
	RedisAddrs        []string      // --redis-addrs QUILL_REDIS_ADDRS: sentinels or cluster seeds
	RedisMaster       string        // --redis-master QUILL_REDIS_MASTER: sentinel master name
	RedisWaitReplicas int           // --redis-wait-replicas QUILL_REDIS_WAIT_REPLICAS: WAIT for this many replicas
	RedisWaitTimeout  time.Duration // --redis-wait-timeout QUILL_REDIS_WAIT_TIMEOUT
	PostgresReadDSN   string        // --pg-read-dsn QUILL_PG_READ_DSN: lag-tolerant reads (a standby)
	// MerchantsRefresh is how often the profile cache reloads the registry
	// (--merchants-refresh QUILL_MERCHANTS_REFRESH): the longest a disabled
	// merchant keeps being served.
	MerchantsRefresh time.Duration

	envErrs   []error // QUILL_ values that did not parse (envFail)
	pgDSNFile string  // --pg-dsn-file QUILL_PG_DSN_FILE: read by resolveDSN
}

// resolveDSN settles where the DSN comes from after the flags are parsed:
// --pg-dsn-file wins; a --pg-dsn given on the command line must not carry a
// password (command lines are visible to every local user and land in shell
// history), so a DSN with one comes from the environment or a file.
func (c *config) resolveDSN(fs *pflag.FlagSet) error {
	if c.pgDSNFile != "" {
		b, err := os.ReadFile(c.pgDSNFile)
		if err != nil {
			return fmt.Errorf("--pg-dsn-file: %w", err) // names the file, not its content
		}
		c.PostgresDSN = strings.TrimSpace(string(b))
		return nil
	}
	if fs.Changed("pg-dsn") && hasPassword(c.PostgresDSN) {
		return errors.New("--pg-dsn holds a password: put the DSN in QUILL_PG_DSN or a file named by --pg-dsn-file instead")
	}
	return nil
}

// hasPassword reports whether a PostgreSQL DSN (URL or keyword form) carries
// a password.
func hasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		_, set := u.User.Password()
		return set || u.Query().Has("password")
	}
	for _, f := range strings.Fields(dsn) {
		if k, _, ok := strings.Cut(f, "="); ok && strings.TrimSpace(k) == "password" {
			return true
		}
	}
	return strings.Contains(dsn, "password")
}

func (c *config) keysDir() string { return filepath.Join(c.DataDir, "keys") }

func envString(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// envErrs collects the QUILL_ values that did not parse while a command's
// flags are bound (bindServe, bindStorage, ...): a bad value is not replaced
// by the default, it refuses the start (config.validate), naming the variable
// and the accepted form.
var envErrs struct {
	sync.Mutex
	errs []error
}

func envFail(name, v, want string) {
	envErrs.Lock()
	defer envErrs.Unlock()
	envErrs.errs = append(envErrs.errs, fmt.Errorf("%s=%q: want %s", name, v, want))
}

// takeEnvErrors returns the errors collected since the last call.
func takeEnvErrors() []error {
	envErrs.Lock()
	defer envErrs.Unlock()
	errs := envErrs.errs
	envErrs.errs = nil
	return errs
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			envFail(name, v, "a duration with its unit, such as 300s, 1m30s or 250ms")
			return def
		}
		return d
	}
	return def
}

func envInt(name string, def int64) int64 {
	if v, ok := os.LookupEnv(name); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			envFail(name, v, "a whole number (sizes in bytes), such as 65536")
			return def
		}
		return n
	}
	return def
}

func envBool(name string, def bool) bool {
	if v, ok := os.LookupEnv(name); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			envFail(name, v, "true or false")
			return def
		}
		return b
	}
	return def
}

// defaultDSN is the dev database on the local PostgreSQL.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/quill?sslmode=disable"

// bindStorage registers the flags every subcommand that touches Postgres needs.
func bindStorage(fs *pflag.FlagSet, c *config) {
	takeEnvErrors()
	defer func() { c.envErrs = append(c.envErrs, takeEnvErrors()...) }()
	fs.StringVar(&c.PostgresDSN, "pg-dsn", envString("QUILL_PG_DSN", defaultDSN), "PostgreSQL DSN without a password; one with a password goes in QUILL_PG_DSN or --pg-dsn-file (env QUILL_PG_DSN)")
	fs.StringVar(&c.pgDSNFile, "pg-dsn-file", envString("QUILL_PG_DSN_FILE", ""), "file holding the PostgreSQL DSN, which may contain a password (env QUILL_PG_DSN_FILE)")
	fs.StringVar(&c.MigrateDSN, "pg-migrate-dsn", envString("QUILL_PG_MIGRATE_DSN", ""), "PostgreSQL DSN of the owner role that applies migrations; empty: --pg-dsn (env QUILL_PG_MIGRATE_DSN)")
}

// migrateDSN is the DSN migrations run with.
func (c *config) migrateDSN() string {
	if c.MigrateDSN != "" {
		return c.MigrateDSN
	}
	return c.PostgresDSN
}

// bindServe registers the server's flags.
func bindServe(fs *pflag.FlagSet, c *config) {
	bindStorage(fs, c)
	defer func() { c.envErrs = append(c.envErrs, takeEnvErrors()...) }()
	fs.StringVar(&c.AuditDSN, "pg-audit-dsn", envString("QUILL_PG_AUDIT_DSN", ""), "PostgreSQL DSN of the read-only role the auditor API reads with; empty: --pg-read-dsn, else --pg-dsn (env QUILL_PG_AUDIT_DSN)")
	fs.StringVar(&c.Addr, "addr", envString("QUILL_ADDR", "127.0.0.1:8443"), "merchant API listen address, mTLS (env QUILL_ADDR)")
	fs.StringVar(&c.OpsAddr, "ops-addr", envString("QUILL_OPS_ADDR", "127.0.0.1:9090"), "plain-HTTP /healthz, /readyz and /metrics listen address; keep it on loopback (env QUILL_OPS_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", envString("QUILL_DATA_DIR", "var/dev"), "directory of the dev key store and TLS files (env QUILL_DATA_DIR)")
	fs.StringVar(&c.RedisAddr, "redis-addr", envString("QUILL_REDIS_ADDR", "127.0.0.1:6379"), "Redis address for nonces and the payer-token denylist (env QUILL_REDIS_ADDR)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", envString("QUILL_REDIS_PREFIX", "quill:"), "prefix of every Redis key (env QUILL_REDIS_PREFIX)")
	fs.DurationVar(&c.RedisTimeout, "redis-timeout", envDuration("QUILL_REDIS_TIMEOUT", 250*time.Millisecond), "Redis command timeout; past it the request is refused with 503 (env QUILL_REDIS_TIMEOUT)")
	fs.DurationVar(&c.Window, "replay-window", envDuration("QUILL_REPLAY_WINDOW", 300*time.Second), "accepted clock skew of request timestamps, both ways (env QUILL_REPLAY_WINDOW)")
	fs.Int64Var(&c.MaxBody, "max-body", envInt("QUILL_MAX_BODY", 64<<10), "maximum request body in bytes (env QUILL_MAX_BODY)")
	fs.IntVar(&c.MaxBatch, "max-batch", int(envInt("QUILL_MAX_BATCH", 512)), "maximum ledger entries per commit (env QUILL_MAX_BATCH)")
	fs.StringVar(&c.PayerIssuer, "payer-issuer", envString("QUILL_PAYER_ISSUER", "quill-dev-login"), "required iss of payer JWTs (env QUILL_PAYER_ISSUER)")
	fs.StringVar(&c.PayerAudience, "payer-audience", envString("QUILL_PAYER_AUDIENCE", "quill"), "required aud of payer JWTs (env QUILL_PAYER_AUDIENCE)")
	fs.StringVar(&c.PayerAlgorithm, "payer-alg", envString("QUILL_PAYER_ALG", "EdDSA"), "the one JWT alg accepted for payer tokens (env QUILL_PAYER_ALG)")
	fs.BoolVar(&c.Migrate, "migrate", envBool("QUILL_MIGRATE", true), "apply database migrations at start (env QUILL_MIGRATE)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", envDuration("QUILL_SHUTDOWN_TIMEOUT", 20*time.Second), "how long shutdown waits for in-flight requests (env QUILL_SHUTDOWN_TIMEOUT)")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", envDuration("QUILL_READ_TIMEOUT", 15*time.Second), "time allowed to read a request's headers and body; a body still arriving is answered 408 (env QUILL_READ_TIMEOUT)")
	fs.IntVar(&c.MaxConns, "max-conns", int(envInt("QUILL_MAX_CONNS", 2048)), "concurrent connections to the merchant API, all clients; more are closed at once (env QUILL_MAX_CONNS)")
	fs.IntVar(&c.MaxConnsPerMerchant, "max-conns-per-merchant", int(envInt("QUILL_MAX_CONNS_PER_MERCHANT", 256)), "concurrent connections per merchant certificate; more are closed after the handshake (env QUILL_MAX_CONNS_PER_MERCHANT)")
	fs.IntVar(&c.MaxHandshakes, "max-handshakes", int(envInt("QUILL_MAX_HANDSHAKES", 64)), "concurrent TLS handshakes; more wait for a slot, up to the handshake timeout (env QUILL_MAX_HANDSHAKES)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", envDuration("QUILL_HANDSHAKE_TIMEOUT", 5*time.Second), "time from connect to a finished TLS handshake (env QUILL_HANDSHAKE_TIMEOUT)")
	fs.IntVar(&c.AuthFailMax, "auth-fail-max", int(envInt("QUILL_AUTH_FAIL_MAX", 20)), "requests per merchant refused before authentication (401, 4xx) per window; past it such refusals are a cached, signed 429 (env QUILL_AUTH_FAIL_MAX)")
	fs.DurationVar(&c.AuthFailWindow, "auth-fail-window", envDuration("QUILL_AUTH_FAIL_WINDOW", 10*time.Second), "window of --auth-fail-max (env QUILL_AUTH_FAIL_WINDOW)")
	fs.DurationVar(&c.AuthFailDelay, "auth-fail-delay", envDuration("QUILL_AUTH_FAIL_DELAY", time.Second), "how long a throttled 429 is held before it is sent, so a looping client gets few answers (env QUILL_AUTH_FAIL_DELAY)")
	fs.DurationVar(&c.ConnLogInterval, "conn-log-interval", envDuration("QUILL_CONN_LOG_INTERVAL", time.Minute), "period of the one log line summarising failed TLS handshakes and refused connections (env QUILL_CONN_LOG_INTERVAL)")
	fs.BoolVar(&c.Pprof, "pprof", envBool("QUILL_PPROF", false), "serve /debug/pprof on the ops listener (env QUILL_PPROF)")
	bindKeys(fs, &c.Keys)
	fs.StringVar(&c.Crypto, "crypto", envString("QUILL_CRYPTO", cryptoAuto), "signature backend: auto (OpenSSL when libcrypto.so.3 loads, else Go), go or openssl (env QUILL_CRYPTO)")
	bindAudit(fs, &c.Audit)
	bindRedis(fs, c)
	bindReplica(fs, c)
	fs.DurationVar(&c.MerchantsRefresh, "merchants-refresh", envDuration("QUILL_MERCHANTS_REFRESH", merchant.DefaultRefreshEvery), "how often merchant profiles are reloaded from Postgres; a disabled merchant is refused within it (env QUILL_MERCHANTS_REFRESH)")
	fs.StringVar(&c.LogLevel, "log-level", envString("QUILL_LOG_LEVEL", "info"), "debug, info, warn or error (env QUILL_LOG_LEVEL)")
}

// validate rejects a configuration the server cannot run safely with.
func (c *config) validate() error {
	if err := errors.Join(c.envErrs...); err != nil {
		return err
	}
	switch {
	case c.Window < time.Second || c.Window > time.Hour:
		return fmt.Errorf("replay window %s outside 1s..1h", c.Window)
	case c.MaxBody < 1024:
		return fmt.Errorf("max body %d below 1024 bytes", c.MaxBody)
	case c.MerchantsRefresh < 100*time.Millisecond:
		return fmt.Errorf("merchants refresh %s below 100ms", c.MerchantsRefresh)
	case c.MaxBatch < 1:
		return fmt.Errorf("max batch %d below 1", c.MaxBatch)
	case c.RedisTimeout <= 0:
		return fmt.Errorf("redis timeout must be positive")
	case c.PayerAlgorithm == "none" || c.PayerAlgorithm == "":
		return fmt.Errorf("payer alg must name a signature algorithm")
	case !validCrypto(c.Crypto):
		return fmt.Errorf("crypto %q: want auto, go or openssl", c.Crypto)
	case c.ReadTimeout < 100*time.Millisecond || c.ReadTimeout > 10*time.Minute:
		return fmt.Errorf("read timeout %s outside 100ms..10m", c.ReadTimeout)
	case c.MaxConns < 1 || c.MaxConns > 1_000_000:
		return fmt.Errorf("max conns %d outside 1..1000000", c.MaxConns)
	case c.MaxConnsPerMerchant < 1 || c.MaxConnsPerMerchant > c.MaxConns:
		return fmt.Errorf("max conns per merchant %d outside 1..max conns (%d)", c.MaxConnsPerMerchant, c.MaxConns)
	case c.MaxHandshakes < 1 || c.MaxHandshakes > c.MaxConns:
		return fmt.Errorf("max handshakes %d outside 1..max conns (%d)", c.MaxHandshakes, c.MaxConns)
	case c.HandshakeTimeout < 100*time.Millisecond || c.HandshakeTimeout > time.Minute:
		return fmt.Errorf("handshake timeout %s outside 100ms..1m", c.HandshakeTimeout)
	case c.AuthFailMax < 1 || c.AuthFailMax > 1_000_000:
		return fmt.Errorf("auth fail max %d outside 1..1000000", c.AuthFailMax)
	case c.AuthFailWindow < time.Second || c.AuthFailWindow > time.Hour:
		return fmt.Errorf("auth fail window %s outside 1s..1h", c.AuthFailWindow)
	case c.AuthFailDelay < 0 || c.AuthFailDelay > 10*time.Second:
		return fmt.Errorf("auth fail delay %s outside 0..10s", c.AuthFailDelay)
	case c.ConnLogInterval < time.Second || c.ConnLogInterval > 24*time.Hour:
		return fmt.Errorf("conn log interval %s outside 1s..24h", c.ConnLogInterval)
	}
	if err := c.Keys.validate(); err != nil {
		return err
	}
	if err := c.Audit.validate(); err != nil {
		return err
	}
	return c.validateRedis()
}
