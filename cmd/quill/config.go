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
// flags: keys come from the key store, TLS keys from files.
type config struct {
	Addr            string        // --addr QUILL_ADDR: merchant API (mTLS)
	OpsAddr         string        // --ops-addr QUILL_OPS_ADDR: plain-HTTP health, loopback only
	DataDir         string        // --data-dir QUILL_DATA_DIR: dev material (keys/, TLS files)
	PostgresDSN     string        // QUILL_PG_DSN, --pg-dsn-file QUILL_PG_DSN_FILE, or --pg-dsn without a password
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
	LogLevel        string        // --log-level QUILL_LOG_LEVEL
	Pprof           bool          // --pprof QUILL_PPROF: /debug/pprof on the ops listener
	Keys            keysConfig    // --vault-* and --keys-* (keystore.go): where keys come from
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

func (c *config) tlsCert() string  { return filepath.Join(c.DataDir, "server.pem") }
func (c *config) tlsKey() string   { return filepath.Join(c.DataDir, "server.key.pem") }
func (c *config) clientCA() string { return filepath.Join(c.DataDir, "ca.pem") }
func (c *config) revoked() string  { return filepath.Join(c.DataDir, "revoked-serials.txt") }
func (c *config) keysDir() string  { return filepath.Join(c.DataDir, "keys") }

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
}

// bindServe registers the server's flags.
func bindServe(fs *pflag.FlagSet, c *config) {
	bindStorage(fs, c)
	defer func() { c.envErrs = append(c.envErrs, takeEnvErrors()...) }()
	fs.StringVar(&c.Addr, "addr", envString("QUILL_ADDR", "127.0.0.1:8443"), "merchant API listen address, mTLS (env QUILL_ADDR)")
	fs.StringVar(&c.OpsAddr, "ops-addr", envString("QUILL_OPS_ADDR", "127.0.0.1:9090"), "plain-HTTP /healthz and /readyz listen address; keep it on loopback (env QUILL_OPS_ADDR)")
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
	fs.BoolVar(&c.Pprof, "pprof", envBool("QUILL_PPROF", false), "serve /debug/pprof on the ops listener (env QUILL_PPROF)")
	bindKeys(fs, &c.Keys)
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
	}
	return c.Keys.validate()
}
