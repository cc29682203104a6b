// Package reload is the one way Quill picks up material that changes under a
// running process (the dev key file, the TLS material in the key store):
// a Value holds the last good result of a load function, re-runs it on a
// schedule, on demand (SIGHUP) or lazily on read, and keeps the last good
// result when a load fails.
//
// Guarantees:
//
//   - A failed load never replaces a good value; the failure is kept for
//     readiness (Err says what, since when) and reported once per change of
//     state (OnChange: first failure, a different failure, recovery), so a
//     log is not flooded by a failure repeated every second.
//   - Reads (Get, Current) never block on a load in progress.
//   - At most one load runs at a time.
//
// File is a change detector for a file replaced by rename or edited in place.
package reload

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures New.
type Options struct {
	// Name names the material in errors and logs ("TLS server certificate").
	Name string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Every is the least time between two loads made by Get; zero or
	// negative: Get never loads (Run or Reload do).
	Every time.Duration
	// OnChange, if set, is called after a load that changed the state: err
	// is the new failure, or nil on recovery. It is not called for the first
	// successful load, nor for a failure identical to the previous one.
	OnChange func(err error)
	// OnUpdate, if set, is called after a load published a new value.
	OnUpdate func()
}

// LoadFunc loads the material. It returns changed=false (and a zero value)
// when the material is as last loaded, so the current value stays.
type LoadFunc[T any] func(ctx context.Context) (v T, changed bool, err error)

// ErrNotLoaded is Err's answer before the first successful load.
var ErrNotLoaded = errors.New("reload: not loaded")

// Value is the last good result of a LoadFunc.
type Value[T any] struct {
	o    Options
	load LoadFunc[T]

	cur       atomic.Pointer[T]
	lastCheck atomic.Int64 // UnixNano of the last load started by Get

	loadMu  sync.Mutex // one load at a time
	mu      sync.Mutex
	lastErr error
	since   time.Time // start of the current failing streak
}

// New returns a Value that has not loaded yet; call Reload before serving.
func New[T any](o Options, load LoadFunc[T]) *Value[T] {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Name == "" {
		o.Name = "material"
	}
	v := &Value[T]{o: o, load: load}
	v.lastCheck.Store(o.Now().UnixNano())
	return v
}

// Reload loads now. On failure the current value stays, Err reports the
// failure and the error is returned.
func (v *Value[T]) Reload(ctx context.Context) error {
	v.loadMu.Lock()
	defer v.loadMu.Unlock()
	val, changed, err := v.load(ctx)
	if err == nil && changed {
		v.cur.Store(&val)
		if v.o.OnUpdate != nil {
			v.o.OnUpdate()
		}
	}
	if err == nil && v.cur.Load() == nil {
		err = fmt.Errorf("%w: %s: the first load returned nothing", ErrNotLoaded, v.o.Name)
	}
	v.report(err)
	return err
}

// report records the result of a load and calls OnChange on a change.
func (v *Value[T]) report(err error) {
	v.mu.Lock()
	prev := v.lastErr
	v.lastErr = err
	switch {
	case err == nil:
		v.since = time.Time{}
	case prev == nil:
		v.since = v.o.Now()
	}
	v.mu.Unlock()
	if v.o.OnChange == nil {
		return
	}
	switch {
	case err == nil && prev == nil:
	case err != nil && prev != nil && err.Error() == prev.Error():
	default:
		v.o.OnChange(err)
	}
}

// Publish makes val the current value, for a process that just wrote the
// material itself; it clears a reported failure.
func (v *Value[T]) Publish(val T) {
	v.loadMu.Lock() // after a load in progress, which read older material
	defer v.loadMu.Unlock()
	v.cur.Store(&val)
	v.report(nil)
}

// Get returns the current value, first loading if Every has passed since the
// last load Get started (one caller loads; the others read the current value).
// ok is false before the first successful load.
func (v *Value[T]) Get() (val T, ok bool) {
	if v.o.Every > 0 && v.due() {
		_ = v.Reload(context.Background()) // kept in Err; the last good value serves
	}
	return v.Current()
}

func (v *Value[T]) due() bool {
	now, last := v.o.Now().UnixNano(), v.lastCheck.Load()
	d := now - last
	return (d < 0 || d >= int64(v.o.Every)) && v.lastCheck.CompareAndSwap(last, now)
}

// Current returns the current value without loading.
func (v *Value[T]) Current() (val T, ok bool) {
	if p := v.cur.Load(); p != nil {
		return *p, true
	}
	return val, false
}

// Err is the readiness answer: nil when the latest load succeeded, else the
// material, since when loads fail, whether the last good value still
// serves, and the error.
func (v *Value[T]) Err() error {
	v.mu.Lock()
	err, since := v.lastErr, v.since
	v.mu.Unlock()
	switch {
	case err == nil && v.cur.Load() == nil:
		return fmt.Errorf("%w: %s", ErrNotLoaded, v.o.Name)
	case err == nil:
		return nil
	case v.cur.Load() == nil:
		return fmt.Errorf("%s: nothing loaded, failing since %s: %w", v.o.Name, since.UTC().Format(time.RFC3339), err)
	}
	return fmt.Errorf("%s: reload failing since %s, the last good version stays in force: %w", v.o.Name, since.UTC().Format(time.RFC3339), err)
}

// Run reloads every interval and whenever trigger delivers, until ctx ends.
// A nil trigger is never ready; interval <= 0 disables the schedule.
func (v *Value[T]) Run(ctx context.Context, interval time.Duration, trigger <-chan struct{}) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-trigger:
		}
		_ = v.Reload(ctx) // reported through Err and OnChange
	}
}

// File detects changes of one file. A change is a new file (rename, as
// atomic writers do) or a new size or modification time; an in-place edit
// that keeps the size within one filesystem clock tick can go unnoticed
// until the next change. Its methods must not be called concurrently (a
// LoadFunc runs one at a time).
type File struct {
	Path    string
	seen    fs.FileInfo
	existed atomic.Bool
}

// ReadIfChanged returns the file's content if it changed since the last
// successful Accept, changed=false otherwise. A file that never existed
// reads as missing=true without error; one that disappears after it was
// accepted is an error (a deletion is not an edit).
func (f *File) ReadIfChanged() (b []byte, fi fs.FileInfo, changed bool, err error) {
	h, err := os.Open(f.Path)
	if errors.Is(err, fs.ErrNotExist) && f.seen == nil && !f.existed.Load() {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	defer h.Close()
	fi, err = h.Stat()
	if err != nil {
		return nil, nil, false, err
	}
	if f.seen != nil && os.SameFile(f.seen, fi) && f.seen.Size() == fi.Size() && f.seen.ModTime().Equal(fi.ModTime()) {
		return nil, fi, false, nil
	}
	b = make([]byte, fi.Size())
	if _, err := h.ReadAt(b, 0); err != nil {
		return nil, nil, false, err
	}
	return b, fi, true, nil
}

// Accept records fi (from ReadIfChanged) as the version now in force.
func (f *File) Accept(fi fs.FileInfo) { f.seen = fi; f.existed.Store(true) }

// Wrote records that this process wrote the file, so that its deletion is
// an error rather than "never existed". Unlike the other methods it may be
// called concurrently with them.
func (f *File) Wrote() { f.existed.Store(true) }
