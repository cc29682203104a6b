package keys

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quillpay/quill/internal/atomicfile"
)

// Names of the files a FileStore keeps in its directory.
const (
	KeyringFile = "keyring.json" // the keys, 0600
	lockFile    = "keyring.lock" // flock'd by writers
)

// DefaultReloadEvery is how often a FileStore looks for changes by default.
const DefaultReloadEvery = time.Second

// FileOptions configures OpenFileStore.
type FileOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ReloadEvery is the least time between two checks of the file for
	// changes. Zero means DefaultReloadEvery; negative means every read.
	ReloadEvery time.Duration
}

// FileStore is the development key store: one JSON file, keyring.json, in a
// directory, with the same semantics as the Vault store (key ids, statuses,
// grace periods, platform key pairs, payer-token keys).
//
// Reads are served from an immutable in-memory snapshot. At most once per
// ReloadEvery, a read stats the file and, if it changed (another process such
// as quillctl wrote it), parses it again; if the new file is unreadable or
// invalid the last good snapshot keeps serving and LastError reports why.
// A change is seen as a new file (rename, as every writer here does) or a new
// size or modification time; an in-place edit that keeps the size within one
// filesystem clock tick can go unnoticed until the next change.
//
// Writes lock keyring.lock (flock), re-read the file, apply the change, and
// replace the file atomically (temporary file, fsync, rename). A change that
// cannot be persisted changes nothing, in memory or on disk.
//
// Security: unlike Vault, the dev store keeps the platform private keys on
// disk, in a 0600 file. Do not use it in production.
type FileStore struct {
	dir   string
	now   func() time.Time
	every time.Duration

	snap      atomic.Pointer[snapshot]
	lastCheck atomic.Int64 // UnixNano of the last change check

	mu      sync.Mutex  // serializes reloads and publishing writes
	seen    fs.FileInfo // file the snapshot came from; nil if none
	lastErr error

	// writeFile replaces path with data; tests swap it to simulate failures.
	writeFile func(path string, data []byte, perm os.FileMode) error
}

var (
	_ Store      = (*FileStore)(nil)
	_ RingEditor = (*FileStore)(nil)
)

// OpenFileStore opens (creating if needed) the keyring in dir. A missing
// keyring file is an empty store; an invalid one is an error.
func OpenFileStore(dir string, opts FileOptions) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	s := &FileStore{dir: dir, now: opts.Now, every: opts.ReloadEvery, writeFile: writeFileAtomic}
	if s.now == nil {
		s.now = time.Now
	}
	if s.every == 0 {
		s.every = DefaultReloadEvery
	}
	s.snap.Store(&snapshot{})
	if err := s.Reload(); err != nil {
		return nil, err
	}
	s.lastCheck.Store(s.now().UnixNano())
	return s, nil
}

func (s *FileStore) path() string { return filepath.Join(s.dir, KeyringFile) }

// String identifies the store without any key material.
func (s *FileStore) String() string { return "keys.FileStore{dir=" + s.dir + "}" }

// Format prints only String, for every verb including %#v.
func (s *FileStore) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LastError returns why the latest reload failed, or nil if it succeeded.
func (s *FileStore) LastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Reload re-reads the keyring file now if it changed since it was last read.
// On error the current snapshot stays and LastError returns the error.
func (s *FileStore) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.reloadLocked()
	s.lastErr = err
	return err
}

func (s *FileStore) reloadLocked() error {
	f, err := os.Open(s.path())
	if errors.Is(err, fs.ErrNotExist) && s.seen == nil {
		return nil // never had a file: still empty
	}
	if err != nil {
		return fmt.Errorf("keys: keyring: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("keys: keyring: %w", err)
	}
	if sameFile(s.seen, fi) {
		return nil
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return fmt.Errorf("keys: keyring: %w", err)
	}
	doc, err := decodeDocument(b)
	if err != nil {
		return err
	}
	snap, err := buildSnapshot(doc)
	if err != nil {
		return err
	}
	s.snap.Store(snap)
	s.seen = fi
	return nil
}

// sameFile reports whether b is the file a was, unchanged. Writers replace
// the file by rename, so a change shows up as a new inode; size and mtime
// catch editors that rewrite in place.
func sameFile(a, b fs.FileInfo) bool {
	return a != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// current returns the snapshot to serve, first reloading if a check is due.
func (s *FileStore) current() *snapshot {
	now := s.now().UnixNano()
	last := s.lastCheck.Load()
	if d := now - last; (d < 0 || d >= int64(s.every)) && s.lastCheck.CompareAndSwap(last, now) {
		_ = s.Reload() // kept in LastError; the last good snapshot serves
	}
	return s.snap.Load()
}

// PublicKey returns owner's key id whatever its status, or ErrNotFound.
func (s *FileStore) PublicKey(_ context.Context, owner, id string) (PublicKey, error) {
	if k, ok := s.current().publicKey(owner, id); ok {
		return k, nil
	}
	return PublicKey{}, fmt.Errorf("%w: %s/%s", ErrNotFound, owner, id)
}

// PublicKeys lists owner's keys, newest first (none is not an error).
func (s *FileStore) PublicKeys(_ context.Context, owner string) ([]PublicKey, error) {
	return s.current().publicKeys(owner), nil
}

// PlatformKey returns the newest active platform key, or ErrNotFound.
func (s *FileStore) PlatformKey(context.Context) (PrivateKey, error) {
	return s.current().platformKey()
}

// PlatformKeyOf returns the newest active key of platform ring owner
// (PlatformOwner or PlatformEd25519Owner), or ErrNotFound.
func (s *FileStore) PlatformKeyOf(_ context.Context, owner string) (PrivateKey, error) {
	return s.current().platformKeyOf(owner)
}

// VerifyingKey returns owner's key id and its registered algorithm if it
// verifies at time at; ErrNotFound if there is no such key, ErrRevoked if it
// is revoked or retired past its NotAfter.
func (s *FileStore) VerifyingKey(ctx context.Context, owner, id string, at time.Time) (crypto.PublicKey, Algorithm, error) {
	return verifyingKey(ctx, s, owner, id, at)
}

// verifyingKey is VerifyingKey over any Store.
func verifyingKey(ctx context.Context, s Store, owner, id string, at time.Time) (crypto.PublicKey, Algorithm, error) {
	k, err := s.PublicKey(ctx, owner, id)
	if err != nil {
		return nil, "", err
	}
	if !k.UsableAt(at) {
		return nil, "", fmt.Errorf("%w: %s/%s", ErrRevoked, owner, id)
	}
	return k.Public, k.Algorithm, nil
}

// PlatformPublicKeys lists, newest first, the platform keys clients may still
// need to verify responses: active ones and retiring ones within their grace.
// It is what GET /v1/certificates publishes.
func (s *FileStore) PlatformPublicKeys(context.Context) ([]PublicKey, error) {
	return s.current().platformPublicKeys(s.now()), nil
}

// AddPublicKey is Manager.AddPublicKey on this store.
func (s *FileStore) AddPublicKey(ctx context.Context, owner string, k PublicKey) error {
	return Manager{s}.AddPublicKey(ctx, owner, k)
}

// AddPlatformKey is Manager.AddPlatformKey on this store.
func (s *FileStore) AddPlatformKey(ctx context.Context, k PrivateKey) error {
	return Manager{s}.AddPlatformKey(ctx, k)
}

// SetStatus is Manager.SetStatus on this store.
func (s *FileStore) SetStatus(ctx context.Context, owner, id string, st Status, notAfter time.Time) error {
	return Manager{s}.SetStatus(ctx, owner, id, st, notAfter)
}

// Rotate is Manager.Rotate on this store.
func (s *FileStore) Rotate(ctx context.Context, owner string, newKey PublicKey, overlap time.Duration) error {
	return Manager{s}.Rotate(ctx, owner, newKey, overlap)
}

// RotatePlatform is Manager.RotatePlatform on this store.
func (s *FileStore) RotatePlatform(ctx context.Context, k PrivateKey, overlap time.Duration) error {
	return Manager{s}.RotatePlatform(ctx, k, overlap)
}

// EditRing applies change to owner's ring on disk under the writers' lock
// (so concurrent writers serialize rather than conflict) and publishes the
// result. Nothing changes if any step fails.
func (s *FileStore) EditRing(ctx context.Context, owner string, change func(r *Ring, now time.Time) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := atomicfile.Lock(filepath.Join(s.dir, lockFile))
	if err != nil {
		return err
	}
	defer unlock()

	b, err := os.ReadFile(s.path())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keys: keyring: %w", err)
	}
	doc, err := decodeDocument(b)
	if err != nil {
		return err // never overwrite a file we cannot read
	}
	r, err := doc.ring(owner)
	if err != nil {
		return err
	}
	if err := change(r, s.now()); err != nil {
		return err
	}
	snap, err := buildSnapshot(doc)
	if err != nil {
		return err
	}
	out, err := encodeDocument(doc)
	if err != nil {
		return err
	}
	if err := s.writeFile(s.path(), out, 0o600); err != nil {
		return err
	}
	fi, err := os.Stat(s.path())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap.Store(snap)
	s.seen, s.lastErr = fi, nil
	if err != nil {
		s.seen = nil // unknown: the next check re-reads
	}
	return nil
}

// LoadRings returns every ring in the keyring file as it is on disk now.
func (s *FileStore) LoadRings(ctx context.Context) ([]*Ring, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.path())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keys: keyring: %w", err)
	}
	doc, err := decodeDocument(b)
	if err != nil {
		return nil, err
	}
	if _, err := buildSnapshot(doc); err != nil {
		return nil, err
	}
	rings := make([]*Ring, 0, len(doc.Rings))
	for _, r := range doc.Rings {
		rings = append(rings, r)
	}
	return rings, nil
}

// writeFileAtomic replaces path with data (mode perm); see atomicfile.Write.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := atomicfile.Write(path, data, perm); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}
