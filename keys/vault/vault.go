package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/sync/errgroup"

	"github.com/quillpay/quill/keys"
)

// ringFormat is the only ring secret format this package reads and writes.
const ringFormat = 1

// Defaults of Config.
const (
	DefaultMount        = "quill"
	DefaultAppRoleMount = "approle"
	DefaultTimeout      = 5 * time.Second
)

// Config says where the rings live and how to log in. Exactly one of Token
// and AppRole is used (AppRole when its RoleID is set).
type Config struct {
	// Address is Vault's URL (https://vault.internal:8200). VAULT_CACERT and
	// the other VAULT_* TLS variables of the Vault client apply.
	Address string
	// Mount is the KV v2 mount path; empty means DefaultMount.
	Mount string
	// Prefix is prepended to every path inside the mount ("" for none), so
	// several deployments can share one mount.
	Prefix string
	// Token is a Vault token. Secret: never log it.
	Token string
	// AppRole logs in with a role id and secret id instead of a token.
	AppRole AppRole
	// Timeout bounds each request to Vault; zero means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock stamped on changes; nil means time.Now.
	Now func() time.Time
	// OnRenew, if set, is called after each token renewal; OnAuthLost when
	// renewal ends (the next request logs in again where it can).
	OnRenew    func()
	OnAuthLost func(err error)
}

// AppRole is an AppRole login.
type AppRole struct {
	Mount    string // auth mount; empty means DefaultAppRoleMount
	RoleID   string
	SecretID string // secret: never log it
}

// Format prints the configuration without the token or the secret id.
func (c Config) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "vault.Config{addr=%s, mount=%s, prefix=%s, approle=%t, REDACTED}", c.Address, c.Mount, c.Prefix, c.AppRole.RoleID != "")
}

// Store is a KV v2 key store. It implements keys.Source (read every ring)
// and keys.RingEditor (change one ring with check-and-set); keys.Manager
// makes the operator's changes through it and keys.Cache serves its keys.
type Store struct {
	cfg Config
	c   *api.Client

	authMu sync.Mutex
	authed bool
	done   chan struct{}
	close  sync.Once
}

var (
	_ keys.Source     = (*Store)(nil)
	_ keys.RingEditor = (*Store)(nil)
)

// Open returns a store for cfg. It does not contact Vault: a Vault that is
// down or sealed shows up as keys.ErrUnavailable on use (and the server
// reports it as not ready) rather than as a failure to start.
func Open(cfg Config) (*Store, error) {
	if cfg.Mount == "" {
		cfg.Mount = DefaultMount
	}
	if cfg.AppRole.Mount == "" {
		cfg.AppRole.Mount = DefaultAppRoleMount
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	u, err := url.Parse(cfg.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: vault address %q is not an http(s) URL", keys.ErrInvalid, cfg.Address)
	}
	if cfg.Token == "" && (cfg.AppRole.RoleID == "" || cfg.AppRole.SecretID == "") {
		return nil, fmt.Errorf("%w: vault: need a token or an AppRole role id and secret id", keys.ErrInvalid)
	}
	for _, p := range []string{cfg.Mount, cfg.Prefix, cfg.AppRole.Mount} {
		if strings.Contains(p, "..") || strings.ContainsAny(p, "?#%") {
			return nil, fmt.Errorf("%w: vault path %q", keys.ErrInvalid, p)
		}
	}
	ac := api.DefaultConfig()
	if ac.Error != nil {
		return nil, fmt.Errorf("keys: vault: client configuration: %w", ac.Error)
	}
	ac.Address = cfg.Address
	ac.Timeout = cfg.Timeout
	// No hidden retries: a retried check-and-set write whose first attempt
	// landed would report a conflict with itself. The cache retries reads.
	ac.MaxRetries = 0
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("keys: vault: client: %w", err)
	}
	c.ClearToken() // never a VAULT_TOKEN from the environment by accident
	if cfg.AppRole.RoleID == "" {
		c.SetToken(cfg.Token)
	}
	return &Store{cfg: cfg, c: c, done: make(chan struct{})}, nil
}

// Close stops token renewal.
func (s *Store) Close() { s.close.Do(func() { close(s.done) }) }

// String names the store without secrets.
func (s *Store) String() string { return "vault " + s.cfg.Address + " (mount " + s.cfg.Mount + ")" }

// Format prints only String, for every verb.
func (s *Store) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// ringsDir is the KV path (inside the mount) that holds every ring.
func (s *Store) ringsDir() string { return path.Join(s.cfg.Prefix, "rings") }

func (s *Store) ringPath(owner string) string { return path.Join(s.ringsDir(), owner) }

// LoadRings reads every ring. Errors wrap keys.ErrUnavailable (Vault
// unreachable, sealed, refusing the token) or keys.ErrInvalid (a malformed
// ring).
func (s *Store) LoadRings(ctx context.Context) ([]*keys.Ring, error) {
	var owners []string
	err := s.do(ctx, func() error {
		list, err := s.c.Logical().ListWithContext(ctx, path.Join(s.cfg.Mount, "metadata", s.ringsDir()))
		if err != nil || list == nil {
			owners = nil
			return err
		}
		raw, _ := list.Data["keys"].([]any)
		owners = owners[:0]
		for _, k := range raw {
			if o, ok := k.(string); ok && !strings.HasSuffix(o, "/") {
				owners = append(owners, o)
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.fail("list rings", err)
	}
	rings := make([]*keys.Ring, len(owners))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, owner := range owners {
		g.Go(func() error {
			r, _, err := s.readRing(gctx, owner)
			rings[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := rings[:0]
	for _, r := range rings {
		if r.Latest() > 0 {
			out = append(out, r)
		}
	}
	return out, nil
}

// readRing reads owner's ring and its KV version (0 if it has none: the
// check-and-set value that means "must not exist yet").
func (s *Store) readRing(ctx context.Context, owner string) (*keys.Ring, int, error) {
	if !keys.ValidOwner(owner) {
		return nil, 0, fmt.Errorf("%w: vault: ring name %q", keys.ErrInvalid, owner)
	}
	var sec *api.KVSecret
	err := s.do(ctx, func() (err error) {
		sec, err = s.c.KVv2(s.cfg.Mount).Get(ctx, s.ringPath(owner))
		return err
	})
	switch {
	case errors.Is(err, api.ErrSecretNotFound):
		r, err := keys.NewRing(owner)
		return r, 0, err
	case err != nil:
		return nil, 0, s.fail("read ring "+owner, err)
	}
	version := 0
	if sec.VersionMetadata != nil {
		version = sec.VersionMetadata.Version
	}
	if sec.Data == nil { // latest version deleted: an empty ring
		r, err := keys.NewRing(owner)
		return r, version, err
	}
	r, err := decodeRing(owner, sec.Data)
	if err != nil {
		return nil, 0, fmt.Errorf("vault %s: %w", s.ringPath(owner), err)
	}
	return r, version, nil
}

// decodeRing checks a ring secret's envelope and parses the ring in it.
func decodeRing(owner string, data map[string]any) (*keys.Ring, error) {
	if fmt.Sprint(data["format"]) != fmt.Sprint(ringFormat) {
		return nil, fmt.Errorf("%w: ring secret format %v, want %d", keys.ErrInvalid, data["format"], ringFormat)
	}
	if o, _ := data["owner"].(string); o != owner {
		return nil, fmt.Errorf("%w: ring secret names owner %q", keys.ErrInvalid, o)
	}
	body := make(map[string]any, len(data))
	for k, v := range data {
		if k != "format" && k != "owner" {
			body[k] = v
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%w: ring secret: %w", keys.ErrInvalid, err)
	}
	return keys.DecodeRing(owner, b)
}

// encodeRing is the secret data of r.
func encodeRing(r *keys.Ring) (map[string]any, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	data := map[string]any{}
	if err := json.Unmarshal(b, &data); err != nil {
		return nil, err
	}
	data["format"], data["owner"] = ringFormat, r.Owner()
	return data, nil
}

// EditRing reads owner's ring, applies change, and writes it back with
// check-and-set on the version read. It returns change's error, the ring's
// validation error, keys.ErrConflict if the ring changed since the read, or
// keys.ErrUnavailable; in every error case Vault is unchanged (a write that
// timed out may or may not have landed: the error says so).
func (s *Store) EditRing(ctx context.Context, owner string, change func(r *keys.Ring, now time.Time) error) error {
	r, version, err := s.readRing(ctx, owner)
	if err != nil {
		return err
	}
	if err := change(r, s.cfg.Now()); err != nil {
		return err
	}
	if _, err := r.Keys(); err != nil { // validate before anything is written
		return err
	}
	data, err := encodeRing(r)
	if err != nil {
		return fmt.Errorf("keys: vault: encode ring %s: %w", owner, err)
	}
	err = s.do(ctx, func() error {
		_, err := s.c.KVv2(s.cfg.Mount).Put(ctx, s.ringPath(owner), data, api.WithCheckAndSet(version))
		return err
	})
	if isCASMismatch(err) {
		return fmt.Errorf("%w: %s was changed by someone else after version %d was read", keys.ErrConflict, owner, version)
	}
	if err != nil {
		return s.fail("write ring "+owner, err)
	}
	return nil
}

// do runs op with a valid token, logging in first (AppRole) if needed, and
// once more if Vault refuses the token.
func (s *Store) do(ctx context.Context, op func() error) error {
	if err := s.ensureAuth(ctx); err != nil {
		return err
	}
	err := op()
	if s.cfg.AppRole.RoleID != "" && statusOf(err) == 403 {
		s.authMu.Lock()
		s.authed = false
		s.authMu.Unlock()
		if err := s.ensureAuth(ctx); err != nil {
			return err
		}
		err = op()
	}
	return err
}

// ensureAuth logs in with AppRole, or checks the static token, once; a
// renewable token gets a LifetimeWatcher.
func (s *Store) ensureAuth(ctx context.Context) error {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if s.authed {
		return nil
	}
	var sec *api.Secret
	var err error
	if s.cfg.AppRole.RoleID != "" {
		sec, err = s.c.Logical().WriteWithContext(ctx, path.Join("auth", s.cfg.AppRole.Mount, "login"), map[string]any{
			"role_id": s.cfg.AppRole.RoleID, "secret_id": s.cfg.AppRole.SecretID,
		})
		if err == nil && (sec == nil || sec.Auth == nil) {
			err = errors.New("login returned no token")
		}
		if err != nil {
			return s.fail("approle login", err)
		}
		s.c.SetToken(sec.Auth.ClientToken)
	} else {
		look, err := s.c.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return s.fail("token lookup", err)
		}
		renewable, _ := look.TokenIsRenewable()
		ttl, _ := look.TokenTTL()
		if renewable && ttl > 0 {
			if sec, err = s.c.Auth().Token().RenewSelfWithContext(ctx, 0); err != nil {
				return s.fail("token renewal", err)
			}
		}
	}
	s.authed = true
	if sec != nil && sec.Auth != nil && sec.Auth.Renewable {
		s.watch(sec)
	}
	return nil
}

// watch renews the token behind sec until renewal ends or Close.
func (s *Store) watch(sec *api.Secret) {
	w, err := s.c.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: sec})
	if err != nil {
		return // not renewable after all: it lives out its TTL, then we log in again
	}
	go w.Start()
	go func() {
		defer w.Stop()
		for {
			select {
			case <-w.RenewCh():
				if s.cfg.OnRenew != nil {
					s.cfg.OnRenew()
				}
			case err := <-w.DoneCh():
				s.authMu.Lock()
				s.authed = false
				s.authMu.Unlock()
				if s.cfg.OnAuthLost != nil {
					s.cfg.OnAuthLost(s.fail("token renewal ended", err))
				}
				return
			case <-s.done:
				return
			}
		}
	}()
}

// isCASMismatch reports KV v2's answer to a stale check-and-set write.
func isCASMismatch(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "check-and-set") {
			return true
		}
	}
	return false
}

func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// fail turns a Vault client error into keys.ErrUnavailable with a class an
// operator can act on. Vault's error strings carry the address, the path and
// Vault's message, never the token or the request body.
func (s *Store) fail(op string, err error) error {
	if errors.Is(err, keys.ErrUnavailable) {
		return err // already classified (a login under a read)
	}
	class := classify(err)
	return fmt.Errorf("%w: vault %s: %s: %s: %w", keys.ErrUnavailable, s.cfg.Address, op, class, err)
}

// classify names the kind of failure.
func classify(err error) string {
	var re *api.ResponseError
	var ne net.Error
	switch {
	case errors.As(err, &re):
		msg := strings.Join(re.Errors, "; ")
		switch {
		case re.StatusCode == 503 && strings.Contains(msg, "sealed"):
			return "sealed"
		case re.StatusCode == 403:
			return "permission denied"
		case re.StatusCode == 429:
			return "rate limited"
		case re.StatusCode >= 500:
			return fmt.Sprintf("server error %d", re.StatusCode)
		}
		return fmt.Sprintf("refused with %d", re.StatusCode)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ne), errors.Is(err, net.ErrClosed):
		return "unreachable"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

var _ keys.TLSStore = (*Store)(nil)

// tlsPath is the KV path (inside the mount) of a TLS item.
func (s *Store) tlsPath(name keys.TLSName) string {
	return path.Join(s.cfg.Prefix, "tls", string(name))
}

// TLSItem reads TLS item name; errors wrap keys.ErrNotFound (no such
// secret), keys.ErrInvalid or keys.ErrUnavailable.
func (s *Store) TLSItem(ctx context.Context, name keys.TLSName) (keys.TLSItem, error) {
	it, _, err := s.readTLS(ctx, name)
	if err == nil && it.Name == "" {
		return keys.TLSItem{}, fmt.Errorf("%w: vault %s", keys.ErrNotFound, s.tlsPath(name))
	}
	return it, err
}

// readTLS reads an item and its KV version; an absent item is a zero item
// (no Name) at version 0.
func (s *Store) readTLS(ctx context.Context, name keys.TLSName) (keys.TLSItem, int, error) {
	var sec *api.KVSecret
	err := s.do(ctx, func() (err error) {
		sec, err = s.c.KVv2(s.cfg.Mount).Get(ctx, s.tlsPath(name))
		return err
	})
	switch {
	case errors.Is(err, api.ErrSecretNotFound):
		return keys.TLSItem{}, 0, nil
	case err != nil:
		return keys.TLSItem{}, 0, s.fail("read "+s.tlsPath(name), err)
	}
	version := 0
	if sec.VersionMetadata != nil {
		version = sec.VersionMetadata.Version
	}
	if sec.Data == nil { // latest version deleted
		return keys.TLSItem{}, version, nil
	}
	it, err := keys.TLSItemFromFields(name, sec.Data)
	if err != nil {
		return keys.TLSItem{}, 0, fmt.Errorf("vault %s: %w", s.tlsPath(name), err)
	}
	return it, version, nil
}

// EditTLS reads TLS item name, applies change and writes it back with
// check-and-set on the version read, as EditRing does for rings.
func (s *Store) EditTLS(ctx context.Context, name keys.TLSName, change func(it *keys.TLSItem, now time.Time) error) error {
	if !slices.Contains(keys.TLSNames, name) {
		return fmt.Errorf("%w: unknown TLS item %q", keys.ErrInvalid, name)
	}
	it, version, err := s.readTLS(ctx, name)
	if err != nil {
		return err
	}
	it.Name = name
	now := s.cfg.Now()
	if err := change(&it, now); err != nil {
		return err
	}
	it.Name, it.UpdatedAt = name, now.UTC()
	if err := it.Validate(); err != nil {
		return err
	}
	err = s.do(ctx, func() error {
		_, err := s.c.KVv2(s.cfg.Mount).Put(ctx, s.tlsPath(name), it.Fields(), api.WithCheckAndSet(version))
		return err
	})
	if isCASMismatch(err) {
		return fmt.Errorf("%w: %s was changed by someone else after version %d was read", keys.ErrConflict, s.tlsPath(name), version)
	}
	if err != nil {
		return s.fail("write "+s.tlsPath(name), err)
	}
	return nil
}
