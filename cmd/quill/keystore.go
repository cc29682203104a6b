package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/keys/vault"
	"github.com/quillpay/quill/signing"
)

// keysConfig selects and tunes the key store. With no Vault address the dev
// file store in <data-dir>/keys serves, as before. Secrets (the Vault token,
// the AppRole secret id) come from the environment or from files, never
// from flags.
type keysConfig struct {
	VaultAddr         string        // --vault-addr QUILL_VAULT_ADDR: empty → the dev file store
	VaultMount        string        // --vault-mount QUILL_VAULT_MOUNT: KV v2 mount
	VaultPrefix       string        // --vault-prefix QUILL_VAULT_PREFIX: path prefix inside the mount
	VaultTokenFile    string        // --vault-token-file QUILL_VAULT_TOKEN_FILE (or the token itself in QUILL_VAULT_TOKEN)
	VaultRoleID       string        // --vault-role-id QUILL_VAULT_ROLE_ID: AppRole login instead of a token
	VaultSecretIDFile string        // --vault-secret-id-file QUILL_VAULT_SECRET_ID_FILE (or QUILL_VAULT_SECRET_ID)
	VaultTimeout      time.Duration // --vault-timeout QUILL_VAULT_TIMEOUT: per request
	Refresh           time.Duration // --keys-refresh QUILL_KEYS_REFRESH: background refresh interval
	MaxStale          time.Duration // --keys-max-stale QUILL_KEYS_MAX_STALE: serve the last good keys this long when Vault fails
	MissRefresh       time.Duration // --keys-miss-refresh QUILL_KEYS_MISS_REFRESH: least time between refreshes for unknown key ids
}

func bindKeys(fs *pflag.FlagSet, k *keysConfig) {
	fs.StringVar(&k.VaultAddr, "vault-addr", envString("QUILL_VAULT_ADDR", ""), "Vault address; empty serves the dev file store in <data-dir>/keys (env QUILL_VAULT_ADDR)")
	fs.StringVar(&k.VaultMount, "vault-mount", envString("QUILL_VAULT_MOUNT", vault.DefaultMount), "Vault KV v2 mount holding the key rings (env QUILL_VAULT_MOUNT)")
	fs.StringVar(&k.VaultPrefix, "vault-prefix", envString("QUILL_VAULT_PREFIX", ""), "path prefix inside the Vault mount (env QUILL_VAULT_PREFIX)")
	fs.StringVar(&k.VaultTokenFile, "vault-token-file", envString("QUILL_VAULT_TOKEN_FILE", ""), "file holding the Vault token; or set the token in QUILL_VAULT_TOKEN (env QUILL_VAULT_TOKEN_FILE)")
	fs.StringVar(&k.VaultRoleID, "vault-role-id", envString("QUILL_VAULT_ROLE_ID", ""), "AppRole role id; log in with AppRole instead of a token (env QUILL_VAULT_ROLE_ID)")
	fs.StringVar(&k.VaultSecretIDFile, "vault-secret-id-file", envString("QUILL_VAULT_SECRET_ID_FILE", ""), "file holding the AppRole secret id; or set it in QUILL_VAULT_SECRET_ID (env QUILL_VAULT_SECRET_ID_FILE)")
	fs.DurationVar(&k.VaultTimeout, "vault-timeout", envDuration("QUILL_VAULT_TIMEOUT", vault.DefaultTimeout), "timeout of each Vault request (env QUILL_VAULT_TIMEOUT)")
	fs.DurationVar(&k.Refresh, "keys-refresh", envDuration("QUILL_KEYS_REFRESH", keys.DefaultRefreshEvery), "how often the server re-reads the key rings from Vault (env QUILL_KEYS_REFRESH)")
	fs.DurationVar(&k.MaxStale, "keys-max-stale", envDuration("QUILL_KEYS_MAX_STALE", keys.DefaultMaxStale), "how long the last good keys keep serving while Vault is unreachable; then 503 (env QUILL_KEYS_MAX_STALE)")
	fs.DurationVar(&k.MissRefresh, "keys-miss-refresh", envDuration("QUILL_KEYS_MISS_REFRESH", keys.DefaultMissRefreshEvery), "least time between Vault reads caused by unknown key ids (env QUILL_KEYS_MISS_REFRESH)")
}

func (k keysConfig) validate() error {
	if k.VaultAddr == "" {
		return nil
	}
	switch {
	case k.Refresh < time.Second:
		return fmt.Errorf("keys refresh %s below 1s", k.Refresh)
	case k.MaxStale <= k.Refresh:
		return fmt.Errorf("keys max stale %s must exceed the refresh interval %s", k.MaxStale, k.Refresh)
	case k.MissRefresh < 100*time.Millisecond:
		return fmt.Errorf("keys miss refresh %s below 100ms", k.MissRefresh)
	case k.VaultTimeout <= 0:
		return fmt.Errorf("vault timeout must be positive")
	}
	return nil
}

// secret reads a secret from the environment variable env or, if unset, from
// file (trimmed); both empty is "".
func secret(env, file string) (string, error) {
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err // names the file, not its content
	}
	return strings.TrimSpace(string(b)), nil
}

// vaultConfig builds the Vault store's configuration, reading the secrets.
func (k keysConfig) vaultConfig(now func() time.Time) (vault.Config, error) {
	token, err := secret("QUILL_VAULT_TOKEN", k.VaultTokenFile)
	if err != nil {
		return vault.Config{}, fmt.Errorf("vault token: %w", err)
	}
	secretID, err := secret("QUILL_VAULT_SECRET_ID", k.VaultSecretIDFile)
	if err != nil {
		return vault.Config{}, fmt.Errorf("vault secret id: %w", err)
	}
	return vault.Config{
		Address: k.VaultAddr, Mount: k.VaultMount, Prefix: k.VaultPrefix, Timeout: k.VaultTimeout, Now: now,
		Token: token, AppRole: vault.AppRole{RoleID: k.VaultRoleID, SecretID: secretID},
	}, nil
}

// servingKeys is the key store the server reads, and what /readyz asks it.
type servingKeys struct {
	keyStore
	tls    keys.TLSStore // the TLS material (tls.go)
	ready  func(context.Context) error
	reload func(context.Context) error // now, on SIGHUP
	close  func()
	// loadedAt is when the keys served were last loaded, for the staleness
	// gauge; nil for the file store, which reloads on change and never refuses
	// stale keys.
	loadedAt func() time.Time
}

// openKeys opens the configured key store. For Vault it loads the rings once
// (a Vault that is down or sealed leaves the server not ready, answering 503,
// until a refresh succeeds) and refreshes them in the background until ctx
// ends.
func openKeys(ctx context.Context, c config, log zerolog.Logger, now func() time.Time) (servingKeys, error) {
	if c.Keys.VaultAddr == "" {
		klog := log.With().Str("component", "keys").Logger()
		fs, err := keys.OpenFileStore(c.keysDir(), keys.FileOptions{Now: now, OnChange: func(err error) {
			if err != nil {
				klog.Error().Err(err).Msg("key file failed to load; the last good keys serve")
				return
			}
			klog.Info().Msg("key file loads again")
		}})
		if err != nil {
			return servingKeys{}, err
		}
		return servingKeys{keyStore: fs, tls: fs, ready: fs.Ready, close: func() {},
			reload: func(context.Context) error { return fs.Reload() }}, nil
	}
	vc, err := c.Keys.vaultConfig(now)
	if err != nil {
		return servingKeys{}, err
	}
	klog := log.With().Str("component", "keys").Logger()
	vc.OnRenew = func() { klog.Debug().Msg("vault token renewed") }
	vc.OnAuthLost = func(err error) { klog.Warn().Err(err).Msg("vault token renewal ended; logging in again on next use") }
	vs, err := vault.Open(vc)
	if err != nil {
		return servingKeys{}, err
	}
	var mu sync.Mutex
	var failing bool
	cache, err := keys.NewCache(vs, keys.CacheOptions{
		Name: vs.String(), Now: now,
		RefreshEvery: c.Keys.Refresh, MaxStale: c.Keys.MaxStale, MissRefreshEvery: c.Keys.MissRefresh,
		OnRefresh: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && !failing:
				klog.Warn().Err(err).Dur("max_stale", c.Keys.MaxStale).Msg("key refresh failing; serving the last good keys until they are too stale")
			case err == nil && failing:
				klog.Info().Msg("key refresh recovered")
			}
			failing = err != nil
		},
	})
	if err != nil {
		vs.Close()
		return servingKeys{}, err
	}
	klog.Info().Str("store", vs.String()).Dur("refresh", c.Keys.Refresh).Dur("max_stale", c.Keys.MaxStale).Msg("keys served from vault")
	if err := cache.Refresh(ctx); err != nil && !errors.Is(err, keys.ErrUnavailable) {
		klog.Error().Err(err).Msg("key rings in vault are invalid")
	}
	go cache.Run(ctx)
	return servingKeys{keyStore: cache, tls: vs, ready: cache.Ready, reload: cache.Refresh, close: vs.Close, loadedAt: cache.LoadedAt}, nil
}

// publishedKeys gives GET /v1/certificates the platform keys of both rings,
// the RSA ones of scheme A first, then the Ed25519 ones of scheme B (each
// entry's algorithm says which), with a store that cannot answer mapped to
// the 503 of the error table.
type publishedKeys struct {
	s   keyStore
	now func() time.Time
}

func (p publishedKeys) PlatformPublicKeys(ctx context.Context) ([]keys.PublicKey, error) {
	ks, err := p.s.PlatformPublicKeys(ctx)
	if err == nil {
		var b []keys.PublicKey
		if b, err = p.s.PublicKeys(ctx, keys.PlatformEd25519Owner); err == nil {
			for _, k := range b {
				if k.UsableAt(p.now()) {
					ks = append(ks, k)
				}
			}
		}
	}
	if errors.Is(err, keys.ErrUnavailable) {
		return nil, fmt.Errorf("%w: %w", signing.ErrUnavailable, err)
	}
	return ks, err
}
