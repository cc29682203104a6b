package keys

import (
	"context"
	"crypto"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Source loads every ring of a remote backend (Vault). Its errors name the
// backend and the error class but never a token or key material: the Cache
// reports them on /readyz.
type Source interface {
	// LoadRings returns every ring, or an error wrapping ErrUnavailable when
	// the backend cannot be reached (or is sealed, or refuses the
	// credentials) and ErrInvalid when a stored ring is malformed.
	LoadRings(ctx context.Context) ([]*Ring, error)
}

// Defaults of CacheOptions.
const (
	DefaultRefreshEvery     = 30 * time.Second
	DefaultMaxStale         = 10 * time.Minute
	DefaultMissRefreshEvery = 5 * time.Second
	DefaultRefreshTimeout   = 10 * time.Second
)

// CacheOptions configures NewCache. Zero fields take the defaults above.
type CacheOptions struct {
	// Name names the backend in readiness reasons ("vault http://…").
	Name string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RefreshEvery is the background refresh interval (Run).
	RefreshEvery time.Duration
	// MaxStale is how long after the last successful load the cached keys
	// keep serving while refreshes fail. Past it every read returns
	// ErrUnavailable. It must exceed RefreshEvery.
	MaxStale time.Duration
	// MissRefreshEvery is the least time between two refreshes caused by an
	// unknown key id, so a flood of made-up ids cannot hammer the backend.
	MissRefreshEvery time.Duration
	// RefreshTimeout bounds one refresh.
	RefreshTimeout time.Duration
	// OnRefresh, if set, is called after every refresh with its result.
	OnRefresh func(err error)
}

// Cache serves a Source's keys from memory: Store and PlatformPublicKeys
// never wait for the backend, except once per MissRefreshEvery when a key
// id is unknown (it may have just been rotated in).
//
// Availability rules:
//
//   - Until the first successful load, every read returns ErrUnavailable and
//     Ready reports why: a backend down or sealed at start serves nothing.
//   - When refreshes fail, the last good keys keep serving for MaxStale
//     after they were loaded, and Ready reports the failure; past MaxStale
//     every read returns ErrUnavailable (503).
//   - A refresh that returns invalid rings never replaces good ones.
type Cache struct {
	src Source
	o   CacheOptions

	cur      atomic.Pointer[loaded]
	lastMiss atomic.Int64 // UnixNano of the last miss-triggered refresh
	refresh  sync.Mutex   // one refresh at a time

	mu      sync.Mutex
	lastErr error
	since   time.Time // first failure of the current failing streak
}

type loaded struct {
	snap *snapshot
	at   time.Time
}

var _ Store = (*Cache)(nil)

// NewCache returns an empty cache over src; call Refresh (or Run) to load it.
func NewCache(src Source, o CacheOptions) (*Cache, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RefreshEvery == 0 {
		o.RefreshEvery = DefaultRefreshEvery
	}
	if o.MaxStale == 0 {
		o.MaxStale = DefaultMaxStale
	}
	if o.MissRefreshEvery == 0 {
		o.MissRefreshEvery = DefaultMissRefreshEvery
	}
	if o.RefreshTimeout == 0 {
		o.RefreshTimeout = DefaultRefreshTimeout
	}
	if o.Name == "" {
		o.Name = "key store"
	}
	if o.RefreshEvery < 0 || o.MissRefreshEvery < 0 || o.RefreshTimeout < 0 || o.MaxStale <= o.RefreshEvery {
		return nil, fmt.Errorf("%w: cache: max staleness %s must exceed the refresh interval %s (and no interval may be negative)",
			ErrInvalid, o.MaxStale, o.RefreshEvery)
	}
	c := &Cache{src: src, o: o}
	c.lastMiss.Store(o.Now().Add(-o.MissRefreshEvery).UnixNano())
	return c, nil
}

// LoadedAt is when the keys now served were loaded (the last successful
// refresh), or the zero time before the first. now minus LoadedAt is the
// staleness that MaxStale bounds: a gauge for metrics.
func (c *Cache) LoadedAt() time.Time {
	if l := c.cur.Load(); l != nil {
		return l.at
	}
	return time.Time{}
}

// String names the cache's backend.
func (c *Cache) String() string { return "keys.Cache{" + c.o.Name + "}" }

// Refresh loads every ring from the source now. On failure the cached keys
// stay (until MaxStale) and Ready reports the error.
func (c *Cache) Refresh(ctx context.Context) error {
	c.refresh.Lock()
	defer c.refresh.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.o.RefreshTimeout)
	defer cancel()
	rings, err := c.src.LoadRings(ctx)
	var snap *snapshot
	if err == nil {
		snap, err = newSnapshot(rings)
	}
	now := c.o.Now()
	c.mu.Lock()
	if err == nil {
		c.cur.Store(&loaded{snap: snap, at: now})
		c.lastErr, c.since = nil, time.Time{}
	} else {
		if c.lastErr == nil {
			c.since = now
		}
		c.lastErr = err
	}
	c.mu.Unlock()
	if c.o.OnRefresh != nil {
		c.o.OnRefresh(err)
	}
	return err
}

// Run refreshes every RefreshEvery until ctx ends. It does not load first:
// call Refresh before serving.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(c.o.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = c.Refresh(ctx) // reported through Ready and OnRefresh
		}
	}
}

// Ready returns nil when the last refresh succeeded, and otherwise why not:
// which backend, since when, the error, and whether the cached keys still
// serve.
func (c *Cache) Ready(context.Context) error {
	c.mu.Lock()
	lastErr, since := c.lastErr, c.since
	c.mu.Unlock()
	cur := c.cur.Load()
	switch {
	case cur == nil && lastErr == nil:
		return fmt.Errorf("%s: no keys loaded yet", c.o.Name)
	case cur == nil:
		return fmt.Errorf("%s: no keys loaded, failing since %s: %w", c.o.Name, since.UTC().Format(time.RFC3339), lastErr)
	}
	until := cur.at.Add(c.o.MaxStale)
	stale := !c.o.Now().Before(until)
	state := "serving the keys loaded at " + cur.at.UTC().Format(time.RFC3339) + " until " + until.UTC().Format(time.RFC3339)
	if stale {
		state = "refusing: the keys loaded at " + cur.at.UTC().Format(time.RFC3339) + " are past the " + c.o.MaxStale.String() + " staleness limit"
	}
	switch {
	case lastErr != nil:
		return fmt.Errorf("%s: refresh failing since %s (%s): %w", c.o.Name, since.UTC().Format(time.RFC3339), state, lastErr)
	case stale: // no refresh has finished since (one may hang)
		return fmt.Errorf("%s: %s", c.o.Name, state)
	}
	return nil
}

// snapshot returns the keys to serve, or ErrUnavailable when there are none
// or they are too stale.
func (c *Cache) snapshot() (*snapshot, error) {
	cur := c.cur.Load()
	if cur == nil {
		return nil, fmt.Errorf("%w: %s: no keys loaded", ErrUnavailable, c.o.Name)
	}
	if age := c.o.Now().Sub(cur.at); age >= c.o.MaxStale {
		return nil, fmt.Errorf("%w: %s: keys loaded %s ago, past the %s staleness limit", ErrUnavailable, c.o.Name, age.Round(time.Second), c.o.MaxStale)
	}
	return cur.snap, nil
}

// PublicKey returns owner's key id whatever its status, ErrNotFound, or
// ErrUnavailable. An unknown id triggers one refresh per MissRefreshEvery.
func (c *Cache) PublicKey(ctx context.Context, owner, id string) (PublicKey, error) {
	snap, err := c.snapshot()
	if err != nil {
		return PublicKey{}, err
	}
	if k, ok := snap.publicKey(owner, id); ok {
		return k, nil
	}
	if c.missRefreshDue() {
		// Detached from the request: a client hanging up must not count as
		// a backend failure.
		if err := c.Refresh(context.WithoutCancel(ctx)); err == nil {
			if snap, err = c.snapshot(); err == nil {
				if k, ok := snap.publicKey(owner, id); ok {
					return k, nil
				}
			}
		}
	}
	return PublicKey{}, fmt.Errorf("%w: %s/%s", ErrNotFound, owner, id)
}

// missRefreshDue claims the next miss-triggered refresh if one is due.
func (c *Cache) missRefreshDue() bool {
	now := c.o.Now().UnixNano()
	last := c.lastMiss.Load()
	return now-last >= int64(c.o.MissRefreshEvery) && c.lastMiss.CompareAndSwap(last, now)
}

// PublicKeys lists owner's keys, newest first, or ErrUnavailable.
func (c *Cache) PublicKeys(_ context.Context, owner string) ([]PublicKey, error) {
	snap, err := c.snapshot()
	if err != nil {
		return nil, err
	}
	return snap.publicKeys(owner), nil
}

// PlatformKey returns the newest active platform key, ErrNotFound, or ErrUnavailable.
func (c *Cache) PlatformKey(context.Context) (PrivateKey, error) {
	snap, err := c.snapshot()
	if err != nil {
		return PrivateKey{}, err
	}
	return snap.platformKey()
}

// PlatformKeyOf is as FileStore.PlatformKeyOf, plus ErrUnavailable.
func (c *Cache) PlatformKeyOf(_ context.Context, owner string) (PrivateKey, error) {
	snap, err := c.snapshot()
	if err != nil {
		return PrivateKey{}, err
	}
	return snap.platformKeyOf(owner)
}

// PlatformPublicKeys lists the platform keys clients may still need to
// verify responses (active, and retiring within their grace), newest first.
func (c *Cache) PlatformPublicKeys(context.Context) ([]PublicKey, error) {
	snap, err := c.snapshot()
	if err != nil {
		return nil, err
	}
	return snap.platformPublicKeys(c.o.Now()), nil
}

// VerifyingKey is as FileStore.VerifyingKey, plus ErrUnavailable.
func (c *Cache) VerifyingKey(ctx context.Context, owner, id string, at time.Time) (crypto.PublicKey, Algorithm, error) {
	return verifyingKey(ctx, c, owner, id, at)
}
