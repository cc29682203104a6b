package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/keys/vault"
	merchantpg "github.com/quillpay/quill/merchant/postgres"
)

// setting is one configuration name with its default.
type setting struct {
	name, def, help string
	secret          bool
}

// settings are every name quillctl reads, from the environment or the
// config file (the environment wins; a flag wins over both). They are the
// server's names, so one file can configure both. Secrets (marked) may sit in
// the file only if nobody but its owner can read it.
var settings = []setting{
	{"QUILL_DATA_DIR", "var/dev", "dev material: the dev key store (when no Vault), the dev CA, merchants' dev keys", false},
	{"QUILL_PG_DSN", defaultDSN, "PostgreSQL DSN of the merchant registry and audit log (may hold a password)", true},
	{"QUILL_PG_DSN_FILE", "", "file holding the DSN instead", false},
	{"QUILL_OPERATOR", "", "who you are, recorded with every change (default: unix:<user>@<host>)", false},
	{"QUILL_REPLAY_WINDOW", "300s", "the server's replay window: the least overlap a rotation may have", false},
	{"QUILL_VAULT_ADDR", "", "Vault address; empty: the dev file store in <data-dir>/keys", false},
	{"QUILL_VAULT_MOUNT", vault.DefaultMount, "Vault KV v2 mount", false},
	{"QUILL_VAULT_PREFIX", "", "path prefix inside the mount", false},
	{"QUILL_VAULT_TOKEN", "", "Vault token", true},
	{"QUILL_VAULT_TOKEN_FILE", "", "file holding the Vault token", false},
	{"QUILL_VAULT_ROLE_ID", "", "AppRole role id (instead of a token)", false},
	{"QUILL_VAULT_SECRET_ID", "", "AppRole secret id", true},
	{"QUILL_VAULT_SECRET_ID_FILE", "", "file holding the AppRole secret id", false},
	{"QUILL_VAULT_TIMEOUT", vault.DefaultTimeout.String(), "per Vault request", false},
	{"QUILL_URL", "https://127.0.0.1:8443", "server base URL (request)", false},
	{"QUILL_MERCHANT", "M100", "merchant whose dev key and certificate sign (request)", false},
}

const defaultDSN = "postgres://postgres@127.0.0.1:5432/quill?sslmode=disable"

// cliConfig is quillctl's configuration: defaults, then the config file,
// then the environment.
type cliConfig struct {
	file   map[string]string
	source string // the config file read, if any
}

// loadConfig reads the config file at path ("" : $QUILL_CONFIG, else none).
// The file has NAME=value lines (# comments, blank lines) with the names of
// settings; an unknown name, a malformed line, or a secret in a file that
// group or others can read is refused.
func loadConfig(path string) (*cliConfig, error) {
	c := &cliConfig{file: map[string]string{}}
	if path == "" {
		path = os.Getenv("QUILL_CONFIG")
	}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.source = path
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(settings, func(s setting) bool { return s.name == name })
		switch {
		case !ok:
			return nil, fmt.Errorf("config %s:%d: want NAME=value", path, n)
		case i < 0:
			return nil, fmt.Errorf("config %s:%d: unknown setting %q (quillctl config --help lists them)", path, n, name)
		case settings[i].secret && fi.Mode().Perm()&0o077 != 0:
			return nil, fmt.Errorf("config %s:%d: %s is a secret but the file is readable by others (mode %v): chmod 600 it", path, n, name, fi.Mode().Perm())
		}
		c.file[name] = strings.TrimSpace(value)
	}
	return c, sc.Err()
}

// get returns name from the environment, else the file, else its default.
func (c *cliConfig) get(name string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	if v, ok := c.file[name]; ok {
		return v
	}
	for _, s := range settings {
		if s.name == name {
			return s.def
		}
	}
	panic("quillctl: unknown setting " + name)
}

// duration parses a duration setting, naming it and the accepted form.
func (c *cliConfig) duration(name string) (time.Duration, error) {
	v := c.get(name)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q: want a duration such as 300s or 5m", name, v)
	}
	return d, nil
}

// secret reads a secret from name or, if empty, from the file named by fileName.
func (c *cliConfig) secret(name, fileName string) (string, error) {
	if v := c.get(name); v != "" {
		return v, nil
	}
	f := c.get(fileName)
	if f == "" {
		return "", nil
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", fileName, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// operator is who the audit log records.
func (c *cliConfig) operator() string {
	if v := c.get("QUILL_OPERATOR"); v != "" {
		return v
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return "unix:" + name + "@" + host
}

// dsn returns the registry's DSN.
func (c *cliConfig) dsn() (string, error) {
	d, err := c.secret("QUILL_PG_DSN", "QUILL_PG_DSN_FILE")
	if err == nil && d == "" {
		err = errors.New("no PostgreSQL DSN: set QUILL_PG_DSN or QUILL_PG_DSN_FILE")
	}
	return d, err
}

// registry opens the merchant registry and audit log.
func (c *cliConfig) registry(ctx context.Context) (*merchantpg.Store, error) {
	dsn, err := c.dsn()
	if err != nil {
		return nil, err
	}
	return merchantpg.Open(ctx, dsn, 2)
}

// ringStore is what the key commands need of a key store: read every ring,
// change one atomically. The dev FileStore and Vault's Store both are.
type ringStore interface {
	keys.RingEditor
	LoadRings(ctx context.Context) ([]*keys.Ring, error)
	String() string
}

// rings opens the key store the server uses: Vault if QUILL_VAULT_ADDR is
// set, else the dev file store in <data-dir>/keys. close releases it.
func (c *cliConfig) rings(dataDir string) (ringStore, func(), error) {
	addr := c.get("QUILL_VAULT_ADDR")
	if addr == "" {
		fs, err := keys.OpenFileStore(filepath.Join(dataDir, "keys"), keys.FileOptions{})
		if err != nil {
			return nil, nil, err
		}
		return fs, func() {}, nil
	}
	if _, err := url.Parse(addr); err != nil {
		return nil, nil, fmt.Errorf("QUILL_VAULT_ADDR: not a URL")
	}
	token, err := c.secret("QUILL_VAULT_TOKEN", "QUILL_VAULT_TOKEN_FILE")
	if err != nil {
		return nil, nil, err
	}
	secretID, err := c.secret("QUILL_VAULT_SECRET_ID", "QUILL_VAULT_SECRET_ID_FILE")
	if err != nil {
		return nil, nil, err
	}
	timeout, err := c.duration("QUILL_VAULT_TIMEOUT")
	if err != nil {
		return nil, nil, err
	}
	vs, err := vault.Open(vault.Config{
		Address: addr, Mount: c.get("QUILL_VAULT_MOUNT"), Prefix: c.get("QUILL_VAULT_PREFIX"), Timeout: timeout,
		Token: token, AppRole: vault.AppRole{RoleID: c.get("QUILL_VAULT_ROLE_ID"), SecretID: secretID},
	})
	if err != nil {
		return nil, nil, err
	}
	return vs, vs.Close, nil
}

// envOr returns the environment variable name, or def if it is unset; for
// flag defaults of commands that do not go through cliConfig.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
