package keys

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/quillpay/quill/internal/atomicfile"
	"github.com/quillpay/quill/internal/reload"
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
	// OnChange, if set, is called when reloading the file starts failing,
	// fails differently, or recovers (err nil), for the log.
	OnChange func(err error)
}

// FileStore is the development key store: one JSON file, keyring.json, in a
// directory, with the same semantics as the Vault store (key ids, statuses,
// grace periods, platform key pairs, payer-token keys).
//
// Reads are served from an immutable in-memory snapshot. At most once per
// ReloadEvery, a read stats the file and, if it changed (another process such
// as quillctl wrote it), parses it again; if the new file is unreadable or
// invalid the last good snapshot keeps serving and Ready reports why.
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
	dir  string
	now  func() time.Time
	file reload.File // read only by the snapshot's load function
	snap *reload.Value[*snapshot]

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
	s := &FileStore{dir: dir, now: opts.Now, writeFile: writeFileAtomic}
	if s.now == nil {
		s.now = time.Now
	}
	every := opts.ReloadEvery
	switch {
	case every == 0:
		every = DefaultReloadEvery
	case every < 0:
		every = time.Nanosecond // every read
	}
	s.file.Path = s.path()
	s.snap = reload.New(reload.Options{Name: "key file " + s.path(), Now: s.now, Every: every, OnChange: opts.OnChange}, s.load)
	s.snap.Publish(&snapshot{})
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FileStore) path() string { return filepath.Join(s.dir, KeyringFile) }

// String identifies the store without any key material.
func (s *FileStore) String() string { return "keys.FileStore{dir=" + s.dir + "}" }

// Format prints only String, for every verb including %#v.
func (s *FileStore) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// Ready is the readiness answer: nil, or why the file fails to reload since
// when (the last good keys keep serving).
func (s *FileStore) Ready(context.Context) error { return s.snap.Err() }

// Reload re-reads the keyring file now if it changed since it was last read.
// On error the current snapshot stays and Ready reports the error.
func (s *FileStore) Reload() error { return s.snap.Reload(context.Background()) }

// load is the snapshot's reload.LoadFunc.
func (s *FileStore) load(context.Context) (*snapshot, bool, error) {
	b, fi, changed, err := s.file.ReadIfChanged()
	if err != nil {
		return nil, false, fmt.Errorf("keys: keyring: %w", err)
	}
	if !changed {
		return nil, false, nil
	}
	doc, err := decodeDocument(b)
	if err != nil {
		return nil, false, err
	}
	snap, err := buildSnapshot(doc)
	if err != nil {
		return nil, false, err
	}
	s.file.Accept(fi)
	return snap, true, nil
}

// current returns the snapshot to serve, first reloading if a check is due.
func (s *FileStore) current() *snapshot {
	snap, _ := s.snap.Get()
	return snap
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
	// Serve the change at once; the next check re-reads the new file (the
	// same content) because its inode changed.
	s.file.Wrote()
	s.snap.Publish(snap)
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
