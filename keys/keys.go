package keys

import (
	"context"
	"crypto"
	"errors"
	"time"
)

// Errors returned by this package and its backends.
var (
	ErrNotFound = errors.New("keys: not found")
	ErrRevoked  = errors.New("keys: key revoked or past its grace period")
	// ErrUnavailable means the backend cannot be read and the cache is too stale.
	ErrUnavailable = errors.New("keys: store unavailable")
)

// Reserved owners. Merchant keys are owned by the merchant id.
const (
	PlatformOwner = "_platform" // Quill's response-signing keys (RSA: scheme A)
	// PlatformEd25519Owner holds Quill's scheme B (RFC 9421) response-signing
	// keys: Ed25519 (or ECDSA P-256), fifty times cheaper to sign with than
	// the RSA keys scheme A clients need. It is a ring of its own, so the two
	// rotate independently.
	PlatformEd25519Owner = "_platform_ed25519"
	PayerOwner           = "_payer"   // the login service's payer-JWT verification keys
	AuditorOwner         = "_auditor" // the auditor-JWT verification keys
)

// Status is where a key version is in its life.
type Status string

// Key statuses.
const (
	Active   Status = "active"   // signs and verifies
	Retiring Status = "retiring" // verifies until NotAfter, no longer signs
	Revoked  Status = "revoked"  // refused
)

// Algorithm is fixed by a key's registration, never chosen by a request.
type Algorithm string

// Algorithms.
const (
	RSAPKCS1SHA256  Algorithm = "rsa-v1_5-sha256"
	RSAPSSSHA512    Algorithm = "rsa-pss-sha512"
	ECDSAP256SHA256 Algorithm = "ecdsa-p256-sha256"
	Ed25519         Algorithm = "ed25519"
)

// PublicKey is one registered verification key.
type PublicKey struct {
	ID    string
	Owner string
	// Version is the key's place in its owner's ring (1, 2, …); the ring
	// assigns it when the key is added.
	Version   int
	Algorithm Algorithm
	Status    Status
	Public    crypto.PublicKey
	CreatedAt time.Time
	// RotatedAt is when the key stopped being active (zero while active).
	RotatedAt time.Time
	// NotAfter ends a retiring key's grace period (zero: no end until revoked).
	NotAfter time.Time
}

// UsableAt reports whether k verifies at t: active, or retiring before NotAfter.
func (k PublicKey) UsableAt(t time.Time) bool {
	switch k.Status {
	case Active:
		return true
	case Retiring:
		return k.NotAfter.IsZero() || t.Before(k.NotAfter)
	}
	return false
}

// IsPlatformOwner reports whether owner is one of Quill's own response-signing
// rings (PlatformOwner or PlatformEd25519Owner), whose versions hold private keys.
func IsPlatformOwner(owner string) bool {
	return owner == PlatformOwner || owner == PlatformEd25519Owner
}

// Store reads keys. Implementations cache and refresh without restart.
type Store interface {
	// PublicKey returns owner's key id, or an error wrapping ErrNotFound
	// (or ErrUnavailable).
	PublicKey(ctx context.Context, owner, id string) (PublicKey, error)
	// PublicKeys lists all of owner's keys, newest first.
	PublicKeys(ctx context.Context, owner string) ([]PublicKey, error)
	// PlatformKey returns the active platform signing key (the newest active one).
	PlatformKey(ctx context.Context) (PrivateKey, error)
}
