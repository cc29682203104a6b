package keys

import (
	"context"
	"fmt"
	"time"
)

// RingEditor is what a writable backend provides: one atomic change to one
// owner's ring.
type RingEditor interface {
	// EditRing reads owner's ring (empty if it has none), calls change with
	// a copy and the backend's clock, and persists the result only if
	// change returns nil and nobody else changed the ring in between. It
	// returns change's error, ErrConflict if the ring changed concurrently,
	// or ErrUnavailable if the backend cannot be reached; in every error
	// case the stored ring is unchanged.
	EditRing(ctx context.Context, owner string, change func(r *Ring, now time.Time) error) error
}

// Manager makes the operator's changes (add, rotate, retire, revoke) on any
// backend, with the same rules everywhere. Each method is one EditRing: it
// either persists whole or changes nothing.
type Manager struct {
	Rings RingEditor
}

// AddPublicKey registers k for owner (a merchant id or a reserved owner other
// than PlatformOwner) as the ring's next version. Empty Owner, Algorithm,
// Status and CreatedAt default to owner, AlgorithmOf(k.Public), Active and
// now. It returns ErrExists if the id is taken.
func (m Manager) AddPublicKey(ctx context.Context, owner string, k PublicKey) error {
	if IsPlatformOwner(owner) {
		return fmt.Errorf("%w: use AddPlatformKey for platform keys", ErrInvalid)
	}
	return m.Rings.EditRing(ctx, owner, func(r *Ring, now time.Time) error {
		rec, err := newRecord(owner, k, now)
		if err != nil {
			return err
		}
		return r.add(rec)
	})
}

// AddPlatformKey registers k as an active platform key pair; being the
// newest, it becomes the one PlatformKey returns. ErrExists if the id is taken.
func (m Manager) AddPlatformKey(ctx context.Context, k PrivateKey) error {
	return m.AddPlatformKeyTo(ctx, PlatformOwner, k)
}

// AddPlatformKeyTo is AddPlatformKey for either platform ring (PlatformOwner,
// or PlatformEd25519Owner, which takes Ed25519 and ECDSA P-256 keys only).
func (m Manager) AddPlatformKeyTo(ctx context.Context, owner string, k PrivateKey) error {
	if !IsPlatformOwner(owner) {
		return fmt.Errorf("%w: %q is not a platform ring", ErrInvalid, owner)
	}
	return m.Rings.EditRing(ctx, owner, func(r *Ring, now time.Time) error {
		rec, err := newPlatformRecord(owner, k, now)
		if err != nil {
			return err
		}
		return r.add(rec)
	})
}

// Rotate adds newKey as owner's next, active version and marks the
// previously active versions Retiring with NotAfter = now+overlap, so
// requests signed with them keep verifying during the overlap. Defaults are
// as for AddPublicKey.
func (m Manager) Rotate(ctx context.Context, owner string, newKey PublicKey, overlap time.Duration) error {
	if IsPlatformOwner(owner) {
		return fmt.Errorf("%w: use RotatePlatform for platform keys", ErrInvalid)
	}
	if overlap < 0 {
		return fmt.Errorf("%w: negative overlap", ErrInvalid)
	}
	return m.Rings.EditRing(ctx, owner, func(r *Ring, now time.Time) error {
		rec, err := newRecord(owner, newKey, now)
		if err != nil {
			return err
		}
		return r.rotate(rec, now, now.Add(overlap))
	})
}

// RotatePlatform makes k the active platform key and retires the previous
// active ones with NotAfter = now+overlap: they stop signing at once but stay
// published (PlatformPublicKeys) so clients can verify responses in flight.
func (m Manager) RotatePlatform(ctx context.Context, k PrivateKey, overlap time.Duration) error {
	return m.RotatePlatformOf(ctx, PlatformOwner, k, overlap)
}

// RotatePlatformOf is RotatePlatform for either platform ring.
func (m Manager) RotatePlatformOf(ctx context.Context, owner string, k PrivateKey, overlap time.Duration) error {
	if !IsPlatformOwner(owner) {
		return fmt.Errorf("%w: %q is not a platform ring", ErrInvalid, owner)
	}
	if overlap < 0 {
		return fmt.Errorf("%w: negative overlap", ErrInvalid)
	}
	return m.Rings.EditRing(ctx, owner, func(r *Ring, now time.Time) error {
		rec, err := newPlatformRecord(owner, k, now)
		if err != nil {
			return err
		}
		return r.rotate(rec, now, now.Add(overlap))
	})
}

// SetStatus sets owner's key id to st; notAfter is the end of the grace
// period for Retiring (zero: none) and is stored as given otherwise. It
// returns ErrNotFound for an unknown key and ErrRevoked when asked to
// reinstate a revoked one.
func (m Manager) SetStatus(ctx context.Context, owner, id string, st Status, notAfter time.Time) error {
	return m.Rings.EditRing(ctx, owner, func(r *Ring, now time.Time) error {
		return r.setStatus(id, st, notAfter, now)
	})
}

// SetMinVersion refuses every version of owner's ring below v. It returns
// ErrRevoked for a v below the current minimum (refusal is final) and
// ErrInvalid for a v above the latest version.
func (m Manager) SetMinVersion(ctx context.Context, owner string, v int) error {
	return m.Rings.EditRing(ctx, owner, func(r *Ring, _ time.Time) error {
		return r.setMinVersion(v)
	})
}

// Import copies ring into the backend as its owner's ring, for moving a dev
// store into Vault. It returns ErrExists if the owner already has keys there.
func (m Manager) Import(ctx context.Context, ring *Ring) error {
	if _, err := ring.Keys(); err != nil {
		return err
	}
	return m.Rings.EditRing(ctx, ring.Owner(), func(r *Ring, _ time.Time) error {
		if r.Latest() > 0 {
			return fmt.Errorf("%w: %s already has a ring", ErrExists, r.Owner())
		}
		*r = *ring.clone()
		return nil
	})
}
