package keys

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/fakeclock"
)

// cutSource is a Source over a real FileStore that a test can cut off, and
// that counts its loads.
type cutSource struct {
	fs    *FileStore
	down  atomic.Pointer[error]
	loads atomic.Int64
}

func (c *cutSource) LoadRings(ctx context.Context) ([]*Ring, error) {
	c.loads.Add(1)
	if err := c.down.Load(); err != nil {
		return nil, *err
	}
	return c.fs.LoadRings(ctx)
}

func (c *cutSource) cut(err error) { c.down.Store(&err) }
func (c *cutSource) restore()      { c.down.Store(nil) }

var errBackendDown = fmt.Errorf("%w: test backend: unreachable", ErrUnavailable)

func newCacheFixture(t *testing.T) (*cutSource, *Cache, *fakeclock.Clock) {
	t.Helper()
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	src := &cutSource{fs: openStore(t, t.TempDir(), clk)}
	if err := src.fs.AddPlatformKey(ctx, edPlatform(t, "P1")); err != nil {
		t.Fatal(err)
	}
	if err := src.fs.AddPublicKey(ctx, "M1", edPublic(t, "K1")); err != nil {
		t.Fatal(err)
	}
	c, err := NewCache(src, CacheOptions{
		Name: "test store", Now: clk.Now,
		RefreshEvery: 10 * time.Second, MaxStale: time.Minute, MissRefreshEvery: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return src, c, clk
}

func TestCacheNothingServedBeforeFirstLoad(t *testing.T) {
	src, c, _ := newCacheFixture(t)
	src.cut(errBackendDown)
	if err := c.Refresh(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Refresh = %v, want ErrUnavailable", err)
	}
	if _, err := c.PublicKey(ctx, "M1", "K1"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("PublicKey before any load = %v, want ErrUnavailable", err)
	}
	if _, err := c.PlatformKey(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("PlatformKey before any load = %v, want ErrUnavailable", err)
	}
	err := c.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), "test store") || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Ready = %v; want the store and the error class", err)
	}
	src.restore()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready after a good load = %v", err)
	}
	if k, err := c.PlatformKey(ctx); err != nil || k.ID() != "P1" {
		t.Fatalf("PlatformKey = %v, %v", k, err)
	}
}

func TestCacheServesLastGoodUntilStale(t *testing.T) {
	src, c, clk := newCacheFixture(t)
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	loadedAt := clk.Now()
	clk.Advance(20 * time.Second)
	src.cut(errBackendDown)
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("Refresh succeeded with the backend cut")
	}
	failedAt := clk.Now()

	// Within the staleness limit: served, but not ready, and why.
	clk.Advance(30 * time.Second) // 50s after the load
	if _, err := c.PublicKey(ctx, "M1", "K1"); err != nil {
		t.Fatalf("PublicKey within the staleness limit = %v", err)
	}
	if k, err := c.PlatformKey(ctx); err != nil || k.ID() != "P1" {
		t.Fatalf("PlatformKey within the staleness limit = %v, %v", k, err)
	}
	err := c.Ready(ctx)
	if err == nil {
		t.Fatal("Ready = nil while refreshes fail")
	}
	for _, want := range []string{"test store", failedAt.Format(time.RFC3339), "unreachable", "serving", loadedAt.Format(time.RFC3339)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Ready = %q; want it to say %q", err, want)
		}
	}

	// Past the limit: everything refuses with ErrUnavailable.
	clk.Advance(10 * time.Second) // 60s after the load
	if _, err := c.PublicKey(ctx, "M1", "K1"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("PublicKey past the staleness limit = %v, want ErrUnavailable", err)
	}
	if _, err := c.PlatformKey(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("PlatformKey past the staleness limit = %v, want ErrUnavailable", err)
	}
	if _, err := c.PlatformPublicKeys(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("PlatformPublicKeys past the staleness limit = %v, want ErrUnavailable", err)
	}
	if _, _, err := c.VerifyingKey(ctx, "M1", "K1", clk.Now()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("VerifyingKey past the staleness limit = %v, want ErrUnavailable", err)
	}
	if err := c.Ready(ctx); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("Ready past the limit = %v; want it to say it is refusing", err)
	}

	// Stale without any failed refresh (one hangs): not ready either.
	src.restore()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := c.Ready(ctx); err == nil || !strings.Contains(err.Error(), "staleness limit") {
		t.Fatalf("Ready with stale keys and no failed refresh = %v", err)
	}

	// Back: ready and serving again.
	src.restore()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready after recovery = %v", err)
	}
	if _, err := c.PublicKey(ctx, "M1", "K1"); err != nil {
		t.Fatalf("PublicKey after recovery = %v", err)
	}
}

func TestCacheInvalidRingsKeepLastGood(t *testing.T) {
	src, c, _ := newCacheFixture(t)
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	bad := &Ring{owner: "M2", min: 1, recs: []record{{Version: 1, ID: "K1", Algorithm: Ed25519, Status: Active, PublicKeyPEM: "not pem"}}}
	good, err := src.fs.LoadRings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.src = sourceFunc(func(context.Context) ([]*Ring, error) { return append(good, bad), nil })
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("Refresh accepted an invalid ring")
	}
	if _, err := c.PublicKey(ctx, "M1", "K1"); err != nil {
		t.Fatalf("PublicKey after an invalid refresh = %v; want the last good keys", err)
	}
	if err := c.Ready(ctx); err == nil {
		t.Fatal("Ready = nil after an invalid refresh")
	}
}

type sourceFunc func(context.Context) ([]*Ring, error)

func (f sourceFunc) LoadRings(ctx context.Context) ([]*Ring, error) { return f(ctx) }

func TestCacheRefreshesOnceOnUnknownKeyID(t *testing.T) {
	src, c, clk := newCacheFixture(t)
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// A rotation lands in the backend after the last refresh.
	if err := (Manager{src.fs}).Rotate(ctx, "M1", edPublic(t, "K2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	before := src.loads.Load()
	if k, err := c.PublicKey(ctx, "M1", "K2"); err != nil || k.Version != 2 {
		t.Fatalf("PublicKey of a just-rotated key = %+v, %v; want version 2 found by a refresh", k, err)
	}
	if got := src.loads.Load() - before; got != 1 {
		t.Fatalf("%d loads for one unknown key id, want 1", got)
	}

	// A flood of unknown ids costs at most one load per MissRefreshEvery.
	before = src.loads.Load()
	for i := range 1000 {
		if _, err := c.PublicKey(ctx, "M1", fmt.Sprintf("BOGUS%d", i)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("PublicKey(bogus) = %v, want ErrNotFound", err)
		}
	}
	if got := src.loads.Load() - before; got != 0 {
		t.Fatalf("%d loads for a flood of unknown ids within the interval, want 0", got)
	}
	clk.Advance(5 * time.Second)
	for i := range 1000 {
		c.PublicKey(ctx, "M1", fmt.Sprintf("BOGUS%d", i))
	}
	if got := src.loads.Load() - before; got != 1 {
		t.Fatalf("%d loads for a flood after the interval, want 1", got)
	}
}

func TestNewCacheRejectsStalenessBelowInterval(t *testing.T) {
	for _, o := range []CacheOptions{
		{RefreshEvery: time.Minute, MaxStale: time.Minute},
		{RefreshEvery: time.Minute, MaxStale: 30 * time.Second},
		{RefreshEvery: -time.Second},
	} {
		if _, err := NewCache(sourceFunc(nil), o); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewCache(%+v) = %v, want ErrInvalid", o, err)
		}
	}
}

// BenchmarkCacheVerifyingKey is the Vault-backed server's hot path: a lookup
// in the cached snapshot, compared with BenchmarkVerifyingKey (file store).
func BenchmarkCacheVerifyingKey(b *testing.B) {
	fs, err := OpenFileStore(b.TempDir(), FileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		if err := fs.AddPublicKey(ctx, fmt.Sprintf("M%d", i), edPublic(b, "K1")); err != nil {
			b.Fatal(err)
		}
	}
	c, err := NewCache(fs, CacheOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := c.VerifyingKey(ctx, "M42", "K1", now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
