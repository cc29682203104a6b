package merchant

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Cache defaults.
const (
	DefaultRefreshEvery     = 5 * time.Second
	DefaultMissRefreshEvery = time.Second
)

// CacheOptions tune a Cache.
type CacheOptions struct {
	// RefreshEvery is the background reload interval (Run): the longest a
	// change in the registry (a disabled merchant) takes to be seen. Zero
	// means DefaultRefreshEvery.
	RefreshEvery time.Duration
	// MissRefreshEvery is the least time between reloads caused by unknown
	// ids, so a flood of made-up ids cannot hammer the database. Zero means
	// DefaultMissRefreshEvery.
	MissRefreshEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnRefresh, if set, is called after every reload with its error (nil on
	// success), for logging.
	OnRefresh func(error)
}

// Cache is a Directory served from memory over a Lister (the registry). It
// is safe for concurrent use. Profiles it returns share their
// Rules.Currencies slice with the cache and must be treated as read-only.
type Cache struct {
	src  Lister
	o    CacheOptions
	snap atomic.Pointer[cacheSnapshot]

	mu       sync.Mutex // serializes reloads
	lastMiss time.Time  // under mu
	failing  atomic.Pointer[refreshFailure]
}

type cacheSnapshot struct {
	byID     map[string]Profile
	loadedAt time.Time
}

type refreshFailure struct {
	err   error
	since time.Time
}

// NewCache returns a cache over src. It holds nothing until the first
// Refresh; call Refresh once before serving and Run in the background.
func NewCache(src Lister, o CacheOptions) *Cache {
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = DefaultRefreshEvery
	}
	if o.MissRefreshEvery <= 0 {
		o.MissRefreshEvery = DefaultMissRefreshEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Cache{src: src, o: o}
}

// Refresh reloads every profile now. On failure the last good profiles stay
// in use and the error is returned (and reported by Ready).
func (c *Cache) Refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshLocked(ctx)
}

func (c *Cache) refreshLocked(ctx context.Context) error {
	ps, err := c.src.List(ctx)
	if err == nil {
		byID := make(map[string]Profile, len(ps))
		for _, p := range ps {
			byID[p.ID] = p
		}
		c.snap.Store(&cacheSnapshot{byID: byID, loadedAt: c.o.Now()})
		c.failing.Store(nil)
	} else if f := c.failing.Load(); f == nil {
		c.failing.Store(&refreshFailure{err: err, since: c.o.Now()})
	} else {
		c.failing.Store(&refreshFailure{err: err, since: f.since})
	}
	if c.o.OnRefresh != nil {
		c.o.OnRefresh(err)
	}
	return err
}

// Run reloads every RefreshEvery until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(c.o.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Refresh(ctx)
		}
	}
}

// Merchant returns an active merchant's profile (see Directory). An unknown
// id triggers one reload, at most once per MissRefreshEvery, so a merchant
// added a moment ago is found at once.
func (c *Cache) Merchant(ctx context.Context, id string) (Profile, error) {
	s := c.snap.Load()
	p, ok := Profile{}, false
	if s != nil {
		p, ok = s.byID[id]
	}
	if !ok && ValidID(id) {
		c.missReload(ctx)
		// Re-read even when this call did not reload: another did while
		// it waited.
		if s = c.snap.Load(); s != nil {
			p, ok = s.byID[id]
		}
	}
	switch {
	case s == nil:
		return Profile{}, fmt.Errorf("%w: no merchant profiles loaded yet", ErrUnavailable)
	case !ok:
		return Profile{}, fmt.Errorf("%w: %q", ErrUnknown, id)
	case p.Status == Disabled:
		return Profile{}, fmt.Errorf("%w: %s", ErrDisabled, id)
	}
	return p, nil
}

// missReload reloads if the last miss-caused reload is old enough.
func (c *Cache) missReload(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.o.Now()
	if !c.lastMiss.IsZero() && now.Sub(c.lastMiss) < c.o.MissRefreshEvery {
		return
	}
	c.lastMiss = now
	c.refreshLocked(ctx)
}

// Ready returns nil when the last reload succeeded, or an error saying since
// when reloads fail and why (the error class, no credentials); the last good
// profiles keep serving meanwhile.
func (c *Cache) Ready(context.Context) error {
	f := c.failing.Load()
	s := c.snap.Load()
	switch {
	case s == nil && f == nil:
		return errors.New("merchant registry: not loaded yet")
	case s == nil:
		return fmt.Errorf("merchant registry: no profiles loaded, failing since %s: %w", f.since.UTC().Format(time.RFC3339), f.err)
	case f != nil:
		return fmt.Errorf("merchant registry: reload failing since %s, serving profiles loaded at %s: %w",
			f.since.UTC().Format(time.RFC3339), s.loadedAt.UTC().Format(time.RFC3339), f.err)
	}
	return nil
}
